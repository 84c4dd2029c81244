"""SNIP (Lee et al. 2019): one-shot pruning at initialisation by connection sensitivity
|g * w| on ``score_batches`` seeded training batches, one global threshold over all sparse
layers (exactly keep_count(all sparse weights, 1 - target) kept), then a static mask.

Cost: the scoring is a dense forward and backward per scored sample, 3 f_D, counted once
(epoch 0) as ``overhead.mask_scoring``. The layer densities come from the data, so the plan
prices the uniform split of the target (Table 2's convention) and the ledger the real masks.
"""
from __future__ import annotations

from .base import Method


class SNIP(Method):
    name = "snip"
    summary = "SNIP: one-shot mask at init from |g * w|"
    fields = {"score_batches": 1}
    distribution = None
    exact_plan = False
    scoring_passes = 3.0        # dense forward + backward per scored sample

    def scored_samples(self, train_size: int) -> int:
        return min(train_size, int(self.param("score_batches")) * self.cfg.batch_size)

    def check(self, n_sparse_layers: int, train_size: int) -> list[tuple[str, str]]:
        if self.active and n_sparse_layers == 0:
            return [("sparsity.dense_layers", f"{self.name} scores the sparse layers, but every layer is kept dense")]
        return []

    def overhead(self, epoch, samples, fwd_sparse_unfrozen, fwd_dense_unfrozen, fwd_dense, train_size):
        if not self.active or epoch != 0:
            return {}
        return {"mask_scoring": self.scoring_passes * fwd_dense * self.scored_samples(train_size)}

    # ---------------------------------------------------------------- torch rule
    def scores(self, model, weights: list, batches) -> list:
        """|dL/dw * w| summed over the batches, one tensor per weight."""
        import torch
        import torch.nn.functional as F
        grads = [torch.zeros_like(w) for w in weights]
        for x, y in batches:
            g = torch.autograd.grad(F.cross_entropy(model(x), y), weights)
            for acc, gi in zip(grads, g):
                acc.add_(gi)
        return [(g * w.detach()).abs() for g, w in zip(grads, weights)]

    keep_largest = True

    def masks(self, model, weights: list, batches, keep: int) -> list:
        """Global threshold: the ``keep`` best scores over all layers (exact count)."""
        import torch
        scores = self.scores(model, weights, batches)
        flat = torch.cat([s.flatten() for s in scores])
        idx = torch.topk(flat, keep, largest=self.keep_largest, sorted=False).indices
        sel = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
        sel[idx] = True
        out, at = [], 0
        for s in scores:
            out.append(sel[at:at + s.numel()].view_as(s))
            at += s.numel()
        return out
