"""GraSP (Wang et al. 2020): one-shot pruning at initialisation that preserves gradient flow.
Score S = -w * (H g), with g the gradient of the loss on ``score_batches`` seeded batches and
H g the Hessian-gradient product by double backward; the weights with the *largest* scores
are removed (one global threshold over all sparse layers), the mask then stays static.

As the official code (alecwangcq/GraSP, pruner/GraSP.py): the logits are divided by the
temperature T (``sparsity.temperature``, default 200) before the cross-entropy, which changes
g and H g non-uniformly (not a rescale), and g and H g run over every conv and linear weight
of the model, kept-dense layers included; only the sparse layers' scores are ranked.
The scored samples are class-balanced (per class the counts differ by at most one), as the
official ``samples_per_class``. Deviation (docs/fidelity.md): the official FC
re-initialisation before scoring is not done.

Cost: the gradient g (3 f_D per scored sample) plus the Hessian-gradient product at twice a
gradient's cost (6 f_D), counted once as ``overhead.mask_scoring``.
"""
from __future__ import annotations

from .snip import SNIP


class GraSP(SNIP):
    name = "grasp"
    summary = "GraSP: one-shot mask at init from -w * (H g)"
    fields = {"score_batches": 1, "temperature": 200.0}
    scoring_passes = 9.0
    class_balanced = True       # scoring samples as the official samples_per_class (engine.sparsity.scoring)
    keep_largest = False

    def scores(self, model, weights: list, batches) -> list:
        import torch
        import torch.nn.functional as F
        t = float(self.param("temperature"))
        every = [m.weight for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        ids = {id(w) for w in every}
        every += [w for w in weights if id(w) not in ids]     # a sparse weight of another kind
        batches = list(batches)
        g = [torch.zeros_like(w) for w in every]
        for x, y in batches:
            gi = torch.autograd.grad(F.cross_entropy(model(x) / t, y), every)
            for acc, v in zip(g, gi):
                acc.add_(v)
        hg = [torch.zeros_like(w) for w in every]
        for x, y in batches:
            gi = torch.autograd.grad(F.cross_entropy(model(x) / t, y), every, create_graph=True)
            z: torch.Tensor = sum((a * b).sum() for a, b in zip(gi, g))  # type: ignore[assignment]
            for acc, v in zip(hg, torch.autograd.grad(z, every)):
                acc.add_(v)
        by_id = {id(w): h for w, h in zip(every, hg)}
        return [-(w.detach() * by_id[id(w)]) for w in weights]
