"""Per-sample forgetting events, counted from the training forward pass itself.

A forgetting event is a sample going from correctly classified to misclassified between two
consecutive presentations (Toneva et al.; SpFDE App. C.1). Everything lives in per-sample
tensors on the training device and ``update`` only gathers/scatters by index, so tracking
costs a few tiny kernels per batch, no host synchronisation and no extra forward pass.

Distributed data parallel: each rank sees a different shard, and a sample usually lands on
another rank in the next epoch, so a rank's own "previous correctness" goes stale. ``all_reduce``
(called once per epoch) therefore sums the count increments, takes the max of the flags and
takes each sample's previous correctness from the rank that saw it last; afterwards every
rank holds identical statistics. In a single process it does nothing.
"""
from __future__ import annotations

import torch

from engine.training.process_group import active as _distributed


class ForgettingTracker:
    """Forgetting statistics of ``n`` samples over the current interval (since the last ``reset``)."""

    def __init__(self, n: int, device: str | torch.device = "cpu"):
        if n < 0:
            raise ValueError(f"ForgettingTracker: n must be >= 0, got {n}")
        self.n = int(n)
        self.device = torch.device(device)
        z = dict(device=self.device)
        self.prev_correct = torch.zeros(n, dtype=torch.bool, **z)   # correct at its last presentation
        self.count = torch.zeros(n, dtype=torch.int32, **z)         # forgetting events this interval
        self.ever_correct = torch.zeros(n, dtype=torch.bool, **z)   # correct at least once this interval
        self.presented = torch.zeros(n, dtype=torch.bool, **z)      # presented at least once this interval
        # Only for the cross-rank merge: when each sample was last seen, and the counts
        # every rank agreed on at the last merge.
        self._distributed = _distributed()
        self._step = 0
        self._last_seen = torch.zeros(n, dtype=torch.int64, **z) if self._distributed else None
        self._count_base = torch.zeros(n, dtype=torch.int32, **z) if self._distributed else None

    def update(self, indices: torch.Tensor, correct: torch.Tensor) -> None:
        """Record one batch: ``indices`` (dataset indices), ``correct`` (bool per sample)."""
        idx = indices.to(self.device, dtype=torch.long, non_blocking=True)
        ok = correct.to(self.device, dtype=torch.bool, non_blocking=True).reshape(-1)
        forgot = self.prev_correct.index_select(0, idx) & ~ok
        self.count.index_add_(0, idx, forgot.to(torch.int32))
        self.prev_correct.index_copy_(0, idx, ok)
        self.ever_correct.index_copy_(0, idx, self.ever_correct.index_select(0, idx) | ok)
        self.presented.index_fill_(0, idx, True)
        if self._last_seen is not None:
            self._step += 1
            self._last_seen.index_fill_(0, idx, self._step)

    def reset(self) -> None:
        """Start a new interval. Previous correctness is cleared too, so a sample that just
        joined the active set and one that stayed can be forgotten equally often."""
        for t in (self.prev_correct, self.count, self.ever_correct, self.presented):
            t.zero_()
        if self._distributed:
            self._last_seen.zero_()
            self._count_base.zero_()
            self._step = 0

    def all_reduce(self) -> None:
        """Merge the ranks' statistics (once per epoch); a no-op without torch.distributed."""
        if not self._distributed:
            return
        dist = torch.distributed
        on = self._comm_device()
        last = self._last_seen.to(on, copy=True)   # reduced in place; keep ours to compare
        dist.all_reduce(last, op=dist.ReduceOp.MAX)
        mine = (self._last_seen.to(on) == last) & (last > 0)
        # uint8: NCCL and gloo reduce it, bool they may not.
        flags = torch.stack([self.ever_correct.to(on), self.presented.to(on),
                             self.prev_correct.to(on) & mine]).to(torch.uint8)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        delta = (self.count - self._count_base).to(on)
        dist.all_reduce(delta, op=dist.ReduceOp.SUM)
        flags = flags.to(self.device).bool()
        self.ever_correct.copy_(flags[0])
        self.presented.copy_(flags[1])
        self.prev_correct.copy_(flags[2])
        self.count.copy_(self._count_base + delta.to(self.device))
        self._count_base.copy_(self.count)
        self._last_seen.copy_(last.to(self.device))
        # Ranks may have run different numbers of batches: continue every rank's clock from
        # the common maximum so a later presentation always carries a larger stamp.
        step = torch.tensor([self._step], dtype=torch.int64, device=on)
        dist.all_reduce(step, op=dist.ReduceOp.MAX)
        self._step = int(step.item())

    def _comm_device(self) -> torch.device:
        if torch.distributed.get_backend() == "nccl":
            return self.device if self.device.type == "cuda" else torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def scores(self) -> torch.Tensor:
        """Difficulty per sample (float, on the device): the interval's forgetting count, +inf
        for a sample never classified correctly in the interval (the hardest)."""
        inf = torch.tensor(float("inf"), device=self.device)
        return torch.where(self.ever_correct, self.count.to(torch.float32), inf)

    def state_dict(self) -> dict:
        d = {"n": self.n, "prev_correct": self.prev_correct.cpu(), "count": self.count.cpu(),
             "ever_correct": self.ever_correct.cpu(), "presented": self.presented.cpu()}
        if self._distributed:
            d.update(step=self._step, last_seen=self._last_seen.cpu(), count_base=self._count_base.cpu())
        return d

    def load_state_dict(self, d: dict) -> None:
        if int(d.get("n", -1)) != self.n:
            raise ValueError(f"ForgettingTracker: checkpoint tracks {d.get('n')} samples, this run has {self.n}")
        for name in ("prev_correct", "count", "ever_correct", "presented"):
            getattr(self, name).copy_(d[name].to(self.device))
        if self._distributed and "last_seen" in d:
            self._step = int(d["step"])
            self._last_seen.copy_(d["last_seen"].to(self.device))
            self._count_base.copy_(d["count_base"].to(self.device))
        elif self._distributed:
            # Saved by a single process: its statistics are already complete, identical here.
            self._step = 0
            self._last_seen.zero_()
            self._count_base.copy_(self.count)
