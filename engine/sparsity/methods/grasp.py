"""GraSP (Wang et al. 2020): one-shot pruning at initialisation that preserves gradient flow.
Score S = -w * (H g), with g the gradient of the loss on ``score_batches`` seeded batches and
H g the Hessian-gradient product by double backward; the weights with the *largest* scores
are removed (one global threshold over all sparse layers), the mask then stays static.

As the official code (alecwangcq/GraSP, pruner/GraSP.py): the logits are divided by the
temperature T (``sparsity.temperature``, default 200) before the cross-entropy, which changes
g and H g non-uniformly (not a rescale), and g and H g run over every conv and linear weight
of the model, kept-dense layers included; only the sparse layers' scores are ranked.
The scored samples are class-balanced (per class the counts differ by at most one), as the
official ``samples_per_class``. As the official ``reinit=True`` (its default), the scores are
computed on a copy of the model whose Linear weights are re-initialised with Xavier normal
(``sparsity.reinit_fc``, default on; seeded from ``seed`` here, from the global RNG there);
the model itself keeps its weights and only takes the mask.

Cost: the gradient g (3 f_D per scored sample) plus the Hessian-gradient product at twice a
gradient's cost (6 f_D), counted once as ``overhead.mask_scoring``.
"""
from __future__ import annotations

from .snip import SNIP


class GraSP(SNIP):
    name = "grasp"
    summary = "GraSP: one-shot mask at init from -w * (H g)"
    fields = {"score_batches": 1, "temperature": 200.0, "reinit_fc": True}
    scoring_passes = 9.0
    class_balanced = True       # scoring samples as the official samples_per_class (engine.sparsity.scoring)
    keep_largest = False

    def scores(self, model, weights: list, batches) -> list:
        import torch
        import torch.nn.functional as F
        t = float(self.param("temperature"))
        if self.param("reinit_fc"):
            model, weights = self._fc_reinit_copy(model, weights)
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

    def _fc_reinit_copy(self, model, weights: list):
        """(copy of the model with Xavier-normal Linear weights, ``weights`` as the copy's
        parameters): the official GraSP scores such a copy (``reinit=True``)."""
        import copy

        import torch

        from engine.training.seeding import gen
        names = {id(p): n for n, p in model.named_parameters()}
        twin = copy.deepcopy(model)
        params = dict(twin.named_parameters())
        with torch.no_grad():
            linears = [m for m in twin.modules() if isinstance(m, torch.nn.Linear)]
            for i, m in enumerate(linears):
                torch.nn.init.xavier_normal_(m.weight, generator=gen(int(self.cfg.seed), "grasp_fc", i))
        return twin, [params[names[id(w)]] for w in weights]
