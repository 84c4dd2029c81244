"""MEST (Yuan et al. 2021): EM&S (soft memory bound) and EM (ALGORITHMS.md section 1).

Every ``interval`` epochs until ``search_end`` the mask drops the weakest weights (score
|w| + lambda |g|) and regrows at random; EM&S trains at the looser bound target - slack
(then target - slack_late from ``late_start``) and its last update, at search_end, prunes
to exactly the target. EM prunes to target + em_delta and regrows to the target.
"""
from __future__ import annotations

from engine.sparsity.allocation import allocate

from .base import Method


class MestEMS(Method):
    name = "mest_ems"
    summary = "MEST elastic mutation with a soft memory bound"
    fields = {"score_lambda": 0.0, "slack": 0.05, "slack_late": 0.025, "late_start": 0.5625,
              "search_end": 0.75}

    def boundaries(self) -> tuple[int, int]:
        """(late_start, search_end) in epochs, multiples of ``interval``; search_end stays
        below ``epochs`` so the final RM(s) happens during training."""
        cfg = self.cfg
        last_update = (cfg.epochs - 1) // cfg.interval * cfg.interval
        end = min(self._snap(cfg.sparsity.search_end), last_update)
        late = min(self._snap(cfg.sparsity.late_start), end)
        return late, end

    def training_sparsity(self, epoch: int) -> float:
        if not self.active:
            return 0.0
        late, end = self.boundaries()
        if epoch >= end:
            return self.target
        if epoch >= late:
            return self.target - self.cfg.sparsity.slack_late
        return self.target - self.cfg.sparsity.slack

    def sparsity_changes(self) -> list[int]:
        return sorted(e for e in set(self.boundaries()) if e > 0)

    def mask_update(self, epoch: int) -> tuple[float, float] | None:
        if not self.active or epoch <= 0:
            return None
        s = self.target
        _, end = self.boundaries()
        if epoch == end:
            return (s, s)   # the last RM(s): the model trains and ends at exactly s
        if epoch % self.cfg.interval or epoch >= end:
            return None
        return self._regular_update(epoch)

    def _regular_update(self, epoch: int) -> tuple[float, float]:
        return (self.target, self.training_sparsity(epoch))

    def update_epochs(self) -> list[int]:
        if not self.active:
            return []
        _, end = self.boundaries()
        out = list(range(self.cfg.interval, end, self.cfg.interval))
        return out + [end] if end > 0 else out

    # ---------------------------------------------------------------- torch rule
    def layer_plan(self, update, layers) -> dict:
        """Per layer (prune density, grow density) of one update."""
        prune_to, grow_to = update
        dist = self.layer_distribution()
        dp = allocate(self.cfg, layers, prune_to, dist)
        dg = allocate(self.cfg, layers, grow_to, dist)
        return {n: (dp[n], dg[n]) for n in dp}

    def update_layer(self, weight, mask, args, grad, generator):
        """(kept after the drop, new mask): drop by |w| + lambda|g|, regrow at random."""
        from engine.sparsity import masks as M  # torch: the rule runs in training only
        d_prune, d_grow = args
        keep = M.prune(weight, mask, d_prune, grad, float(self.param("score_lambda")))
        return keep, M.grow(keep, d_grow, generator)


class MestEM(MestEMS):
    name = "mest_em"
    summary = "MEST elastic mutation (prune to target + delta, regrow to target)"
    fields = {"score_lambda": 0.0, "search_end": 0.75, "em_delta": 0.05}

    def boundaries(self) -> tuple[int, int]:
        cfg = self.cfg
        last_update = (cfg.epochs - 1) // cfg.interval * cfg.interval
        end = min(self._snap(cfg.sparsity.search_end), last_update)
        return end, end

    def training_sparsity(self, epoch: int) -> float:
        return self.target if self.active else 0.0

    def sparsity_changes(self) -> list[int]:
        return []

    def mask_update(self, epoch: int) -> tuple[float, float] | None:
        if not self.active or epoch <= 0:
            return None
        _, end = self.boundaries()
        if epoch % self.cfg.interval or epoch >= end:
            return None
        return (self.target + self.cfg.sparsity.em_delta, self.target)

    def update_epochs(self) -> list[int]:
        if not self.active:
            return []
        _, end = self.boundaries()
        return list(range(self.cfg.interval, end, self.cfg.interval))
