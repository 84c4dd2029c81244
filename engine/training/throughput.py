"""Records the run's measured speed for later wall-time estimates (engine.cost.wall_time).

The rate is the executed FLOPs of the epochs this session ran over the wall-clock time from
the first epoch's start to the run's end, so everything an epoch costs beyond its batches
(mask updates, sieve swaps, the test pass, analyses, checkpoints) is in it. The start-up
(interpreter, imports, data and model building) is recorded beside it: from the process's
start (``engine.run.started``, set when the CLI is imported) to the first epoch. Rank 0
only; a run that trained no epoch records nothing.
"""
from __future__ import annotations

import time

from engine.component import Component
from engine.cost import wall_time
from engine.run import started


class ThroughputRecorder(Component):
    name = "throughput"

    def __init__(self, cfg, device: str, primary: bool = True):
        self.cfg, self.device, self.primary = cfg, device, primary
        self.flops = 0.0
        self.t_first: float | None = None      # monotonic time the session's first epoch started
        self.first_epoch_s = 0.0               # the first epoch's wall time (warm-up included)
        self.startup: float | None = None

    def on_epoch_start(self, trainer, epoch: int) -> None:
        if self.t_first is None:
            self.t_first = time.monotonic()
            self.startup = started.seconds_since_start()
        elif not self.first_epoch_s:
            self.first_epoch_s = time.monotonic() - self.t_first

    def on_epoch_end(self, trainer, epoch: int, record: dict) -> None:
        fl = record.get("flops_epoch")
        if isinstance(fl, dict):
            self.flops += wall_time.executed_flops(fl)

    def seconds(self) -> float:
        return time.monotonic() - self.t_first if self.t_first is not None else 0.0

    def on_run_end(self, trainer, status: str) -> None:
        secs = self.seconds()
        if self.primary and secs > 0 and self.flops > 0:
            name = getattr(getattr(trainer, "run_dir", None), "name", "a run")
            wall_time.record(self.cfg, self.device, self.flops / secs, f"run {name} on {time.strftime('%Y-%m-%d')}",
                             startup_s=self.startup)
