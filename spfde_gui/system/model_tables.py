"""Cost tables and model names the studio needs from torch-side code, fetched in a
subprocess: the studio never imports torch, timm or a user's factory module.

* ``measure(cfg)``: ``spfde-train plan --cost-table`` on the configuration, the measured
  blocks, layers and FLOPs of a timm:, py: or wrn28 model; the preview registers the table
  with the pure planner (engine.cost.measured) and prices the model in-process from then on.
* ``timm_names()``: timm's model list for the model field's completion (timm imports torch,
  about 6 s of CPU), kept per timm version in the cache folder so it is listed once.

Plain Python (no Qt): the callers run these on the task runner's threads, passing the
task's cancel check, so that a window closing mid-measurement kills the subprocess
(spfde_gui.system.cancellable).
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Callable
from pathlib import Path

import engine
from engine import atomic_file
from engine import config as cfgmod
from engine.cost.wall_time import cache_dir
from spfde_gui.system import cancellable

ENGINE_HOME = Path(engine.__file__).resolve().parent.parent
MEASURE_TIMEOUT_S = 300      # building and measuring a large model on the meta device takes seconds


def _env() -> dict:
    env = dict(os.environ)
    # the subprocess must find this studio's engine from any working directory
    if str(ENGINE_HOME) not in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ENGINE_HOME), env.get("PYTHONPATH", "")) if p)
    return env


class MeasureError(RuntimeError):
    """The engine could not build or measure the model; the message is its own."""


def measure(cfg: cfgmod.RunConfig, check: Callable[[], None] | None = None) -> dict:
    """The cost table of ``cfg``'s model, measured by the engine in a subprocess."""
    with tempfile.TemporaryDirectory(prefix="spfde-measure-") as d:
        path = Path(d) / "config.yaml"
        cfgmod.save(cfg, path)
        r = cancellable.run([sys.executable, "-m", "engine", "plan", "--config", str(path), "--cost-table"],
                            MEASURE_TIMEOUT_S, check, env=_env())
    if r.returncode != 0:
        lines = [l.strip() for l in r.stderr.splitlines() if l.strip()]
        # a ConfigError prints "invalid configuration ... :" then "field: message" lines
        detail = [l for l in lines if not l.startswith(("invalid configuration", "Traceback", "File "))]
        raise MeasureError("; ".join(detail[-3:]) or f"spfde-train plan exited with {r.returncode}")
    return json.loads(r.stdout)


NAMES_CACHE_MAX_BYTES = 8 * 2**20   # timm 1.0.31 lists 1,371 names: 29 KiB


def timm_version() -> str | None:
    """The installed timm's version, read from its metadata (no import), or None."""
    try:
        return importlib.metadata.version("timm")
    except importlib.metadata.PackageNotFoundError:
        return None


def names_cache(version: str) -> Path:
    return cache_dir() / f"timm-models-{re.sub(r'[^A-Za-z0-9._+-]', '_', version)}.json"


def _read_names(path: Path) -> list[str] | None:
    """The cached list, or None when missing, too large or not a list of names (the cache
    is advisory: anything odd is listed again and rewritten)."""
    try:
        if not path.is_file() or path.stat().st_size > NAMES_CACHE_MAX_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, list) or not data or not all(isinstance(n, str) for n in data):
        return None
    return data


def _write_names(path: Path, names: list[str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_file.write_text(path, json.dumps(names))
    except OSError:
        pass                             # a read-only or full cache folder: list again next time


def list_timm_names(check: Callable[[], None] | None = None) -> list[str]:
    """timm.list_models() from a subprocess, or [] when it fails."""
    code = "import json, timm; print(json.dumps(timm.list_models()))"
    try:
        r = cancellable.run([sys.executable, "-c", code], 120, check, env=_env())
    except (OSError, subprocess.TimeoutExpired):
        return []
    if r.returncode != 0:
        return []
    try:
        data = json.loads(r.stdout)
    except ValueError:
        return []
    return [str(n) for n in data] if isinstance(data, list) else []


def timm_names(check: Callable[[], None] | None = None) -> list[str]:
    """timm's model names, or [] without timm (the field then completes the built-ins only).
    Listed once per timm version: a new version lists its own names."""
    version = timm_version()
    if version is None:
        return []
    path = names_cache(version)
    cached = _read_names(path)
    if cached is not None:
        return cached
    names = list_timm_names(check)
    if names:
        _write_names(path, names)
    return names
