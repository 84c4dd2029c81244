"""A sweep's or search's cells as one group in the trackers: every cell gets
``trackers.group`` (W&B group, an MLflow tag, TensorBoard folders side by side) and, with
MLflow on, the id of a parent run made once per sweep folder and kept in its
trackers.json, so MLflow nests the cells under it, and ended with the sweep (FINISHED,
FAILED, or KILLED when it stopped with cells left). Neither making nor ending the parent
ever fails a sweep: an unreachable server leaves the cells grouped by tag only."""
from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from engine.tracking import ids
from engine.tracking.secrets import scrub

log = logging.getLogger("engine.tracking")
PARENT_TIMEOUT_S = 30.0


def create_parent(tracking_uri: str | None, experiment: str, group: str, run_name: str) -> str:
    """A new MLflow run that parents the group's runs (the caller's errors are its own)."""
    from engine.tracking.trackers import MLflowTracker, experiment_id
    for k, v in MLflowTracker.HTTP_DEFAULTS.items():
        os.environ.setdefault(k, v)
    from mlflow.tracking import MlflowClient
    client = MlflowClient(tracking_uri=tracking_uri)
    run = client.create_run(experiment_id(client, experiment), run_name=run_name,
                            tags={"spfde.group": group, "spfde.sweep": "true"})
    return str(run.info.run_id)


def cell_overrides(base: dict[str, Any], sweep_dir: Path, group: str) -> list[str]:
    """The ``--set`` arguments that put a cell in its sweep's group (base: the cell's config)."""
    tr = base.get("trackers") or {}
    if not any((tr.get(n) or {}).get("enabled") for n in ("tensorboard", "mlflow", "wandb")):
        return []
    # JSON strings are YAML strings: a name or id that looks like a number stays a string
    out = [f"trackers.group={json.dumps(group)}"]
    ml = tr.get("mlflow") or {}
    if ml.get("enabled") and not ml.get("parent_run_id"):
        parent = mlflow_parent(sweep_dir, ml.get("tracking_uri"), ml.get("experiment") or "spfde", group)
        if parent:
            out.append(f"trackers.mlflow.parent_run_id={json.dumps(parent)}")
    return out


def mlflow_parent(sweep_dir: Path, tracking_uri: str | None, experiment: str, group: str) -> str | None:
    """The sweep folder's parent run id, made on first use; None when MLflow cannot be reached
    within PARENT_TIMEOUT_S (logged; the cells then log without a parent)."""
    known = ids.read(sweep_dir).get("mlflow") or {}
    if known.get("run_id"):
        return str(known["run_id"])
    box: dict[str, Any] = {}

    def make() -> None:
        try:
            box["id"] = create_parent(tracking_uri, experiment, group, sweep_dir.name)
        except BaseException as exc:  # noqa: BLE001 - any failure: the cells log ungrouped
            box["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"

    t = threading.Thread(target=make, daemon=True, name="mlflow-parent")
    t.start()
    t.join(PARENT_TIMEOUT_S)
    if "id" not in box:
        log.warning("MLflow parent run for %s not made (%s); the cells log with the tag spfde.group=%s only",
                    sweep_dir.name, scrub(box.get("error", f"no answer within {PARENT_TIMEOUT_S:g} s")), group)
        return None
    ids.record(sweep_dir, "mlflow", {"run_id": box["id"]})
    return str(box["id"])


def end_parent(sweep_dir: Path, cell_config: dict[str, Any], status: str) -> bool:
    """End the sweep folder's MLflow parent run with ``status`` (FINISHED, FAILED or KILLED);
    False when there is none, or MLflow did not answer within PARENT_TIMEOUT_S (logged)."""
    rid = (ids.read(sweep_dir).get("mlflow") or {}).get("run_id")
    ml = ((cell_config.get("trackers") or {}).get("mlflow") or {})
    if not rid or not ml.get("enabled"):
        return False
    box: dict[str, Any] = {}

    def end() -> None:
        try:
            from engine.tracking.trackers import MLflowTracker
            for k, v in MLflowTracker.HTTP_DEFAULTS.items():
                os.environ.setdefault(k, v)
            from mlflow.tracking import MlflowClient
            MlflowClient(tracking_uri=ml.get("tracking_uri")).set_terminated(str(rid), status=status)
            box["ok"] = True
        except BaseException as exc:  # noqa: BLE001 - the sweep's result stands either way
            box["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"

    t = threading.Thread(target=end, daemon=True, name="mlflow-parent-end")
    t.start()
    t.join(PARENT_TIMEOUT_S)
    if not box.get("ok"):
        log.warning("MLflow parent run of %s not ended (%s)", sweep_dir.name,
                    scrub(box.get("error", f"no answer within {PARENT_TIMEOUT_S:g} s")))
        return False
    return True
