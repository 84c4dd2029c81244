"""MEST (Yuan et al. 2021): EM&S (soft memory bound) and EM (ALGORITHMS.md section 1).

Every ``interval`` epochs until ``search_end`` the mask drops the weakest weights (score
|w| + lambda |g|) and regrows at random; EM&S trains at the looser bound target - slack
(then target - slack_late from ``late_start``) and its last update, at search_end, prunes
to exactly the target. EM prunes to target + em_delta (em_delta_late from ``late_start``)
and regrows to the target. Unset, the deltas follow MEST's scripts: the prune-to bounds are
0.92 -> 0.91 at 90% and 0.96 -> 0.955 at 95% (the second from epoch 90 of 160), i.e. 20%
then 10% of the target density, 0.2 (1 - s) then 0.1 (1 - s) (docs/fidelity.md).
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
    fields = {"score_lambda": 0.0, "search_end": 0.75, "em_delta": None, "em_delta_late": None,
              "late_start": 0.5625}
    # MEST's deltas as shares of the target density (1 - s), used when em_delta(_late) is unset
    DELTA_SHARE = (0.2, 0.1)

    def boundaries(self) -> tuple[int, int]:
        """(late_start, search_end) in epochs: delta switches to em_delta_late at late_start."""
        return MestEMS.boundaries(self)

    def delta(self, epoch: int) -> float:
        """The prune-to bound's excess over the target at an update epoch (MEST's two-step delta)."""
        late, _ = self.boundaries()
        return self.deltas()[1 if epoch >= late else 0]

    def deltas(self) -> tuple[float, float]:
        """(delta before late_start, delta from late_start): the fields, else MEST's rule."""
        sp, density = self.cfg.sparsity, 1.0 - self.target
        early = sp.em_delta if sp.em_delta is not None else self.DELTA_SHARE[0] * density
        late = sp.em_delta_late if sp.em_delta_late is not None else self.DELTA_SHARE[1] * density
        return early, late

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
        return (self.target + self.delta(epoch), self.target)

    def update_epochs(self) -> list[int]:
        if not self.active:
            return []
        _, end = self.boundaries()
        return list(range(self.cfg.interval, end, self.cfg.interval))
