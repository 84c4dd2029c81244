"""Experiment trackers (issue 22) against the real libraries: TensorBoard's own reader on
the event files, a real ``mlflow server`` (SQLite backend, artifacts in a temporary
folder), W&B in offline mode reading its run file back. A tracker never harms training:
an unreachable server leaves the run finishing with one warning."""
from __future__ import annotations

import copy
import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from engine import cli
from engine import config as C
from engine.run import folder as run_dir_mod
from engine.run.events import parse_line, read_events
from engine.tracking import groups, ids, setup
from engine.tracking.background import BackgroundTracker
from engine.tracking.trackers import Tracker

ROOT = Path(__file__).resolve().parent.parent
MLFLOW = Path(sys.executable).parent / "mlflow"
SECRET = "s3cret-pw-42"
TINY = {
    "name": "trk", "seed": 3, "device": "cpu", "epochs": 4, "batch_size": 32, "interval": 1,
    "model": {"name": "resnet20", "width": 0.25},
    "data": {"name": "synthetic", "image_size": 12, "train_size": 256, "test_size": 64, "num_classes": 4},
    "sparsity": {"target": 0.8}, "freeze": {"target": 0.08}, "sieve": {"ratio": 0.2},
    "checkpoint": {"every": 1, "keep": 1},
}


def _cfg(tmp_path, **over) -> dict:
    d = copy.deepcopy(TINY)
    d["run_dir"] = str(tmp_path / "runs")
    for k, v in over.items():
        C._set_dotted(d, k, v)
    return d


def _train(d: dict) -> tuple[Path, list[dict], str]:
    """A run in this process: (run folder, its events, status)."""
    from engine.run.telemetry import Emitter
    from engine.training.trainer import Trainer
    cfg = C.from_dict(d)
    rd = run_dir_mod.create(cfg)
    out = io.StringIO()
    em = Emitter(rd, stream=out, progress_bar=False)
    status = Trainer(cfg, rd, em).fit()
    em.close()
    return rd, [parse_line(l) for l in out.getvalue().splitlines()], status


def _warnings(evs):
    return [e for e in evs if e["event"] == "warning"]


# ---------------------------------------------------------------- bad input
def test_unknown_tracker_and_malformed_uri_are_config_errors_naming_the_field(capsys):
    with pytest.raises(C.ConfigError) as e:
        C.from_dict({"trackers": {"neptune": {"enabled": True}}})
    assert e.value.errors[0][0] == "trackers.neptune" and "tensorboard, mlflow, wandb" in e.value.errors[0][1]
    for uri in (f"http://alice:{SECRET}@127.0.0.1:notaport", "htp://127.0.0.1:5000", "http//127.0.0.1:5000",
                f"http://alice:{SECRET}@:5000", "http://127.0.0.1:70000"):
        with pytest.raises(C.ConfigError) as e:
            C.from_dict({"trackers": {"mlflow": {"enabled": True, "tracking_uri": uri}}})
        assert [f for f, _ in e.value.errors] == ["trackers.mlflow.tracking_uri"], uri
        assert SECRET not in str(e.value)
    assert cli.main(["validate", "--preset", "demo", "--set", "trackers.wandb.mode=sometimes"]) == 2
    assert "trackers.wandb.mode" in capsys.readouterr().err


def test_a_missing_library_names_its_extra(monkeypatch, capsys):
    # an enabled tracker whose package cannot be found (a name no one installs)
    monkeypatch.setitem(setup.EXTRAS, "mlflow", ("spfde_no_such_package", "mlflow"))
    assert cli.main(["validate", "--preset", "demo", "--set", "trackers.mlflow.enabled=true"]) == 2
    err = capsys.readouterr().err
    assert "trackers.mlflow.enabled" in err and "pip install 'spfde-studio[mlflow]'" in err


# ---------------------------------------------------------------- the queue
class _Failing(Tracker):
    name = "failing"

    def __init__(self):
        self.calls = 0

    def metrics(self, step, values):
        self.calls += 1
        raise RuntimeError(f"server said no (token {SECRET})")


class _Stuck(Tracker):
    name = "stuck"

    def __init__(self):
        self.release = threading.Event()

    def start(self, resume):
        self.release.wait(60)         # a server that does not answer
        return {}


def test_a_failing_tracker_is_reported_once_and_then_skipped(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", SECRET)
    t = _Failing()
    bg = BackgroundTracker(t)
    for step in range(5):
        bg.put(("metrics", step, {"x": 1.0}))
    assert bg.close(time.monotonic() + 60)
    msg = bg.warning()
    assert msg is not None and "failing tracker failed" in msg and "server said no" in msg
    assert SECRET not in msg                      # secret environment values are cut out
    assert t.calls == 1 and bg.warning() is None  # once, and skipped after the failure


def test_a_stuck_tracker_drops_the_oldest_and_never_holds_the_end_of_the_run():
    t = _Stuck()
    bg = BackgroundTracker(t, capacity=3)
    for step in range(10):
        bg.put(("metrics", step, {"x": float(step)}))     # returns at once although nothing is sent
    assert bg.dropped == 7 and [r[1] for r in bg._q] == [7, 8, 9]
    assert not bg.close(time.monotonic() + 0.2)           # gives up at the deadline
    msg = bg.warning(0.2)
    assert "did not finish sending" in msg and "3 record(s) not sent" in msg
    t.release.set()


# ---------------------------------------------------------------- TensorBoard and W&B, live
def _wandb_records(path: Path) -> list[bytes]:
    """The records of a W&B run file (its LevelDB-style log: 32 KiB blocks of chunks)."""
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, out, buf = 7, [], b""
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        _crc, n, kind = struct.unpack_from("<IHB", data, pos)
        if kind == 0:                 # block padding
            pos += left
            continue
        chunk, pos = data[pos + 7:pos + 7 + n], pos + 7 + n
        if kind == 1:
            out.append(chunk)
        elif kind == 2:
            buf = chunk
        elif kind == 3:
            buf += chunk
        elif kind == 4:
            out.append(buf + chunk)
    return out


def _wandb_history(run_file: Path) -> dict[int, dict]:
    from wandb.proto import wandb_internal_pb2 as pb
    rows = {}
    for raw in _wandb_records(run_file):
        rec = pb.Record()
        rec.ParseFromString(raw)
        if rec.WhichOneof("record_type") == "history":
            row = {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in rec.history.item}
            rows[int(row["_step"])] = row
    return rows


def test_tensorboard_and_wandb_offline_log_every_epoch(tmp_path, monkeypatch, capfd):
    pytest.importorskip("tensorboard")
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    (tmp_path / "wb").mkdir()
    rd, evs, status = _train(_cfg(tmp_path, **{"trackers.tensorboard.enabled": True,
                                               "trackers.wandb.enabled": True, "trackers.wandb.mode": "offline"}))
    assert status == "completed" and _warnings(evs) == []
    assert capfd.readouterr().out == ""           # stdout carries events only: the libraries print nothing
    epochs = {e["epoch"]: e for e in evs if e["event"] == "epoch_end"}
    assert sorted(epochs) == [0, 1, 2, 3]

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    ea = EventAccumulator(str(rd / "tensorboard"))
    ea.Reload()
    for tag, key in (("train/loss", "train_loss"), ("test/acc", "test_acc"), ("density", "density")):
        got = {s.step: s.value for s in ea.Scalars(tag)}
        assert got == {e: pytest.approx(epochs[e][key], rel=1e-6) for e in epochs}, tag
    spent = {s.step: s.value for s in ea.Scalars("flops/spent")}
    assert spent[3] == pytest.approx(epochs[3]["flops"]["spent"], rel=1e-6)
    assert {"flops/saved_freeze", "flops/saved_sieve", "memory/peak_bytes", "sieve/swapped"} <= set(ea.Tags()["scalars"])
    texts = set(ea.Tags()["tensors"])
    assert {"config/text_summary", "freeze/text_summary", "sieve/text_summary"} <= texts

    run_id = ids.read(rd)["wandb"]["run_id"]
    folders = list((tmp_path / "wb" / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(folders) == 1
    hist = _wandb_history(folders[0] / f"run-{run_id}.wandb")
    for e, ev in epochs.items():
        assert hist[e]["train/loss"] == pytest.approx(ev["train_loss"], rel=1e-6)
        assert hist[e]["test/acc"] == pytest.approx(ev["test_acc"], rel=1e-6)
    assert (folders[0] / "files" / "events.jsonl").is_file()       # the report files, as W&B files


def test_an_unreachable_mlflow_server_leaves_the_run_finishing_with_one_warning(tmp_path):
    pytest.importorskip("mlflow")
    with socket.socket() as s:                   # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rd, evs, status = _train(_cfg(tmp_path, **{"trackers.mlflow.enabled": True,
                                               "trackers.mlflow.tracking_uri": f"http://bob:{SECRET}@127.0.0.1:{port}"}))
    assert status == "completed" and [e["status"] for e in evs if e["event"] == "run_finished"] == ["completed"]
    warns = _warnings(evs)
    assert len(warns) == 1 and warns[0]["source"] == "trackers.mlflow", warns
    assert "mlflow tracker failed" in warns[0]["message"]
    log = (rd / "events.jsonl").read_text()
    assert SECRET not in log and "bob:***@" in log


# ---------------------------------------------------------------- a real MLflow server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """``mlflow server`` on 127.0.0.1 with a SQLite backend; its URI. Slow to start on a
    loaded machine: up to 4 minutes."""
    pytest.importorskip("mlflow")
    if not MLFLOW.is_file():
        pytest.skip("the mlflow command is not installed beside this Python")
    tmp = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}   # no job-runner processes
    log = open(tmp / "server.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([str(MLFLOW), "server", "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}",
                             "--artifacts-destination", str(tmp / "artifacts"), "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None, (tmp / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow server did not start in 240 s"
            time.sleep(0.5)
        yield uri
    finally:
        os.killpg(proc.pid, signal.SIGTERM)      # the server and its uvicorn worker (its own session)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        log.close()


def _client(uri):
    from mlflow.tracking import MlflowClient
    return MlflowClient(tracking_uri=uri)


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "OMP_NUM_THREADS": "1"}


EPOCHS = 20     # short epochs: enough of them that MLflow has started well before the end


@pytest.mark.slow
@pytest.mark.xdist_group("mlflow-server")
def test_mlflow_run_killed_and_resumed_is_one_mlflow_run(mlflow_server, tmp_path):
    uri_with_password = mlflow_server.replace("http://", f"http://alice:{SECRET}@")
    d = _cfg(tmp_path, epochs=EPOCHS, **{"trackers.mlflow.enabled": True, "trackers.mlflow.experiment": "kill-resume",
                                    "trackers.mlflow.tracking_uri": uri_with_password})
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(d))
    proc = subprocess.Popen([sys.executable, "-m", "engine", "run", "--config", str(cfg_file)], cwd=ROOT, env=_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first, rd = [], None
    for line in proc.stdout:
        ev = parse_line(line)
        first.append(line)
        rd = rd or Path(ev["run_dir"])
        # killed once MLflow knows the run and a few epochs are checkpointed
        if ev["event"] == "checkpoint" and ev["epoch"] >= 1 and ids.read(rd).get("mlflow"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    run_id = ids.read(rd)["mlflow"]["run_id"]
    res = subprocess.run([sys.executable, "-m", "engine", "resume", str(rd)], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    evs = [parse_line(l) for l in res.stdout.splitlines()]
    assert None not in evs and None not in [parse_line(l) for l in first]   # stdout: events only
    assert evs[0]["resumed"] is True and evs[-1]["status"] == "completed" and _warnings(evs) == []
    assert ids.read(rd)["mlflow"]["run_id"] == run_id

    c = _client(mlflow_server)
    exp = c.get_experiment_by_name("kill-resume")
    runs = c.search_runs([exp.experiment_id])
    assert [r.info.run_id for r in runs] == [run_id]          # continued, not duplicated
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["sparsity.target"] == "0.8" and run.data.params["epochs"] == str(EPOCHS)
    assert run.data.params["trackers.mlflow.tracking_uri"] == mlflow_server.replace("http://", "http://alice:***@")
    losses = {m.step: m.value for m in c.get_metric_history(run_id, "train/loss")}
    final = {e["epoch"]: e for e in read_events(rd / "events.jsonl") if e["event"] == "epoch_end"}
    assert sorted(losses) == list(range(EPOCHS))
    assert losses[EPOCHS - 1] == pytest.approx(final[EPOCHS - 1]["train_loss"], rel=1e-6)
    assert "flops/saved_freeze" in run.data.metrics and "memory/peak_bytes" in run.data.metrics
    arts = {a.path for a in c.list_artifacts(run_id)}
    assert {"config.yaml", "events.jsonl", "events.md"} <= arts
    config_art = Path(c.download_artifacts(run_id, "config.yaml", str(tmp_path)))
    assert "alice:***@" in config_art.read_text()
    # the password is in the user's own config.yaml only: not in events, logs or the tracker
    for text in ("".join(first), res.stdout, res.stderr, (rd / "events.jsonl").read_text(), config_art.read_text(),
                 json.dumps(run.data.params), json.dumps(run.data.tags)):
        assert SECRET not in text


@pytest.mark.xdist_group("mlflow-server")
def test_a_session_killed_before_its_params_went_out_gets_them_from_the_resume(mlflow_server):
    """The run is created (its id recorded) before the params are sent: a session killed in
    between left a run without them, and the resume, which continues that run, sends them."""
    from engine.tracking.trackers import MLflowTracker
    first = MLflowTracker(mlflow_server, "params-race", "race")
    known = first.start(None)                     # ... and the session dies here
    resumed = MLflowTracker(mlflow_server, "params-race", "race")
    resumed.start(known)
    resumed.params({"sparsity.target": 0.8, "epochs": 4})
    c = _client(mlflow_server)
    assert c.get_run(known["run_id"]).data.params == {"sparsity.target": "0.8", "epochs": "4"}
    # a later resume with epochs raised (--allow-change): the logged value stays, as MLflow
    # refuses to change it, and a new field is added
    again = MLflowTracker(mlflow_server, "params-race", "race")
    again.start(known)
    again.params({"sparsity.target": 0.8, "epochs": 6, "sieve.ratio": 0.1})
    assert c.get_run(known["run_id"]).data.params == {"sparsity.target": "0.8", "epochs": "4", "sieve.ratio": "0.1"}


@pytest.mark.xdist_group("mlflow-server")
def test_export_mlflow_writes_a_sweep_under_one_parent_run(mlflow_server, tmp_path, capsys):
    from test_sweep_report import fake_sweep

    from spfde_gui.__main__ import main
    d = fake_sweep(tmp_path)
    assert main(["export", "--mlflow", mlflow_server, "--experiment", "exported", str(d)]) == 0
    c = _client(mlflow_server)
    runs = c.search_runs([c.get_experiment_by_name("exported").experiment_id])
    parents = [r for r in runs if r.data.tags.get("spfde.sweep") == "true"]
    cells = [r for r in runs if r not in parents]
    assert len(parents) == 1 and len(cells) == 2
    assert {r.data.tags["mlflow.parentRunId"] for r in cells} == {parents[0].info.run_id}
    acc = sorted((m.step, m.value) for m in c.get_metric_history(cells[0].info.run_id, "test/acc"))
    assert acc == [(0, pytest.approx(0.5)), (1, pytest.approx(0.6))]
    assert all(r.info.status == "FINISHED" for r in cells)
    # a sweep's cells get the group and the sweep's one parent run (kept in the sweep folder)
    base = {"trackers": {"mlflow": {"enabled": True, "tracking_uri": mlflow_server, "experiment": "grouped"}}}
    first = groups.cell_overrides(base, d, "rep")
    assert first[0] == 'trackers.group="rep"' and first[1].startswith("trackers.mlflow.parent_run_id=")
    assert groups.cell_overrides(base, d, "rep") == first
    assert groups.cell_overrides({"trackers": {}}, d, "rep") == []
    # the parent ends with the sweep (it stayed RUNNING before)
    parent = json.loads(first[1].split("=", 1)[1])
    assert c.get_run(parent).info.status == "RUNNING"
    assert groups.end_parent(d, base, "FINISHED")
    assert c.get_run(parent).info.status == "FINISHED"
    assert not groups.end_parent(d, {"trackers": {}}, "FINISHED")       # MLflow off: nothing to end


def test_a_sweep_folder_from_before_the_trackers_section_still_matches_its_file(tmp_path):
    from engine.sweep import cells as cells_mod
    from engine.sweep import manifest, spec
    s = spec.parse({"name": "old", "base": {"preset": "demo"}, "axes": {"sparsity.target": [0.5, 0.8]}, "seeds": 1})
    cells = cells_mod.build(s)
    m = manifest.create(s, cells, tmp_path)
    data = yaml.safe_load((m.dir / manifest.MANIFEST).read_text())
    for c in data["cells"]:
        del c["config"]["trackers"]              # as an older engine wrote it
    (m.dir / manifest.MANIFEST).write_text(yaml.safe_dump(data))
    assert manifest.find_matching(tmp_path, s, cells) == m.dir
