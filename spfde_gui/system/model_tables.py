"""Cost tables and model names the studio needs from torch-side code, fetched in a
subprocess: the studio never imports torch, timm or a user's factory module.

* ``measure(cfg)``: ``spfde-train plan --cost-table`` on the configuration, the measured
  blocks, layers and FLOPs of a timm:, py: or wrn28 model; the preview registers the table
  with the pure planner (engine.cost.measured) and prices the model in-process from then on.
* ``timm_names()``: timm's model list for the model field's completion (timm imports torch).

Plain Python (no Qt): the callers run these on the task runner's threads.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import engine
from engine import config as cfgmod

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


def measure(cfg: cfgmod.RunConfig) -> dict:
    """The cost table of ``cfg``'s model, measured by the engine in a subprocess."""
    with tempfile.TemporaryDirectory(prefix="spfde-measure-") as d:
        path = Path(d) / "config.yaml"
        cfgmod.save(cfg, path)
        r = subprocess.run([sys.executable, "-m", "engine", "plan", "--config", str(path), "--cost-table"],
                           capture_output=True, text=True, timeout=MEASURE_TIMEOUT_S, env=_env())
    if r.returncode != 0:
        lines = [l.strip() for l in r.stderr.splitlines() if l.strip()]
        # a ConfigError prints "invalid configuration ... :" then "field: message" lines
        detail = [l for l in lines if not l.startswith(("invalid configuration", "Traceback", "File "))]
        raise MeasureError("; ".join(detail[-3:]) or f"spfde-train plan exited with {r.returncode}")
    return json.loads(r.stdout)


def timm_names() -> list[str]:
    """timm's model names, or [] without timm (the field then completes the built-ins only)."""
    code = "import json, timm; print(json.dumps(timm.list_models()))"
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=_env())
    except (OSError, subprocess.TimeoutExpired):
        return []
    if r.returncode != 0:
        return []
    try:
        return [str(n) for n in json.loads(r.stdout)]
    except ValueError:
        return []
