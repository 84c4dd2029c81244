"""Past runs and sweeps into TensorBoard or MLflow: ``spfde-gui export --tensorboard OUT``
and ``--mlflow URI``. The events of each run folder are replayed through the same records
(engine.tracking.records) and tracker classes the live run uses, synchronously (an export
is asked for: a failure is an error, not a warning). Torch-free: TensorBoard files are
written with the tensorboard package's own writer (engine.tracking.tb_writer).

A resumed run's log holds epochs its later session redid: only the last session's copy
of each epoch is replayed (the live TensorBoard tracker purges them the same way).
"""
from __future__ import annotations

from pathlib import Path

from engine.run.events import EVENTS_FILE, read_events
from engine.sweep.manifest import is_sweep_dir
from engine.sweep.manifest import read as read_manifest
from engine.tracking.records import records
from engine.tracking.tb_writer import EventWriter
from engine.tracking.trackers import MLflowTracker, TensorBoardTracker, Tracker


class ExportError(ValueError):
    """The source is not a run or sweep folder, or the tracker refused the export."""


def run_dirs(source: str | Path) -> tuple[list[Path], str | None]:
    """The run folders of a run or sweep folder, and the sweep's name (None for a run)."""
    src = Path(source)
    if is_sweep_dir(src):
        m = read_manifest(src)
        dirs = sorted(d for c in m.cells for d in src.glob(f"{c.name}-2*") if (d / EVENTS_FILE).is_file())
        return dirs, m.name
    if (src / EVENTS_FILE).is_file():
        return [src], None
    raise ExportError(f"{src}: neither a run folder (events.jsonl) nor a sweep folder (sweep.yaml)")


def replayed(events: list[dict]) -> list[dict]:
    """The events worth replaying: an epoch's events from the session that trained it last."""
    starts = [(i, int(ev.get("start_epoch") or 0)) for i, ev in enumerate(events) if ev.get("event") == "run_started"]
    out = []
    for i, ev in enumerate(events):
        later = [s for j, s in starts if j > i]
        epoch = ev.get("epoch")
        if later and isinstance(epoch, int) and ev.get("event") != "run_started" and epoch >= min(later):
            continue                     # redone by a later session
        out.append(ev)
    return out


def _status(events: list[dict]) -> str:
    fin = [e for e in events if e.get("event") == "run_finished"]
    return str(fin[-1].get("status")) if fin else "failed"


def replay(tracker: Tracker, run_dir: Path, events: list[dict]) -> None:
    """One run's events through one tracker, start to finish."""
    tracker.start(None)
    params_done = False
    writer = tracker.w if isinstance(tracker, TensorBoardTracker) else None
    for ev in events:
        if writer is not None and isinstance(ev.get("time"), (int, float)):
            writer.wall_time = float(ev["time"])
        for rec in records(ev):
            if rec[0] == "params":
                if params_done:
                    continue
                params_done = True
            tracker.log(rec)
    tracker.log(("artifacts", str(run_dir)))
    tracker.log(("finish", _status(events)))


def has_epochs(events: list[dict]) -> bool:
    return any(e.get("event") == "epoch_end" for e in events)


def to_tensorboard(source: str | Path, out: str | Path) -> list[Path]:
    """Each run with epochs as a TensorBoard log folder OUT/<run folder name>; the folders written."""
    dirs, _ = run_dirs(source)
    written = []
    for d in dirs:
        events = replayed(list(read_events(d / EVENTS_FILE)))
        if not has_epochs(events):
            continue
        logdir = Path(out) / d.name
        replay(TensorBoardTracker(logdir, EventWriter), d, events)
        written.append(logdir)
    return written


def to_mlflow(source: str | Path, tracking_uri: str | None, experiment: str = "spfde") -> list[str]:
    """Each run with epochs as an MLflow run (a sweep's cells under one parent run); the run ids."""
    dirs, sweep = run_dirs(source)
    parent = None
    if sweep is not None and dirs:
        from engine.tracking.groups import create_parent
        parent = create_parent(tracking_uri, experiment, sweep, Path(source).name)
    ids = []
    for d in dirs:
        events = replayed(list(read_events(d / EVENTS_FILE)))
        if not has_epochs(events):
            continue
        t = MLflowTracker(tracking_uri, experiment, d.name, group=sweep, parent_run_id=parent)
        replay(t, d, events)
        ids.append(str(t.run_id))
    return ids
