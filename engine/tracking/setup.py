"""Which trackers a run configuration asks for, built for one run folder, and whether
their libraries are installed (checked before a run starts, without importing them)."""
from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.tracking.trackers import TB_FOLDER, MLflowTracker, TensorBoardTracker, Tracker, WandbTracker

EXTRAS = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow"), "wandb": ("wandb", "wandb")}


def enabled(cfg: Any) -> list[str]:
    t = cfg.trackers
    return [name for name in EXTRAS if getattr(t, name).enabled]


def missing_extras(cfg: Any) -> list[tuple[str, str]]:
    """(field, message) for each enabled tracker whose library is not installed."""
    out = []
    for name in enabled(cfg):
        module, extra = EXTRAS[name]
        if importlib.util.find_spec(module) is None:
            out.append((f"trackers.{name}.enabled", f"needs the {module} package, which is not installed: "
                                                    f"pip install 'spfde-studio[{extra}]'"))
    return out


def tensorboard_dir(cfg: Any, run_dir: Path) -> Path:
    """<run folder>/tensorboard, or <dir>/[<group>/]<run folder name> with an explicit dir:
    one folder per run, so a sweep's cells are separate runs under one log folder."""
    tb = cfg.trackers.tensorboard
    if not tb.dir:
        return run_dir / TB_FOLDER
    base = Path(tb.dir).expanduser()
    if cfg.trackers.group:
        base = base / cfg.trackers.group
    return base / run_dir.name


def build(cfg: Any, run_dir: Path, tb_writer: Callable[..., Any], purge_step: int | None = None,
          only: list[str] | None = None) -> list[Tracker]:
    """The enabled trackers (``only``: a subset, as the export asks)."""
    t = cfg.trackers
    names = only if only is not None else enabled(cfg)
    out: list[Tracker] = []
    for name in names:
        if name == "tensorboard":
            out.append(TensorBoardTracker(tensorboard_dir(cfg, run_dir), tb_writer, purge_step))
        elif name == "mlflow":
            out.append(MLflowTracker(t.mlflow.tracking_uri, t.mlflow.experiment, run_dir.name, t.group,
                                     t.mlflow.parent_run_id))
        elif name == "wandb":
            folder = t.wandb.dir or os.environ.get("WANDB_DIR") or str(run_dir)
            out.append(WandbTracker(t.wandb.project, t.wandb.entity, t.wandb.mode, run_dir.name, folder, t.group))
    return out
