"""Whether a run folder's last session completed: resuming it has nothing to do.

``spfde-train resume`` on a completed run used to start a session that trained no epoch and
appended another run_started/run_finished pair (the report then said "resumed 2x"). The
CLI asks here first and appends nothing to such a run.
"""
from __future__ import annotations

from pathlib import Path

from engine.run.events import EVENTS_FILE, read_events


def completed_epochs(run_dir: str | Path) -> int | None:
    """The epochs of a run whose last session finished with status *completed* (the events
    after its last run_started), else None (stopped, crashed, killed, still going, or no log)."""
    path = Path(run_dir) / EVENTS_FILE
    if not path.is_file():
        return None
    last: dict | None = None
    for ev in read_events(path):
        name = ev.get("event")
        if name == "run_started":
            last = None
        elif name == "run_finished":
            last = ev
    if last is None or last.get("status") != "completed":
        return None
    n = last.get("epochs_completed")
    return int(n) if isinstance(n, int) else 0
