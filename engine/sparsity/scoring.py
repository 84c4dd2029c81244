"""Which training samples a one-shot method scores at initialisation (SNIP, GraSP).

GraSP's official code draws its scoring samples class-balanced (``samples_per_class``);
``balanced_order`` does the same for any number of samples: per class the counts differ by
at most one, the classes that get the extra sample and the samples within each class are
drawn from the run's seeded generator, so a run scores the same samples every time.
"""
from __future__ import annotations

import torch


def balanced_order(labels: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` distinct sample indices (int64), class-balanced: counts per class differ by
    at most one (a class with too few samples gives what it has, the others fill in)."""
    labels = labels.to("cpu", torch.long)
    n = min(int(n), labels.numel())
    classes = torch.unique(labels)
    pools = []
    for c in classes[torch.randperm(classes.numel(), generator=generator)].tolist():
        idx = torch.nonzero(labels == c).flatten()
        pools.append(idx[torch.randperm(idx.numel(), generator=generator)].tolist())
    out: list[int] = []
    depth = 0
    while len(out) < n:      # round robin: one sample of every class per round
        for pool in pools:
            if depth < len(pool) and len(out) < n:
                out.append(pool[depth])
        depth += 1
    return torch.tensor(sorted(out), dtype=torch.long)
