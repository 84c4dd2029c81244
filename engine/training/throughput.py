"""Records the run's measured speed for later wall-time estimates (engine.cost.wall_time):
executed FLOPs over the training and evaluation time of the epochs this session ran,
stored at the run's end under this machine, model, batch and device. Rank 0 only; a run
that trained no epoch records nothing."""
from __future__ import annotations

import time

from engine.component import Component
from engine.cost import wall_time


class ThroughputRecorder(Component):
    name = "throughput"

    def __init__(self, cfg, device: str, primary: bool = True):
        self.cfg, self.device, self.primary = cfg, device, primary
        self.flops = 0.0
        self.seconds = 0.0

    def on_epoch_end(self, trainer, epoch: int, record: dict) -> None:
        fl = record.get("flops_epoch")
        if isinstance(fl, dict):
            self.flops += wall_time.executed_flops(fl)
            self.seconds += float(record.get("epoch_time") or 0.0) + float(record.get("eval_time") or 0.0)

    def on_run_end(self, trainer, status: str) -> None:
        if self.primary and self.seconds > 0 and self.flops > 0:
            name = getattr(getattr(trainer, "run_dir", None), "name", "a run")
            wall_time.record(self.cfg, self.device, self.flops / self.seconds,
                             f"run {name} on {time.strftime('%Y-%m-%d')}")
