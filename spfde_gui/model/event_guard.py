"""The one boundary between an events.jsonl line and the studio: ``check(ev)``.

A run folder may come from someone else, so any line may be malformed. Every event passes
here before the run model folds it in; an event that does not fit the shapes the model and
the views rely on is refused (the caller skips and counts it, never crashes). Missing fields
stay allowed (readers default them: older engines wrote fewer fields); present fields must
have their documented type, nested dicts their documented shape, and every index or size an
event can set is bounded, so one line cannot grow a table until memory runs out.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from engine.config import RunConfig
from engine.run.events import EVENT_FIELDS

MAX_BLOCKS = 4096          # frozen_blocks entries / block indices a run may name
MAX_NAME = 512             # a block name's characters
MAX_LIST = 100_000         # entries of any list an event carries (layers, swapped_in, ...)
MAX_EPOCH = 10_000_000     # an epoch number (the engine caps epochs far lower)

_NUM = (int, float)
_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "int": _NUM, "num": _NUM, "bool": (bool,),
                                       "dict": (dict,), "list": (list,)}
# The config's sections (model, data, ...): dicts that readers index into.
_SECTIONS = tuple(k for k, v in dataclasses.asdict(RunConfig()).items() if isinstance(v, dict))
# Nested dicts the readers index into, per event: field -> its own dict-valued keys.
_LEDGER_EVENTS = ("epoch_end", "run_finished", "run_started")
_NESTED_DICTS = {"flops": ("saved", "overhead"), "flops_epoch": ("saved",), "final": ()}


def check(ev: Any) -> str | None:
    """Why this decoded event cannot be used (a short reason), or None when it fits."""
    if not isinstance(ev, dict):
        return f"not a JSON object ({type(ev).__name__})"
    name = ev.get("event")
    if not isinstance(name, str):
        return "field 'event' is not a string"
    if "time" in ev and not _ok(ev["time"], "num"):
        return f"{name}: 'time' is not a number"
    for fld, typ in EVENT_FIELDS.get(name, {}).items():
        if fld in ev and not _ok(ev[fld], typ.rstrip("?"), nullable=typ.endswith("?") or typ == "num"):
            return f"{name}: field '{fld}' is not {typ.rstrip('?')}"
    for fld in ("epoch", "start_epoch", "block_index"):
        v = ev.get(fld)
        if isinstance(v, _NUM) and not isinstance(v, bool) and not -1 <= v <= MAX_EPOCH:
            return f"{name}: '{fld}' {v!r:.40} out of range"
    return _check_nested(name, ev)


def _ok(v: Any, typ: str, nullable: bool = True) -> bool:
    # null only where the schema allows it (an optional field, or a metric: NaN is null)
    if v is None:
        return nullable
    if typ in ("int", "num"):
        return isinstance(v, _NUM) and not isinstance(v, bool)
    if typ == "list" and isinstance(v, list):
        return len(v) <= MAX_LIST
    return isinstance(v, _TYPES.get(typ, (object,)))


def _check_nested(name: str, ev: dict) -> str | None:
    if name not in _LEDGER_EVENTS:      # other events may use these names for other shapes
        return None
    for fld, inner in _NESTED_DICTS.items():
        d = ev.get(fld)
        if d is None:
            continue
        if not isinstance(d, dict):
            return f"{name}: '{fld}' is not an object"
        for k in inner:
            if d.get(k) is not None and not isinstance(d[k], dict):
                return f"{name}: '{fld}.{k}' is not an object"
    for fld in ("memory", "progress_detail"):
        if ev.get(fld) is not None and not isinstance(ev[fld], dict):
            return f"{name}: '{fld}' is not an object"
    problem = _check_frozen(ev.get("frozen_blocks"))
    if problem:
        return f"{name}: {problem}"
    if name == "run_started":
        return _check_run_started(ev)
    return None


def _check_frozen(frozen: Any) -> str | None:
    if frozen is None:
        return None
    if not isinstance(frozen, list):
        return "'frozen_blocks' is not a list"
    if len(frozen) > MAX_BLOCKS:
        return f"'frozen_blocks' has {len(frozen)} entries (at most {MAX_BLOCKS})"
    for b in frozen:
        if isinstance(b, bool) or not isinstance(b, (int, str)):
            return "'frozen_blocks' holds a value that is neither an index nor a name"
        if isinstance(b, int) and not 0 <= b < MAX_BLOCKS:
            return f"'frozen_blocks' index {b!r:.40} outside 0..{MAX_BLOCKS - 1}"
        if isinstance(b, str) and len(b) > MAX_NAME:
            return "'frozen_blocks' holds an over-long name"
    return None


def _check_run_started(ev: dict) -> str | None:
    cfg = ev.get("config")
    if isinstance(cfg, dict):
        for k in _SECTIONS:
            if cfg.get(k) is not None and not isinstance(cfg[k], dict):
                return f"run_started: config section '{k}' is not an object"
    model = ev.get("model")
    if isinstance(model, dict):
        blocks = model.get("blocks")
        if blocks is not None:
            if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
                return f"run_started: 'model.blocks' is not a list of at most {MAX_BLOCKS}"
            for b in blocks:
                if not isinstance(b, dict) or not isinstance(b.get("layers", []), (list, type(None))):
                    return "run_started: a 'model.blocks' entry is not an object with a layer list"
    plan = ev.get("freeze_plan")
    if isinstance(plan, dict):
        prefix = plan.get("frozen_prefix")
        if prefix is not None and (not isinstance(prefix, list) or len(prefix) > MAX_EPOCH // 1000):
            return "run_started: 'freeze_plan.frozen_prefix' is not a bounded list"
        if plan.get("adaptive") is not None and not isinstance(plan["adaptive"], dict):
            return "run_started: 'freeze_plan.adaptive' is not an object"
    return None
