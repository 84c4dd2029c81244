"""The engine's event stream: one JSON object per line, versioned.

Pure Python: the engine writes these, the GUI and the report read them. Documented in
docs/events.md. Each event has ``event`` (its type), ``v`` (SCHEMA_VERSION) and ``time``
(Unix seconds). ``EVENT_FIELDS`` lists each type's required fields and their JSON types;
extra fields are allowed (readers ignore what they do not know, and unknown event types
are skipped, so old readers survive new engines).
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from typing import Any

SCHEMA_VERSION = 1

NUM = (int, float)
_T: dict[str, type | tuple[type, ...]] = {"str": str, "int": int, "num": NUM, "bool": bool, "dict": dict, "list": list,
      "num?": NUM + (type(None),), "str?": (str, type(None)), "dict?": (dict, type(None)),
      "int?": (int, type(None)), "list?": (list, type(None))}

# Required fields per event type. Nested structures are described in docs/events.md.
EVENT_FIELDS: dict[str, dict[str, str]] = {
    # config: the full RunConfig dict; model: {name, params, blocks: [{name, params,
    # forward_flops, layers}]}; freeze_plan: planner output or null; projected: plan summary.
    "run_started": {"run_id": "str", "run_dir": "str", "config": "dict", "device": "str",
                    "dataset": "dict", "model": "dict", "freeze_plan": "dict?", "projected": "dict?",
                    "resumed": "bool", "start_epoch": "int"},
    # Throttled in-epoch progress (at most a few per second) for long epochs.
    "progress": {"epoch": "int", "batch": "int", "batches": "int", "loss": "num?", "images_per_s": "num?"},
    # flops: cumulative {spent, dense, saved: {sparsity, freeze, sieve}}; flops_epoch: same for the epoch.
    # memory: {kind: "cuda"|"cpu", peak_bytes, rss_bytes}; lrs: per block name -> lr.
    "epoch_end": {"epoch": "int", "epochs": "int", "train_loss": "num", "train_acc": "num",
                  "test_loss": "num?", "test_acc": "num?", "lr": "num", "lrs": "dict",
                  "epoch_time": "num", "samples": "int", "samples_total": "int",
                  "memory": "dict", "flops": "dict", "flops_epoch": "dict",
                  "density": "num", "frozen_blocks": "list", "active_samples": "int"},
    # layers: [{name, density, changed}] (changed = fraction of positions that changed).
    "mask_update": {"epoch": "int", "layers": "list", "density": "num"},
    "freeze": {"epoch": "int", "block": "str", "block_index": "int", "flops_saved": "num"},
    # unfreeze (single_shot_resume's final phase, periodic schemes) mirrors freeze.
    "unfreeze": {"epoch": "int", "block": "str", "block_index": "int"},
    # histogram: {edges: [...], counts: [...]} of forgetting counts in the active set.
    "sieve_update": {"epoch": "int", "active_size": "int", "removed_size": "int", "k": "int",
                     "initial_waiting": "int", "histogram": "dict",
                     "swapped_in": "list", "swapped_out": "list"},
    "checkpoint": {"epoch": "int", "batch": "int", "path": "str", "reason": "str", "bytes": "int"},
    "run_finished": {"status": "str", "epochs_completed": "int", "final": "dict", "flops": "dict",
                     "wall_time": "num"},
    "error": {"message": "str", "traceback": "str"},
    # Something the user should check that does not stop the run (source: model,
    # trackers.mlflow, ...), e.g. freeze blocks derived from the top-level modules because the
    # model declares none, or an experiment tracker that failed (it is then off); once per cause.
    "warning": {"source": "str", "message": "str"},
    # Corrupt images skipped (data.on_bad_sample: skip) in one epoch; samples: [{path, reason}] (at most 20).
    "bad_samples": {"epoch": "int", "split": "str", "count": "int", "total": "int", "samples": "list"},
    # Sweep-level events (spfde-train sweep; stdout and <sweep>/sweep_events.jsonl).
    "sweep_started": {"sweep_dir": "str", "sweep": "str", "cells": "int", "todo": "int", "slots": "list"},
    "cell_started": {"cell": "str", "index": "int", "run_dir": "str", "resumed": "bool", "attempt": "int"},
    "cell_finished": {"cell": "str", "index": "int", "run_dir": "str", "status": "str"},
    "cell_stopped": {"cell": "str", "index": "int", "run_dir": "str"},
    "cell_failed": {"cell": "str", "index": "int", "run_dir": "str?", "error": "str", "attempt": "int",
                    "will_retry": "bool"},
    "sweep_finished": {"status": "str", "completed": "int", "failed": "int", "remaining": "int"},
    # Section 3 analyses (engine.analysis), once per epoch when analysis.enabled: grad_norm
    # per block (null while frozen); when measured, cka / block_mask_similarity per block
    # and mask_similarity per sparse layer (null at the first measurement); the last
    # epoch adds similarity_to_final (Fig. 1a), rank_overlap_to_final and measure_epochs.
    # docs/events.md has the details.
    "analysis": {"epoch": "int", "measured": "bool", "grad_norm": "dict"},
    # requeued: a Slurm job restarted (preempted or warned before its time limit) and resumed
    # from its run folder; attempt counts from 1 (engine.executor.job).
    "requeued": {"attempt": "int", "restart_count": "int", "job_id": "str"},
    # threads: auto on a CPU kept a different intra-op thread count (engine.training.adaptive_threads).
    "threads": {"epoch": "int", "batch": "int", "threads": "int", "previous": "int", "images_per_s": "num"},
}
# How a run ends (run_finished.status) ...
COMPLETED, STOPPED = "completed", "stopped"
# every epoch finished but the final checkpoint could not be written (a full disk)
FINISHED_UNSAVED = "finished_unsaved"
RUN_STATUSES = (COMPLETED, STOPPED, FINISHED_UNSAVED)
# ... and every state a reader can assign a run folder (the studio, the report): a run is
# "new" before its first event, "running" while it writes, "crashed" if it ended otherwise.
RUN_STATES = ("new", "running", COMPLETED, STOPPED, "crashed")
# The event log of a run directory.
EVENTS_FILE = "events.jsonl"
CHECKPOINT_REASONS = ("periodic", "end", "stop", "command")


def make_event(name: str, **fields: Any) -> dict:
    ev = {"event": name, "v": SCHEMA_VERSION, "time": round(time.time(), 3)}
    ev.update(fields)
    return ev


def _jsonable(obj: Any) -> Any:
    # NaN/inf are not JSON: write null so every reader can parse the line.
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def dumps(ev: dict) -> str:
    """One line of the stream (no newline)."""
    return json.dumps(_jsonable(ev), separators=(",", ":"), allow_nan=False, default=_default)


def _default(obj: Any) -> Any:
    # numpy scalars/arrays without importing numpy
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def validate_event(ev: Any) -> list[str]:
    """Problems with one decoded event; empty when it conforms (unknown types conform)."""
    if not isinstance(ev, dict):
        return [f"expected a JSON object, got {type(ev).__name__}"]
    errs = []
    name = ev.get("event")
    if not isinstance(name, str):
        errs.append("missing string field 'event'")
        return errs
    if not isinstance(ev.get("v"), int):
        errs.append(f"{name}: missing integer field 'v'")
    if not isinstance(ev.get("time"), NUM):
        errs.append(f"{name}: missing numeric field 'time'")
    for fld, typ in EVENT_FIELDS.get(name, {}).items():
        if fld not in ev:
            errs.append(f"{name}: missing field '{fld}'")
            continue
        val = ev[fld]
        ok = isinstance(val, _T[typ]) and not (typ in ("int", "num") and isinstance(val, bool))
        if not ok:
            errs.append(f"{name}: field '{fld}' expected {typ}, got {type(val).__name__}")
    return errs


def parse_line(line: str | bytes) -> dict | None:
    """Decode one line; None for blank, truncated or non-object lines (tolerated by readers)."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.strip()
    if not line:
        return None
    try:
        ev = json.loads(line)
    except (json.JSONDecodeError, RecursionError):   # a deeply nested line is not an event
        return None
    return ev if isinstance(ev, dict) and isinstance(ev.get("event"), str) else None


def read_events(path) -> Iterator[dict]:
    """Every decodable event of an events.jsonl file, in order (a torn last line is skipped)."""
    with open(path, "rb") as fh:
        for raw in fh:
            ev = parse_line(raw)
            if ev is not None:
                yield ev


# Commands the engine reads on stdin, one JSON object per line: {"cmd": "stop"}.
COMMANDS = ("stop", "checkpoint")
