"""The training component that feeds the trackers (engine.tracking), on rank 0 only.

It starts them when the session's ``run_started`` event goes out (so a resume knows its
first epoch and continues the tracker runs named in trackers.json), hands every event's
records (engine.tracking.records) to each tracker's background queue, adds the report
files at ``run_finished`` and closes them at the end of the run, waiting at most
``trackers.flush_timeout_s``. A failing tracker becomes one ``warning`` event, emitted
here on the training thread, and the run goes on.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from engine.component import Component, TrainerView
from engine.tracking import ids, setup
from engine.tracking.background import BackgroundTracker, wait_all
from engine.tracking.records import records

log = logging.getLogger("engine.tracking")


def summary_writer(logdir: str, purge_step: int | None = None) -> Any:
    """torch's SummaryWriter (the engine has torch loaded already)."""
    from torch.utils.tensorboard import SummaryWriter
    return SummaryWriter(log_dir=logdir, purge_step=purge_step)


class Tracking(Component):
    name = "trackers"

    def __init__(self, cfg, run_dir: str | Path | None, primary: bool = True, tb_writer=summary_writer):
        self.cfg = cfg
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.enabled = bool(primary and self.run_dir is not None and setup.enabled(cfg))
        self.tb_writer = tb_writer
        self.active: list[BackgroundTracker] = []
        self._started = False

    def on_event(self, trainer: TrainerView, ev: dict) -> None:
        if not self.enabled:
            return
        name = ev.get("event")
        if name == "run_started" and not self._started:
            self._start(ev)
        for rec in records(ev):
            for t in self.active:
                t.put(rec)
        if name == "run_finished":
            for t in self.active:
                t.put(("artifacts", str(self.run_dir)))
        if name in ("epoch_end", "run_started"):
            self._report(trainer)

    def on_run_end(self, trainer: TrainerView, status: str) -> None:
        if not self.active:
            return
        for t in self.active:
            t.put(("finish", status))
        timeout = float(self.cfg.trackers.flush_timeout_s)
        wait_all(self.active, timeout)
        self._report(trainer, timeout)
        self.active = []

    def _start(self, ev: dict) -> None:
        assert self.run_dir is not None
        self._started = True
        purge = int(ev.get("start_epoch") or 0) if ev.get("resumed") else None
        known = ids.read(self.run_dir)
        run_dir = self.run_dir
        for tracker in setup.build(self.cfg, run_dir, self.tb_writer, purge_step=purge):
            resume = known.get(tracker.name) if ev.get("resumed") else None
            self.active.append(BackgroundTracker(tracker, resume, lambda n, i: ids.record(run_dir, n, i)))
        log.info("trackers: %s", ", ".join(t.name for t in self.active))

    def _report(self, trainer: TrainerView, timeout: float | None = None) -> None:
        for t in self.active:
            msg = t.warning(timeout)
            if msg:
                log.warning("%s", msg)
                trainer.emit("warning", source=f"trackers.{t.name}", message=msg)
