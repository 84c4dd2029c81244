"""What ``spfde-train resume`` continues from: the configuration and the checkpoint.

* The checkpoint's own config is authoritative (it is what the state was trained with). A
  ``config.yaml`` in the run folder that differs is refused, listing the fields, unless
  ``--allow-change FIELD`` names each of them; a missing ``config.yaml`` is rewritten.
* The newest checkpoint that verifies is used: a corrupt or missing ``last.pt`` falls back
  to the newest good ``epoch_XXXX.pt``, saying which and how many epochs that costs.
* A run killed before its first checkpoint restarts from epoch 0 with its saved config
  (exact: every random decision is keyed by the seed).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import config as config_mod
from engine.config import ConfigError, flatten
from engine.run.events import read_events
from engine.run.folder import CONFIG_FILE
from engine.training import checkpoint as ckpt

log = logging.getLogger("engine.training.resume")


@dataclass
class ResumePoint:
    cfg: Any
    state: dict | None                    # None: restart from epoch 0
    info: dict = field(default_factory=dict)   # reported in run_started["resume"]


def config_diff(a: dict, b: dict) -> list[tuple[str, Any, Any]]:
    """(dotted field, value in a, value in b) for every field that differs."""
    fa, fb = flatten(a), flatten(b)
    return [(k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]


def _allowed(path: str, allow: list[str]) -> bool:
    return any(path == a or path.startswith(a + ".") for a in allow)


def _last_completed(run_dir: Path) -> int | None:
    """Epochs completed according to events.jsonl (what a lost checkpoint had reached)."""
    p = run_dir / "events.jsonl"
    best = None
    try:
        for ev in read_events(p):
            if ev.get("event") == "epoch_end" and isinstance(ev.get("epoch"), int):
                best = max(best or 0, ev["epoch"] + 1)
    except OSError:
        return None
    return best


def prepare(run_dir: str | Path, allow_change: list[str] | None = None) -> ResumePoint:
    d = Path(run_dir)
    allow = [a.strip() for item in (allow_change or []) for a in item.split(",") if a.strip()]
    known = {f.path for f in config_mod.FIELDS}
    unknown = [a for a in allow if a not in known and not any(k.startswith(a + ".") for k in known)]
    if unknown:
        raise ConfigError([("--allow-change", f"unknown field {u!r}") for u in unknown])
    if not d.is_dir():
        raise ConfigError([("RUN_DIR", f"not a directory: {d}")])
    cfg_path = d / CONFIG_FILE
    ckpt.remove_stale_temps(d)

    if not ckpt.has_any(d):
        if not cfg_path.is_file():
            raise ConfigError([("RUN_DIR", f"{d} holds neither a checkpoint nor {CONFIG_FILE}; is it a run directory?")])
        log.warning("no checkpoint in %s (the run stopped before its first one): restarting it from epoch 0 "
                    "with its saved %s", d, CONFIG_FILE)
        return ResumePoint(config_mod.load(cfg_path), None, {"checkpoint": None, "restarted": True})

    state, path, problems = ckpt.load_newest(d)
    info: dict[str, Any] = {"checkpoint": str(path), "restarted": False}
    if problems:
        done = _last_completed(d)
        at = int(state.get("position", {}).get("epochs_completed", 0))
        lost = max(0, done - at) if done is not None else None
        info.update(skipped=problems, epochs_redone=lost)
        log.warning("%s; resuming from %s (epoch %d, batch %d)%s", "; ".join(problems), path.name,
                    int(state["position"]["epoch"]), int(state["position"]["batch"]),
                    f": {lost} epoch(s) to train again" if lost is not None else "")
    saved = state.get("config")
    if not isinstance(saved, dict):
        raise ckpt.CheckpointError(f"checkpoint {path} holds no configuration")
    cfg = config_mod.from_dict(saved, source=f"{path} (the checkpoint's configuration)")

    if not cfg_path.is_file():
        log.warning("%s is missing: using the checkpoint's configuration and writing it back", cfg_path)
        config_mod.save(cfg, cfg_path)
        return ResumePoint(cfg, state, info)
    on_disk = config_mod.load(cfg_path)
    diffs = config_diff(cfg.to_dict(), on_disk.to_dict())
    refused = [x for x in diffs if not _allowed(x[0], allow)]
    if refused:
        errors = [(k, f"{CONFIG_FILE} says {config_mod._fmt(new)}, the checkpoint was trained with "
                      f"{config_mod._fmt(old)}") for k, old, new in refused]
        errors.append(("--allow-change", "resume refuses a changed configuration; pass --allow-change "
                       + ",".join(k for k, _, _ in refused) + " to accept these changes, or restore "
                       f"{CONFIG_FILE}"))
        raise ConfigError(errors, str(cfg_path))
    if diffs:
        cfg = cfg.replace(**{k: new for k, _, new in diffs})
        info["changed"] = {k: [old, new] for k, old, new in diffs}
        log.warning("resuming with changed fields: %s", ", ".join(f"{k}: {o!r} -> {n!r}" for k, o, n in diffs))
    return ResumePoint(cfg, state, info)
