"""Exact-count mask operations on single tensors (bool masks shaped like the weight).

Every function keeps exactly ``keep_count(numel, density)`` positions, so a layer's
sparsity after a prune or a grow is exact, not approximately so.
"""
from __future__ import annotations

import torch

from engine.sparsity.allocation import keep_count  # noqa: F401 - one rounding rule for masks and planner


def random_mask(shape, density: float, generator: torch.Generator, device=None) -> torch.Tensor:
    """Exactly keep_count(numel, density) positions chosen uniformly at random."""
    numel = int(torch.Size(shape).numel())
    k = keep_count(numel, density)
    # Drawn on the CPU so the same seed gives the same mask on every device.
    order = torch.rand(numel, generator=generator).topk(k, sorted=False).indices
    mask = torch.zeros(numel, dtype=torch.bool)
    mask[order] = True
    return mask.view(shape).to(device) if device is not None else mask.view(shape)


def prune(weight: torch.Tensor, mask: torch.Tensor, density: float,
          grad: torch.Tensor | None = None, score_lambda: float = 0.0) -> torch.Tensor:
    """Keep the keep_count(density) largest scores |w| + lambda*|g| among the kept positions.

    Positions already masked out never outrank kept ones (they only fill up if the target
    count exceeds the current one).
    """
    score = weight.detach().abs()
    if grad is not None and score_lambda:
        score = score + score_lambda * grad.detach().abs()
    score = torch.where(mask, score, torch.full_like(score, -1.0)).flatten()
    k = keep_count(score.numel(), density)
    new = torch.zeros(score.numel(), dtype=torch.bool, device=score.device)
    new[score.topk(k, sorted=False).indices] = True
    return new.view_as(mask)


def grow(mask: torch.Tensor, density: float, generator: torch.Generator) -> torch.Tensor:
    """Add positions chosen uniformly at random among the masked-out ones, up to keep_count(density).

    A mask already at or above the target is returned unchanged.
    """
    flat = mask.flatten()
    n = keep_count(flat.numel(), density) - int(flat.sum())
    if n <= 0:
        return mask.clone()
    noise = torch.rand(flat.numel(), generator=generator).to(flat.device)
    noise.masked_fill_(flat, -1.0)  # kept positions are never drawn
    new = flat.clone()
    new[noise.topk(n, sorted=False).indices] = True
    return new.view_as(mask)


def changed_fraction(old: torch.Tensor, new: torch.Tensor) -> float:
    """Fraction of positions whose kept/removed state differs."""
    return float((old != new).sum()) / max(1, old.numel())
