"""The training-cost ledger: the FLOPs a run actually spent, the dense equivalent of the
same schedule, and what sparsity, freezing and sieving saved, per epoch and cumulatively.

It counts the samples actually trained (on_batch_end, from the batch's index tensor: no
device sync) and, at the end of each epoch, prices them at the measured mask densities
(trainer.sparsifier.densities()) and the epoch's frozen prefix (trainer.model.frozen_prefix)
with the formulas engine.plan uses, so a run's ledger and its projection agree.
"""
from __future__ import annotations

import copy

from engine import costmodel
from engine.arch import describe
from engine.component import Component
from engine.plan import SOURCES, add_flops, epoch_flops, zero_flops


class Ledger(Component):
    name = "ledger"

    def __init__(self, cfg):
        self.cfg = cfg
        self.arch = None
        self.train_size = 0
        self.total = zero_flops()
        self.epochs_counted = 0
        self.epoch_samples = 0
        self._epoch = None
        self._resume = None    # (epoch, samples) of a checkpoint taken inside an epoch

    def on_run_start(self, trainer) -> None:
        self.arch = getattr(trainer, "arch", None) or describe(
            self.cfg.model, trainer.num_classes, self.cfg.data.image_size)
        self.train_size = int(trainer.train_size)

    def on_epoch_start(self, trainer, epoch: int) -> None:
        self._epoch = epoch
        if self._resume is not None and self._resume[0] == epoch:
            self.epoch_samples = self._resume[1]
        else:
            self.epoch_samples = 0
        self._resume = None

    def on_batch_end(self, trainer, indices, correct, loss) -> None:
        # The global batch (every rank's samples) under distributed training, so each rank's
        # ledger holds the job's count; the trainer sets it per batch.
        self.epoch_samples += getattr(trainer, "global_batch", 0) or len(indices)

    def epoch_entry(self, densities: dict, frozen_prefix: int, samples: int) -> dict:
        """One epoch's {spent, dense, saved} for ``samples`` trained at these densities."""
        blocks = costmodel.block_forward_flops(self.arch, densities)
        return epoch_flops(self.train_size, samples, self.arch.forward_flops_dense,
                           sum(blocks), sum(blocks[:frozen_prefix]))

    def on_epoch_end(self, trainer, epoch: int, record: dict) -> None:
        sparsifier = getattr(trainer, "sparsifier", None)
        densities = sparsifier.densities() if sparsifier is not None else {}
        prefix = int(getattr(trainer.model, "frozen_prefix", 0))
        entry = self.epoch_entry(densities, prefix, self.epoch_samples)
        self.total = add_flops(self.total, entry)
        self.epochs_counted += 1
        self._epoch = None     # closed: a checkpoint from here on holds no partial epoch
        record["flops"] = copy.deepcopy(self.total)
        record["flops_epoch"] = entry

    def totals(self) -> dict:
        """Cumulative {spent, dense, saved: {sparsity, freeze, sieve}} for run_finished."""
        out = copy.deepcopy(self.total)
        out["epochs"] = self.epochs_counted
        return out

    def state_dict(self) -> dict:
        return {"total": copy.deepcopy(self.total), "epochs_counted": self.epochs_counted,
                "epoch": self._epoch, "epoch_samples": self.epoch_samples}

    def load_state_dict(self, state: dict) -> None:
        total = state.get("total") or zero_flops()
        self.total = {"spent": float(total["spent"]), "dense": float(total["dense"]),
                      "saved": {k: float(total["saved"].get(k, 0.0)) for k in SOURCES}}
        self.epochs_counted = int(state.get("epochs_counted", 0))
        if state.get("epoch") is not None:
            self._resume = (int(state["epoch"]), int(state.get("epoch_samples", 0)))
