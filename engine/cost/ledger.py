"""The training-cost ledger: the FLOPs a run actually spent, the dense equivalent of the
same schedule, and what sparsity, freezing and sieving saved, per epoch and cumulatively.

It counts the samples actually trained (on_batch_end, from the batch's index tensor: no
device sync) and, at the end of each epoch, prices them at the measured mask densities
(trainer.state.densities) and the epoch's frozen prefix (trainer.state.frozen_prefix)
with the formulas engine.cost.projection uses, so a run's ledger and its projection agree.
"""
from __future__ import annotations

import copy

from engine.component import Component
from engine.cost import costmodel
from engine.cost.arch import describe
from engine.cost.projection import epoch_flops, samples_per_epoch
from engine.run.payloads import OVERHEAD, SOURCES, Flops, FlopsTotals, add_flops, read_flops, with_overhead, zero_flops  # noqa: F401
from engine.sparsity.methods import method_for


class Ledger(Component):
    name = "ledger"

    def __init__(self, cfg):
        self.cfg = cfg
        self.arch = None
        self.train_size = 0
        self.total: Flops = zero_flops()
        self.epochs_counted = 0
        self.epoch_samples = 0
        self._epoch = None
        self._resume = None    # (epoch, samples) of a checkpoint taken inside an epoch

    def on_run_start(self, trainer) -> None:
        self.arch = getattr(trainer, "arch", None) or describe(
            self.cfg.model, trainer.num_classes, self.cfg.data.image_size)
        self.train_size = int(trainer.train_size)
        # the method's pure schedule prices its overhead, as engine.cost.projection does
        self.method = method_for(self.cfg, samples_per_epoch(self.cfg, self.train_size))

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
        self.epoch_samples += trainer.state.global_batch or len(indices)

    def epoch_entry(self, densities: dict, frozen_prefix: int, samples: int, epoch: int | None = None) -> Flops:
        """One epoch's {spent, dense, saved, overhead} for ``samples`` trained at these densities."""
        assert self.arch is not None, "on_run_start describes the model first"
        blocks = costmodel.block_forward_flops(self.arch, densities)
        over = {}
        if epoch is not None and getattr(self, "method", None) is not None:
            dense_blocks = costmodel.block_forward_flops(self.arch, {})
            over = self.method.overhead(epoch, samples, sum(blocks[frozen_prefix:]),
                                        sum(dense_blocks[frozen_prefix:]), self.arch.forward_flops_dense,
                                        self.train_size)
        return epoch_flops(self.train_size, samples, self.arch.forward_flops_dense,
                           sum(blocks), sum(blocks[:frozen_prefix]), over)

    def on_epoch_end(self, trainer, epoch: int, record: dict) -> None:
        st = trainer.state
        entry = self.epoch_entry(st.densities, st.frozen_prefix, self.epoch_samples, epoch)
        # what other components spent on top of training this epoch (the analyses' probes)
        overhead: dict[str, float] = {}
        for c in trainer.components:
            if c is not self:
                for k, v in c.overhead_flops(trainer, epoch).items():
                    overhead[k] = overhead.get(k, 0.0) + float(v)
        entry = with_overhead(entry, overhead)
        self.total = add_flops(self.total, entry)
        self.epochs_counted += 1
        self._epoch = None     # closed: a checkpoint from here on holds no partial epoch
        record["flops"] = copy.deepcopy(self.total)
        record["flops_epoch"] = entry

    def totals(self) -> FlopsTotals:
        """Cumulative {spent, dense, saved: {sparsity, freeze, sieve}, overhead} for run_finished."""
        out: FlopsTotals = {**copy.deepcopy(self.total), "epochs": self.epochs_counted}
        return out

    def state_dict(self) -> dict:
        return {"total": copy.deepcopy(self.total), "epochs_counted": self.epochs_counted,
                "epoch": self._epoch, "epoch_samples": self.epoch_samples}

    def load_state_dict(self, state: dict) -> None:
        self.total = read_flops(state.get("total")) or zero_flops()
        for k in OVERHEAD:
            self.total["overhead"].setdefault(k, 0.0)
        self.epochs_counted = int(state.get("epochs_counted", 0))
        if state.get("epoch") is not None:
            self._resume = (int(state["epoch"]), int(state.get("epoch_samples", 0)))
