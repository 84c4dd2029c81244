"""SET (Mocanu et al. 2018): at every update, per layer, drop the fraction zeta of the
positive active weights closest to zero and, separately, zeta of the negative ones (the
reference's ``weightsEvolution``: the smallest positive and the largest negative values;
active weights exactly 0 lie between both thresholds and go too), then regrow as many as
were dropped at random zero positions; new weights start at zero.
Updates happen at every positive multiple of ``sparsity.update_every`` epochs (default:
``interval``; SET's paper updates after every epoch: 1) for the whole run, independently of
the cadence of freezing and sieving; the density never changes,
so the mask keeps exactly its target count."""
from __future__ import annotations

import math

from .base import Method


def drop_count(active: int, fraction: float) -> int:
    """Weights an update replaces in a layer with ``active`` weights (SET's and RigL's floor)."""
    return int(math.floor(fraction * active))


class SET(Method):
    name = "set"
    summary = "SET: drop the smallest magnitudes, regrow at random"
    fields = {"update_fraction": 0.3, "update_every": None}

    def every(self) -> int:
        """Epochs between mask updates: sparsity.update_every, else the run's interval."""
        return int(self.param("update_every") or self.cfg.interval)

    def mask_update(self, epoch: int) -> tuple[float, float] | None:
        if not self.active or epoch <= 0 or epoch % self.every():
            return None
        return (self.target, self.target)

    def update_epochs(self) -> list[int]:
        return list(range(self.every(), self.cfg.epochs, self.every())) if self.active else []

    # ---------------------------------------------------------------- torch rule
    def layer_plan(self, update, layers) -> dict:
        return {}

    def update_layer(self, weight, mask, args, grad, generator):
        """(kept after the drop, new mask) for one layer."""
        from engine.sparsity import masks as M  # torch: the rule runs in training only
        n = mask.numel()
        active = int(mask.sum())
        keep = signed_drop(weight, mask.bool(), float(self.param("update_fraction")))
        return keep, M.grow(keep, active / n, generator)


def signed_drop(weight, mask, fraction: float):
    """The kept mask after SET's drop: of the active positive weights the floor(fraction x
    count) smallest go, of the negative ones the floor(fraction x count) closest to zero;
    active exact zeros go too. Ties are broken by position (stable)."""
    import torch
    w = weight.detach().flatten()
    m = mask.flatten()
    keep = m & (w != 0)
    for side in (m & (w > 0), m & (w < 0)):
        drop = drop_count(int(side.sum()), fraction)
        if drop:
            mag = torch.where(side, w.abs(), torch.full_like(w, float("inf")))
            idx = torch.sort(mag, stable=True).indices[:drop]
            keep[idx] = False
    return keep.view_as(mask)
