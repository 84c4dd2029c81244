"""The raw numbers beside the report: metrics.csv (one row per epoch) and metrics.json."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

# Events kept whole in metrics.json (progress events are left out: they are UI feedback).
EVENTS_OF_INTEREST = ("freeze_events", "unfreeze_events", "sieve_updates", "mask_updates", "checkpoints")
_INT_COLUMNS = {"epoch", "samples", "samples_total", "active_samples"}


def _cell(name: str, v: float) -> Any:
    if not math.isfinite(v):
        return None
    if name in _INT_COLUMNS and float(v).is_integer():
        return int(v)
    return float(v)


def epoch_columns(model) -> dict[str, list]:
    """Column name -> per-epoch values (None where absent), in the run model's column order."""
    return {name: [_cell(name, float(v)) for v in model.column(name)] for name in model.columns()}


def write_csv(model, path: Path) -> Path:
    cols = epoch_columns(model)
    names = list(cols)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(names)
        for i in range(model.n_epochs):
            w.writerow(["" if cols[n][i] is None else repr(cols[n][i]) for n in names])
    return path


def _clean(obj: Any) -> Any:
    # JSON has no NaN/inf; numpy scalars become Python numbers.
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def metrics_dict(model) -> dict:
    started = model.run_started or {}
    out = {
        "name": model.name,
        "status": model.status,
        "config": model.config,
        "summary": model.summary(),
        "run": {k: started.get(k) for k in ("run_id", "device", "dataset", "model", "resumed", "start_epoch", "time")},
        "freeze_plan": model.freeze_plan,
        "projected": model.projected,
        "block_names": list(model.block_names),
        "epochs": epoch_columns(model),
        "frozen_matrix": np.asarray(model.frozen_matrix()).astype(int).tolist(),
        "events": {k: list(getattr(model, k)) for k in EVENTS_OF_INTEREST},
        "finished": model.finished,
        "error": model.error,
    }
    return _clean(out)


def write_json(model, path: Path) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(metrics_dict(model), fh, indent=1, allow_nan=False)
        fh.write("\n")
    return path
