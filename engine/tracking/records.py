"""What a tracker logs, read off the run's own events (engine.run.events), so the live
trackers and ``spfde-gui export`` log the same things under the same names.

A record is a small tuple a ``Tracker`` understands:

* ``("params", {dotted field: value})``   the configuration (credentials masked), once per run;
* ``("metrics", step, {tag: number})``    step = the event's 0-based epoch;
* ``("text", step, tag, text)``           freeze / unfreeze / sieve / session notes;
* ``("artifacts", run_dir)``              the run folder's report files, at the end;
* ``("finish", status)``                  completed / stopped / finished_unsaved / failed.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from engine.config.schema import flatten
from engine.run.payloads import SOURCES, read_flops
from engine.tracking.secrets import masked_config

Record = tuple

# epoch_end fields -> tag (the names the old TensorBoard export used are kept)
_EPOCH_TAGS = (("train_loss", "train/loss"), ("train_acc", "train/acc"), ("test_loss", "test/loss"),
               ("test_acc", "test/acc"), ("lr", "lr"), ("density", "density"), ("sparse_density", "sparse_density"),
               ("epoch_time", "time/epoch_s"), ("eval_time", "time/eval_s"), ("samples", "samples/epoch"),
               ("active_samples", "samples/active"), ("samples_total", "samples/total"))
# the files of a run folder a tracker keeps as artifacts (those that exist at the end)
ARTIFACT_FILES = ("config.yaml", "events.jsonl")
ARTIFACT_DIRS = ("report",)


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def _put(out: dict[str, float], tag: str, v: Any) -> None:
    f = _num(v)
    if f is not None:
        out[tag] = f


def flops_metrics(prefix: str, fl: Any, out: dict[str, float]) -> None:
    """The FLOPs ledger: spent, dense, saved by technique and overhead by source."""
    if not isinstance(fl, dict):
        return
    fl = read_flops(fl) or fl           # old run folders: "total" for spent, no overhead
    _put(out, f"{prefix}/spent", fl.get("spent"))
    _put(out, f"{prefix}/dense", fl.get("dense"))
    saved = _dict(fl.get("saved"))
    for src in SOURCES:
        _put(out, f"{prefix}/saved_{src}", saved.get(src))
    over = _dict(fl.get("overhead"))
    for src, v in over.items():
        _put(out, f"{prefix}/overhead_{src}", v)
    dense = _num(fl.get("dense"))
    if dense:
        _put(out, f"{prefix}/spent_fraction", (_num(fl.get("spent")) or 0.0) / dense)


def epoch_metrics(ev: dict) -> dict[str, float]:
    """One ``epoch_end`` event as scalars."""
    out: dict[str, float] = {}
    for key, tag in _EPOCH_TAGS:
        _put(out, tag, ev.get(key))
    frozen = ev.get("frozen_blocks")
    if isinstance(frozen, list):
        out["freeze/frozen_blocks"] = float(len(frozen))
    flops_metrics("flops", ev.get("flops"), out)
    flops_metrics("flops_epoch", ev.get("flops_epoch"), out)
    mem = _dict(ev.get("memory"))
    _put(out, "memory/peak_bytes", mem.get("peak_bytes"))
    _put(out, "memory/rss_bytes", mem.get("rss_bytes"))
    sieve = _dict(ev.get("sieve"))
    _put(out, "sieve/active", sieve.get("active"))
    _put(out, "sieve/removed", sieve.get("removed"))
    return out


def analysis_metrics(ev: dict) -> dict[str, float]:
    """An ``analysis`` event's per-block and per-layer values (nulls skipped)."""
    out: dict[str, float] = {}
    for key, value in ev.items():
        if key in ("event", "v", "time", "epoch", "measured"):
            continue
        if isinstance(value, dict):
            for name, v in value.items():
                _put(out, f"analysis/{key}/{name}", v)
        else:
            _put(out, f"analysis/{key}", value)
    return out


def _config_text(cfg: dict) -> str:
    # a Markdown code block: TensorBoard's text plugin renders Markdown
    return "```yaml\n" + yaml.safe_dump(cfg, sort_keys=False) + "```"


def _started(ev: dict) -> list[Record]:
    cfg = masked_config(ev.get("config") or {})
    step = int(ev.get("start_epoch") or 0)
    params = flatten(cfg)
    model, data = ev.get("model") or {}, ev.get("dataset") or {}
    for key, value in (("model.params", model.get("params")), ("dataset.train_size", data.get("train_size")),
                       ("dataset.test_size", data.get("test_size")), ("device", ev.get("device"))):
        if value is not None:
            params[key] = value
    how = (f"resumed at epoch {step + 1}, batch {int(ev.get('start_batch') or 0)}" if ev.get("resumed")
           else "started")
    note = f"session {how} on {ev.get('device_name') or ev.get('device')}"
    return [("params", params), ("text", step, "config", _config_text(cfg)), ("text", step, "events", note)]


def _freeze_text(ev: dict) -> str:
    name = ev.get("event")
    if name == "freeze":
        saved = _num(ev.get("flops_saved"))
        return (f"epoch {int(ev.get('epoch', 0)) + 1}: froze block {ev.get('block')}"
                + (f" (saves {saved:.3g} FLOPs)" if saved else ""))
    return f"epoch {int(ev.get('epoch', 0)) + 1}: unfroze block {ev.get('block')}"


def _sieve(ev: dict) -> list[Record]:
    step = int(ev.get("epoch", 0))
    m: dict[str, float] = {}
    _put(m, "sieve/active_size", ev.get("active_size"))
    _put(m, "sieve/removed_size", ev.get("removed_size"))
    _put(m, "sieve/k", ev.get("k"))
    swapped = len(ev.get("swapped_in") or [])
    m["sieve/swapped"] = float(swapped)
    text = (f"epoch {step + 1}: sieve update, {swapped} samples swapped in, active set "
            f"{ev.get('active_size')}, held out {ev.get('removed_size')}")
    return [("metrics", step, m), ("text", step, "events", text)]


def _mask(ev: dict) -> list[Record]:
    step = int(ev.get("epoch", 0))
    m: dict[str, float] = {}
    _put(m, "mask/density", ev.get("density"))
    found = [_num(l.get("changed")) for l in ev.get("layers") or [] if isinstance(l, dict)]
    changed = [c for c in found if c is not None]
    if changed:
        m["mask/changed_mean"] = sum(changed) / len(changed)
    return [("metrics", step, m)] if m else []


def _finished(ev: dict) -> list[Record]:
    out: dict[str, float] = {}
    final = _dict(ev.get("final"))
    for k, v in final.items():
        _put(out, f"final/{k}", v)
    flops_metrics("final/flops", ev.get("flops"), out)
    _put(out, "final/wall_time_s", ev.get("wall_time"))
    step = int(ev.get("epochs_completed") or 0)
    return [("metrics", max(0, step - 1), out), ("text", max(0, step - 1), "events",
                                                  f"run {ev.get('status')} after {step} epochs")]


def records(ev: dict) -> list[Record]:
    """What the trackers log for one event ([] for events they skip)."""
    name = ev.get("event")
    step = int(ev.get("epoch", 0) or 0) if isinstance(ev.get("epoch", 0), int) else 0
    if name == "run_started":
        return _started(ev)
    if name == "epoch_end":
        return [("metrics", step, epoch_metrics(ev))]
    if name in ("freeze", "unfreeze"):
        return [("text", step, "events", _freeze_text(ev))]
    if name == "sieve_update":
        return _sieve(ev)
    if name == "mask_update":
        return _mask(ev)
    if name == "analysis":
        m = analysis_metrics(ev)
        return [("metrics", step, m)] if m else []
    if name == "threads":
        return [("metrics", step, {"threads": float(ev.get("threads", 0))})]
    if name == "run_finished":
        return _finished(ev)
    return []


def artifact_paths(run_dir: str | Path) -> list[tuple[Path, str]]:
    """(file, folder inside the artifacts) of the run folder's report files that exist now."""
    d = Path(run_dir)
    out = [(d / f, "") for f in ARTIFACT_FILES if (d / f).is_file()]
    for sub in ARTIFACT_DIRS:
        root = d / sub
        if root.is_dir() and not root.is_symlink():
            for p in sorted(root.rglob("*")):
                if p.is_file() and not p.is_symlink():
                    out.append((p, str(p.relative_to(d).parent)))
    return out


def masked_config_yaml(run_dir: str | Path) -> str | None:
    """The run folder's config.yaml with its credentials masked (None without one)."""
    p = Path(run_dir) / "config.yaml"
    try:
        cfg = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return yaml.safe_dump(masked_config(cfg), sort_keys=False) if isinstance(cfg, dict) else None


def to_json(obj: Any) -> str:
    return json.dumps(obj, default=str)
