"""Circular data sieving (SpFDE Sec. 4.3, App. C) and MEST's one-shot data efficiency.

circular: a seeded random ``round(ratio * N)`` samples start in the removed queue (FIFO),
the rest form the active set, the only samples trained on. At every epoch that is a positive
multiple of ``interval`` the k = round(update_ratio * removed) easiest active samples
(fewest forgetting events in the interval, ties broken at random) go to the queue's tail and
k samples from its head join the active set, so the active size never changes. Once every
initially removed sample has come back, the queue is shuffled after each update.

oneshot: the whole set until ``sieve_oneshot_epoch(cfg)``, forgetting tracked over the whole
run so far, then the ``round(ratio * N)`` least-forgotten samples leave for good.

Every random decision uses a keyed generator, so a resumed run decides exactly as an
uninterrupted one. docs/data-sieving.md describes the design.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from engine.component import Component
from engine.config import sieve_oneshot_epoch, sieve_removed, sieve_swapped
from engine.sieving.forgetting import ForgettingTracker
from engine.training.process_group import active as _distributed
from engine.training.process_group import rank as _rank
from engine.training.seeding import gen

HIST_MAX_BINS = 20


def easiest_first(scores: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Positions of ``scores`` from easiest (lowest) to hardest, ties in random order."""
    perm = torch.randperm(scores.numel(), generator=generator)
    return perm[torch.sort(scores[perm], stable=True).indices]


def forgetting_histogram(scores: torch.Tensor) -> dict:
    """{edges, counts, never_correct} of forgetting counts; +inf (never correct) counted apart.
    Integer bins [e_i, e_{i+1}), at most HIST_MAX_BINS of them."""
    finite = scores[torch.isfinite(scores)]
    top = int(finite.max().item()) if finite.numel() else 0
    width = max(1, math.ceil((top + 1) / HIST_MAX_BINS))
    nbins = math.ceil((top + 1) / width)
    counts = torch.bincount((finite.long() // width), minlength=nbins)[:nbins]
    return {"edges": [i * width for i in range(nbins + 1)], "counts": counts.tolist(),
            "never_correct": int(scores.numel() - finite.numel())}


class Sieve(Component):
    name = "sieve"

    def __init__(self, cfg):
        self.cfg = cfg
        self.enabled = cfg.sieve.ratio > 0
        self.mode = cfg.sieve.mode
        self.seed = cfg.seed
        self.n = 0
        self.n_removed = 0
        self.tracker: ForgettingTracker | None = None
        self.active: torch.Tensor | None = None     # sorted dataset indices trained on
        self.queue = torch.zeros(0, dtype=torch.long)  # removed samples, head first
        self.initial_waiting = 0                     # initially removed samples not yet back
        self.removed_for_good = False                # oneshot: the removal happened
        self.last_update_epoch = -1                  # guards against a repeated on_epoch_start
        self.tracking = False
        self._pending: dict | None = None

    # ---- set-up -------------------------------------------------------------------------
    def on_run_start(self, trainer) -> None:
        self.n = int(trainer.train_size)
        self.n_removed = sieve_removed(self.cfg, self.n) if self.enabled else 0
        if self.n_removed == 0:
            self.enabled = False
            self.active = torch.arange(self.n)
            return
        if self.n_removed >= self.n:
            raise ValueError(f"sieve.ratio={self.cfg.sieve.ratio} removes {self.n_removed} of "
                             f"{self.n} training samples; at least one must stay active")
        self.tracker = ForgettingTracker(self.n, trainer.device)
        if self._pending is not None:
            self._apply_state(self._pending)
            self._pending = None
        elif self.mode == "circular":
            perm = torch.randperm(self.n, generator=gen(self.seed, "sieve-split"))
            self.queue = perm[:self.n_removed].clone()
            self.active = torch.sort(perm[self.n_removed:]).values
            self.initial_waiting = self.n_removed
        else:
            self.active = torch.arange(self.n)

    # ---- per epoch ----------------------------------------------------------------------
    def epoch_indices(self, epoch: int) -> torch.Tensor:
        """The active dataset indices (CPU LongTensor, sorted; do not modify in place)."""
        if self.active is None:
            raise RuntimeError("Sieve.epoch_indices called before on_run_start")
        return self.active

    def on_epoch_start(self, trainer, epoch: int) -> None:
        if not self.enabled:
            return
        if epoch != self.last_update_epoch:
            if self.mode == "circular":
                if epoch > 0 and epoch % self.cfg.interval == 0:
                    self._circular_update(trainer, epoch)
            elif not self.removed_for_good and epoch >= sieve_oneshot_epoch(self.cfg):
                self._oneshot_removal(trainer, epoch)
        self.tracking = self._needs_tracking(epoch)

    def _needs_tracking(self, epoch: int) -> bool:
        # Statistics are only worth collecting if a decision will still use them.
        if self.mode == "oneshot":
            return not self.removed_for_good and epoch < sieve_oneshot_epoch(self.cfg)
        iv = self.cfg.interval
        next_update = (epoch // iv + 1) * iv
        return next_update < self.cfg.epochs

    def on_batch_end(self, trainer, indices, correct, loss) -> None:
        if self.tracking:
            self.tracker.update(indices, correct)

    def on_epoch_end(self, trainer, epoch: int, record: dict) -> None:
        if self.tracking:
            self.tracker.all_reduce()
        active = int(self.active.numel())
        record["sieve"] = {"active": active, "removed": self.n - active,
                           "initial_waiting": self.initial_waiting}

    # ---- decisions ----------------------------------------------------------------------
    def _active_scores(self) -> torch.Tensor:
        return self.tracker.scores().index_select(0, self.active.to(self.tracker.device)).cpu()

    def _circular_update(self, trainer, epoch: int) -> None:
        scores = self._active_scores()
        removed = self.queue.numel()
        k = min(sieve_swapped(self.cfg, removed), self.active.numel())
        order = easiest_first(scores, gen(self.seed, "sieve-ties", epoch))
        out_pos = order[:k]
        swapped_out = self.active[out_pos]
        swapped_in = self.queue[:k]
        keep = torch.ones(self.active.numel(), dtype=torch.bool)
        keep[out_pos] = False
        queue = torch.cat([self.queue[k:], swapped_out])
        initial_waiting = max(0, self.initial_waiting - k)
        if initial_waiting == 0:
            queue = queue[torch.randperm(queue.numel(), generator=gen(self.seed, "sieve-queue", epoch))]
        active = torch.sort(torch.cat([self.active[keep], swapped_in])).values
        active, queue = self._agree(active, queue)
        self.active, self.queue, self.initial_waiting = active, queue, initial_waiting
        self.last_update_epoch = epoch
        self.tracker.reset()
        self._emit(trainer, epoch, k, scores, swapped_in, swapped_out)

    def _oneshot_removal(self, trainer, epoch: int) -> None:
        scores = self.tracker.scores().cpu()
        order = easiest_first(scores, gen(self.seed, "sieve-ties", epoch))
        gone = order[:self.n_removed]
        keep = torch.ones(self.n, dtype=torch.bool)
        keep[gone] = False
        active, queue = self._agree(torch.arange(self.n)[keep], torch.sort(gone).values)
        self.active, self.queue = active, queue
        self.removed_for_good = True
        self.last_update_epoch = epoch
        self.tracker.reset()
        self._emit(trainer, epoch, self.n_removed, scores, torch.zeros(0, dtype=torch.long), queue)

    def _agree(self, active: torch.Tensor, queue: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rank 0's decision wins on every rank (the statistics are identical after
        all_reduce; this makes agreement a guarantee rather than a consequence)."""
        if not _distributed():
            return active, queue
        dist = torch.distributed
        on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
        both = torch.cat([active, queue]).to(on)
        dist.broadcast(both, src=0)
        both = both.cpu()
        return both[:active.numel()], both[active.numel():]

    def _emit(self, trainer, epoch, k, scores, swapped_in, swapped_out) -> None:
        if _rank() != 0:
            return
        trainer.emit("sieve_update", epoch=int(epoch), active_size=int(self.active.numel()),
                     removed_size=int(self.queue.numel()), k=int(k),
                     initial_waiting=int(self.initial_waiting),
                     histogram=forgetting_histogram(scores),
                     swapped_in=swapped_in.tolist(), swapped_out=swapped_out.tolist())

    # ---- resume -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        if not self.enabled or self.active is None:
            return {"enabled": False}
        return {"enabled": True, "mode": self.mode, "n": self.n, "active": self.active.clone(),
                "queue": self.queue.clone(), "initial_waiting": self.initial_waiting,
                "removed_for_good": self.removed_for_good, "last_update_epoch": self.last_update_epoch,
                "tracking": self.tracking, "tracker": self.tracker.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state.get("enabled"):
            return
        if self.tracker is None:
            self._pending = state       # applied in on_run_start, once the device is known
        else:
            self._apply_state(state)

    def _apply_state(self, s: dict) -> None:
        if s["mode"] != self.mode or int(s["n"]) != self.n:
            raise ValueError(f"sieve checkpoint is for mode={s['mode']} with {s['n']} samples; "
                             f"this run has mode={self.mode} with {self.n}")
        self.active = s["active"].clone()
        self.queue = s["queue"].clone()
        self.initial_waiting = int(s["initial_waiting"])
        self.removed_for_good = bool(s["removed_for_good"])
        self.last_update_epoch = int(s["last_update_epoch"])
        self.tracking = bool(s["tracking"])
        self.tracker.load_state_dict(s["tracker"])
