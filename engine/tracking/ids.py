"""``<run folder>/trackers.json``: the tracker run ids of a run ({"mlflow": {"run_id": ...},
"wandb": {"run_id": ...}}), written atomically as each tracker starts, so a resumed run (even
one killed outright) continues the same tracker runs instead of starting new ones."""
from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

FILE = "trackers.json"
_lock = threading.Lock()        # the worker threads of one run write in turn


def read(run_dir: str | Path) -> dict:
    try:
        data = json.loads((Path(run_dir) / FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record(run_dir: str | Path, tracker: str, ids: dict) -> None:
    """Merge one tracker's ids into the file (atomic replace)."""
    d = Path(run_dir)
    with _lock:
        data = read(d)
        data[tracker] = dict(ids)
        fd, tmp = tempfile.mkstemp(dir=d, prefix=f".{FILE}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1)
            os.replace(tmp, d / FILE)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
