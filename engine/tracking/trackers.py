"""One class per tracker library, each logging the records of engine.tracking.records.

A tracker is called from one thread only (its background worker, or the export loop), so
it needs no lock. Its library is imported when it starts, never at engine start-up, and a
missing one raises ``MissingExtra`` naming the pip extra. ``start`` returns the ids to keep
in the run folder (engine.tracking.ids) so that a resumed run continues the same tracker
run; ``resume`` passes them back.
"""
from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.tracking.records import Record, artifact_paths, masked_config_yaml

TB_FOLDER = "tensorboard"      # <run folder>/tensorboard: a sweep's cells get one folder each


class MissingExtra(RuntimeError):
    """The tracker's library is not installed."""

    def __init__(self, tracker: str, module: str, extra: str):
        super().__init__(f"trackers.{tracker}.enabled needs the {module} package: "
                         f"pip install 'spfde-studio[{extra}]'")


def _need(tracker: str, module: str, extra: str) -> Any:
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(tracker, module, extra) from None


class Tracker:
    """Base: ``start`` once, then ``log`` each record; ``close`` ends the tracker run."""
    name = "tracker"

    def start(self, resume: dict | None) -> dict:
        return {}

    def log(self, rec: Record) -> None:
        kind = rec[0]
        if kind == "params":
            self.params(rec[1])
        elif kind == "metrics":
            if rec[2]:
                self.metrics(int(rec[1]), rec[2])
        elif kind == "text":
            self.text(int(rec[1]), rec[2], rec[3])
        elif kind == "artifacts":
            self.artifacts(Path(rec[1]))
        elif kind == "finish":
            self.finish(str(rec[1]))
        elif kind == "flush":
            self.flush()

    def params(self, params: dict[str, Any]) -> None: ...
    def metrics(self, step: int, values: dict[str, float]) -> None: ...
    def text(self, step: int, tag: str, text: str) -> None: ...
    def artifacts(self, run_dir: Path) -> None: ...
    def finish(self, status: str) -> None: ...
    def flush(self) -> None: ...


# ---------------------------------------------------------------- TensorBoard
class TensorBoardTracker(Tracker):
    """Scalars and text through a SummaryWriter: torch's ``torch.utils.tensorboard`` in the
    engine, the torch-free ``engine.tracking.tb_writer.EventWriter`` in the export. One log
    folder per run; a resume writes to the same folder with ``purge_step`` at its first
    epoch, so TensorBoard drops what the redone epochs had logged."""
    name = "tensorboard"

    def __init__(self, logdir: str | Path, writer_factory: Callable[..., Any], purge_step: int | None = None):
        self.logdir = Path(logdir)
        self.factory = writer_factory
        self.purge_step = purge_step
        self.w: Any = None
        self._params: dict[str, Any] | None = None

    def start(self, resume: dict | None) -> dict:
        _need("tensorboard", "tensorboard", "tensorboard")
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.w = self.factory(str(self.logdir), purge_step=self.purge_step)
        return {"logdir": str(self.logdir)}

    def params(self, params: dict[str, Any]) -> None:
        self._params = params             # shown as the config text; kept for the end

    def metrics(self, step: int, values: dict[str, float]) -> None:
        for tag, v in values.items():
            self.w.add_scalar(tag, v, step)
        if "train/loss" in values:        # one epoch done: readable by a live TensorBoard now
            self.w.flush()

    def text(self, step: int, tag: str, text: str) -> None:
        self.w.add_text(tag, text, step)

    def flush(self) -> None:
        self.w.flush()

    def finish(self, status: str) -> None:
        if self.w is not None:
            self.w.flush()
            self.w.close()


# ---------------------------------------------------------------- MLflow
class MLflowTracker(Tracker):
    """Through ``mlflow.MlflowClient`` with explicit run ids (no global active run): params
    once, metrics per epoch, freeze/sieve notes as tags and an ``events.md`` artifact, the
    run folder's report files as artifacts at the end. A sweep's cells carry the parent
    run's id (``mlflow.parentRunId``), so MLflow shows them nested under it."""
    name = "mlflow"
    PARAM_BATCH, METRIC_BATCH = 100, 1000
    # MLflow retries a dead server for minutes by default; this runs in the background,
    # but the end of the run waits for it, so unless the user chose otherwise: a few tries.
    HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                     "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
                     # MLflow prints run URLs on stdout, which carries the engine's events only
                     "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}

    def __init__(self, tracking_uri: str | None, experiment: str, run_name: str, group: str | None = None,
                 parent_run_id: str | None = None):
        self.uri = tracking_uri
        self.experiment = experiment
        self.run_name = run_name
        self.group = group
        self.parent = parent_run_id
        self.client: Any = None
        self.run_id: str | None = None
        self.continued = False
        self._notes: list[str] = []

    def start(self, resume: dict | None) -> dict:
        for k, v in self.HTTP_DEFAULTS.items():
            os.environ.setdefault(k, v)
        tracking = _need("mlflow", "mlflow.tracking", "mlflow")
        self.client = tracking.MlflowClient(tracking_uri=self.uri)
        if resume and resume.get("run_id"):
            self.run_id = str(resume["run_id"])
            self.client.update_run(self.run_id, status="RUNNING")   # raises if it does not exist
            self.continued = True
        else:
            tags = {"spfde.run": self.run_name}
            if self.group:
                tags["spfde.group"] = self.group
            if self.parent:
                tags["mlflow.parentRunId"] = self.parent
            run = self.client.create_run(experiment_id(self.client, self.experiment), run_name=self.run_name,
                                         tags=tags)
            self.run_id = run.info.run_id
        return {"run_id": self.run_id}

    def params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param
        values = {k[:250]: str(v)[:6000] for k, v in params.items()}
        if self.continued:
            # Logged by the first session, unless it was killed between creating the run and
            # sending them: send what the run lacks. Those it has stay (MLflow refuses a
            # changed value, e.g. epochs raised with --allow-change).
            have = self.client.get_run(self.run_id).data.params
            values = {k: v for k, v in values.items() if k not in have}
        items = [Param(k, v) for k, v in values.items()]
        for i in range(0, len(items), self.PARAM_BATCH):
            self.client.log_batch(self.run_id, params=items[i:i + self.PARAM_BATCH])

    def metrics(self, step: int, values: dict[str, float]) -> None:
        from mlflow.entities import Metric
        ts = int(time.time() * 1000)
        items = [Metric(k, float(v), ts, int(step)) for k, v in values.items()]
        for i in range(0, len(items), self.METRIC_BATCH):
            self.client.log_batch(self.run_id, metrics=items[i:i + self.METRIC_BATCH])

    def text(self, step: int, tag: str, text: str) -> None:
        if tag == "config":
            self.client.log_text(self.run_id, text.strip("`").removeprefix("yaml\n"), "config_logged.yaml")
            return
        self._notes.append(text)         # all of them in events.md at the end
        self.client.set_tag(self.run_id, f"spfde.{tag}", text[:5000])

    def artifacts(self, run_dir: Path) -> None:
        for path, folder in artifact_paths(run_dir):
            if path.name == "config.yaml" and not folder:
                text = masked_config_yaml(run_dir)
                if text is not None:
                    self.client.log_text(self.run_id, text, "config.yaml")
                continue
            self.client.log_artifact(self.run_id, str(path), folder or None)

    def finish(self, status: str) -> None:
        if self._notes:
            self.client.log_text(self.run_id, "\n".join(f"- {n}" for n in self._notes) + "\n", "events.md")
        mlflow_status = {"completed": "FINISHED", "finished_unsaved": "FINISHED", "stopped": "KILLED"}.get(status, "FAILED")
        self.client.set_terminated(self.run_id, status=mlflow_status)


def experiment_id(client: Any, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:  # noqa: BLE001 - created meanwhile by another cell: read it back
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


# ---------------------------------------------------------------- Weights & Biases
class WandbTracker(Tracker):
    """Through ``wandb.init`` (``mode`` online, offline or disabled; ``id`` + ``resume="allow"``
    continue the same run), console capture off: the engine's stdout carries events only."""
    name = "wandb"

    def __init__(self, project: str, entity: str | None, mode: str, run_name: str, folder: str | Path,
                 group: str | None = None):
        self.project, self.entity, self.mode = project, entity, mode
        self.run_name, self.folder, self.group = run_name, Path(folder), group
        self.run: Any = None
        self._notes: list[tuple[int, str, str]] = []

    def start(self, resume: dict | None) -> dict:
        wandb = _need("wandb", "wandb", "wandb")
        self.folder.mkdir(parents=True, exist_ok=True)
        settings = wandb.Settings(console="off", quiet=True, silent=True, x_disable_stats=True)
        self.run = wandb.init(project=self.project, entity=self.entity, name=self.run_name, group=self.group,
                              mode=self.mode, dir=str(self.folder), id=(resume or {}).get("run_id"),
                              resume="allow", settings=settings, reinit="create_new")
        return {"run_id": self.run.id, "mode": self.mode}

    def params(self, params: dict[str, Any]) -> None:
        self.run.config.update(params, allow_val_change=True)

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=int(step))

    def text(self, step: int, tag: str, text: str) -> None:
        if tag != "config":                  # the config is the run's config already
            self._notes.append((step + 1, tag, text))
            self.run.summary["last_event"] = text

    def artifacts(self, run_dir: Path) -> None:
        files = Path(self.run.dir)
        for path, folder in artifact_paths(run_dir):
            dest = files / folder / path.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            if path.name == "config.yaml" and not folder:
                text = masked_config_yaml(run_dir)
                if text is not None:     # wandb keeps its own config.yaml in the same folder
                    dest = dest.with_name("spfde_config.yaml")
                    dest.write_text(text, encoding="utf-8")
                    self.run.save(str(dest), base_path=str(files), policy="now")
                continue
            shutil.copyfile(path, dest)
            self.run.save(str(dest), base_path=str(files), policy="now")

    def finish(self, status: str) -> None:
        if self._notes:
            import wandb
            table = wandb.Table(columns=["epoch", "kind", "event"], data=[list(n) for n in self._notes])
            self.run.log({"events": table})
        self.run.summary["status"] = status
        self.run.finish(exit_code=0 if status in ("completed", "stopped", "finished_unsaved") else 1)

