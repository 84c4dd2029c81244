"""GraSP (Wang et al. 2020): one-shot pruning at initialisation that preserves gradient flow.
Score S = -w * (H g), with g the gradient of the loss on ``score_batches`` seeded batches and
H g the Hessian-gradient product by double backward; the weights with the *largest* scores
are removed (one global threshold over all sparse layers), the mask then stays static.
The logits are not divided by a temperature (the official code's T=200 only rescales the loss).

Cost: the gradient g (3 f_D per scored sample) plus the Hessian-gradient product at twice a
gradient's cost (6 f_D), counted once as ``overhead.mask_scoring``.
"""
from __future__ import annotations

from .snip import SNIP


class GraSP(SNIP):
    name = "grasp"
    summary = "GraSP: one-shot mask at init from -w * (H g)"
    scoring_passes = 9.0
    keep_largest = False

    def scores(self, model, weights: list, batches) -> list:
        import torch
        import torch.nn.functional as F
        batches = list(batches)
        g = [torch.zeros_like(w) for w in weights]
        for x, y in batches:
            gi = torch.autograd.grad(F.cross_entropy(model(x), y), weights)
            for acc, v in zip(g, gi):
                acc.add_(v)
        hg = [torch.zeros_like(w) for w in weights]
        for x, y in batches:
            gi = torch.autograd.grad(F.cross_entropy(model(x), y), weights, create_graph=True)
            z: torch.Tensor = sum((a * b).sum() for a, b in zip(gi, g))  # type: ignore[assignment]
            for acc, v in zip(hg, torch.autograd.grad(z, weights)):
                acc.add_(v)
        return [-(w.detach() * h) for w, h in zip(weights, hg)]
