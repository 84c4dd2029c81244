"""``<run folder>/trackers.json``: the tracker run ids of a run ({"mlflow": {"run_id": ...},
"wandb": {"run_id": ...}}, each with ``epoch``, the last epoch it has logged), written
atomically as each tracker starts and after each epoch, so a resumed run (even one killed
outright) continues the same tracker runs instead of starting new ones, and first sends
the epochs the killed session had queued but not sent."""
from __future__ import annotations

import json
import threading
from pathlib import Path

from engine import atomic_file

FILE = "trackers.json"
_lock = threading.Lock()        # the worker threads of one run write in turn


def read(run_dir: str | Path) -> dict:
    try:
        data = json.loads((Path(run_dir) / FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record(run_dir: str | Path, tracker: str, ids: dict) -> None:
    """Merge one tracker's ids (and its last logged epoch) into the file (atomic replace)."""
    d = Path(run_dir)
    with _lock:
        data = read(d)
        data[tracker] = {**(data.get(tracker) or {}), **ids}
        atomic_file.write_text(d / FILE, json.dumps(data, indent=1))
