"""SET (Mocanu et al. 2018): at every update, per layer, drop the fraction zeta of the active
weights with the smallest magnitude and regrow as many at random zero positions; new weights
start at zero. Updates happen at every positive multiple of ``interval`` epochs (SET's
paper updates after every epoch: interval 1) for the whole run; the density never changes,
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
    fields = {"update_fraction": 0.3}

    def mask_update(self, epoch: int) -> tuple[float, float] | None:
        if not self.active or epoch <= 0 or epoch % self.cfg.interval:
            return None
        return (self.target, self.target)

    def update_epochs(self) -> list[int]:
        return list(range(self.cfg.interval, self.cfg.epochs, self.cfg.interval)) if self.active else []

    # ---------------------------------------------------------------- torch rule
    def layer_plan(self, update, layers) -> dict:
        return {}

    def update_layer(self, weight, mask, args, grad, generator):
        """(kept after the drop, new mask) for one layer."""
        from engine.sparsity import masks as M  # torch: the rule runs in training only
        n = mask.numel()
        active = int(mask.sum())
        keep = M.prune(weight, mask, (active - drop_count(active, self.param("update_fraction"))) / n)
        return keep, M.grow(keep, active / n, generator)
