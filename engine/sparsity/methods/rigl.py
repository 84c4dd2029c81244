"""RigL (Evci et al. 2020): every delta_T training steps until ``search_end`` (75%) of the
steps, per layer, drop the fraction alpha_t of the active weights with the smallest
magnitude and grow as many where the dense gradient's magnitude is largest among the zero
positions; new weights start at zero. alpha_t = alpha/2 (1 + cos(pi t / T_end)). ERK by
default.

Cost (RigL's paper, Appendix H): a step costs 3 f_S, an update step also needs the dense
gradient, (3 f_S dT + 2 f_S + f_D) / (dT + 1) per step on average, so every sample trained
before T_end carries (f_D - f_S) / (dT + 1) on top of its 3 f_S: ``overhead.dst_dense_grad``.
f_S, f_D are the forward FLOPs of the unfrozen blocks (a frozen block's mask does not move).
"""
from __future__ import annotations

import bisect
import math

from .base import Method
from .set import drop_count


def num_batches(n: int, batch_size: int) -> int:
    return -(-n // batch_size)   # the loaders keep the last, partial batch


class RigL(Method):
    name = "rigl"
    summary = "RigL: drop the smallest magnitudes, grow the largest dense gradients"
    fields = {"update_fraction": 0.3, "update_steps": 100, "search_end": 0.75}
    distribution = "erk"
    step_based = True

    def __init__(self, cfg, samples=None):
        super().__init__(cfg, samples)
        self._starts: list[int] | None = None

    # ---------------------------------------------------------------- steps
    def _steps(self) -> list[int]:
        """Global step at which each epoch starts, plus the total at the end."""
        if self._starts is None:
            if self.samples is None:
                raise ValueError("rigl: the schedule needs the samples per epoch (bind samples first)")
            bs, out, t = self.cfg.batch_size, [], 0
            for n in self.samples:
                out.append(t)
                t += num_batches(n, bs)
            out.append(t)
            self._starts = out
        return self._starts

    def epoch_start_step(self, epoch: int) -> int:
        return self._steps()[epoch]

    def end_step(self) -> int:
        """T_end: no update at or after this step."""
        return int(self.param("search_end") * self._steps()[-1])

    def step_update(self, step: int) -> float | None:
        """alpha_t if the mask changes after the backward of global ``step``, else None."""
        dt, end = int(self.param("update_steps")), self.end_step()
        if not self.active or step <= 0 or step % dt or step >= end:
            return None
        return 0.5 * float(self.param("update_fraction")) * (1.0 + math.cos(math.pi * step / end))

    def sparsity_changes(self) -> list[int]:
        # the overhead stops inside the epoch holding T_end: a segment boundary for the plan
        if not self.active or self.samples is None:
            return []
        starts = self._steps()
        e = bisect.bisect_right(starts, self.end_step()) - 1
        return [x for x in (e, e + 1) if 0 < x < self.cfg.epochs]

    def phase_samples(self, epoch: int, samples: int) -> int:
        """Samples of ``epoch`` trained in steps before T_end."""
        if epoch >= len(self._steps()) - 1:
            return 0
        k = self.end_step() - self.epoch_start_step(epoch)
        if k <= 0:
            return 0
        return min(samples, k * self.cfg.batch_size)

    def check(self, n_sparse_layers: int, train_size: int) -> list[tuple[str, str]]:
        if not self.active:
            return []
        if self.samples is not None and int(self.param("update_steps")) >= self.end_step():
            # name the default when the user never set the field (e.g. the demo switched to rigl)
            given = "" if self.cfg.sparsity.update_steps is not None else " (the default)"
            return [("sparsity.update_steps", f"{self.param('update_steps')} steps{given}: RigL would never update "
                     f"the mask before step {self.end_step()} (search_end x {self._steps()[-1]} steps); "
                     f"set it below {self.end_step()} or raise epochs")]
        return []

    def overhead(self, epoch, samples, fwd_sparse_unfrozen, fwd_dense_unfrozen, fwd_dense, train_size):
        if not self.active:
            return {}
        per = (fwd_dense_unfrozen - fwd_sparse_unfrozen) / (int(self.param("update_steps")) + 1)
        return {"dst_dense_grad": self.phase_samples(epoch, samples) * per}

    # ---------------------------------------------------------------- torch rule
    def step_layer(self, weight, mask, dense_grad, fraction: float):
        """(kept after the drop, new mask): drop floor(fraction x active) smallest |w| among the
        active positions, grow as many of the largest |dense gradient| among the zero ones."""
        import torch
        flat_m = mask.flatten()
        active = int(flat_m.sum())
        k = drop_count(active, fraction)
        if k <= 0:
            return mask.clone(), mask.clone()
        score = weight.detach().abs().flatten().masked_fill(~flat_m, float("inf"))
        keep = flat_m.clone()
        keep[torch.topk(score, k, largest=False, sorted=False).indices] = False
        grow = dense_grad.detach().abs().flatten().masked_fill(keep, -1.0)
        new = keep.clone()
        new[torch.topk(grow, k, sorted=False).indices] = True
        return keep.view_as(mask), new.view_as(mask)
