"""Run directories: ``<runs>/<name>-<YYYYmmdd-HHMMSS>[-N]/`` holding config.yaml,
events.jsonl, checkpoints/ and (written by the GUI) report/."""
from __future__ import annotations

import re
import time
from pathlib import Path

from engine import config as config_mod

CONFIG_FILE = "config.yaml"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def create(cfg, runs_dir: str | Path | None = None) -> Path:
    """A fresh run directory with the configuration saved in it."""
    base = Path(runs_dir if runs_dir is not None else cfg.run_dir).expanduser()
    base.mkdir(parents=True, exist_ok=True)
    stem = f"{_SAFE.sub('_', cfg.name).strip('_') or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1000):
        d = base / (stem if n == 0 else f"{stem}-{n}")
        try:
            d.mkdir()
        except FileExistsError:
            continue
        config_mod.save(cfg, d / CONFIG_FILE)
        return d
    raise RuntimeError(f"could not create a run directory under {base}")


def read_config(run_dir: str | Path):
    """The configuration a run directory was started with (validated)."""
    d = Path(run_dir)
    p = d / CONFIG_FILE
    if not d.is_dir():
        raise config_mod.ConfigError([("RUN_DIR", f"not a directory: {d}")])
    if not p.is_file():
        raise config_mod.ConfigError([("RUN_DIR", f"{d} holds no {CONFIG_FILE}; is it a run directory?")])
    return config_mod.load(p)


def run_id(run_dir: str | Path) -> str:
    return Path(run_dir).name
