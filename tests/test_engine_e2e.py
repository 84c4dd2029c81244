"""The engine end to end: the CLI in a subprocess on a tiny configuration (all three
techniques on), the event stream, stop / SIGKILL and resume, errors."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import StopAfter

from engine import config as C
from engine.run.events import parse_line, read_events, validate_event

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

TINY = {
    "name": "e2e", "seed": 3, "device": "cpu", "epochs": 4, "batch_size": 32, "interval": 1,
    "model": {"name": "resnet20", "width": 0.25},
    "data": {"name": "synthetic", "image_size": 12, "train_size": 256, "test_size": 64,
             "num_classes": 4, "label_noise": 0.05},
    "sparsity": {"target": 0.8},
    "freeze": {"target": 0.1},      # stem freezes at epoch 1, layer1.0 at 2
    "sieve": {"ratio": 0.2},
    "checkpoint": {"every": 1, "keep": 1},
}
# Fields of epoch_end that must match exactly between a resumed and an uninterrupted run.
SAME = ("train_loss", "train_acc", "test_loss", "test_acc", "density", "lr", "samples", "samples_total",
        "active_samples", "frozen_blocks", "flops", "flops_epoch")


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def _write_cfg(tmp_path, **over) -> Path:
    d = json.loads(json.dumps(TINY))
    d["run_dir"] = str(tmp_path / "runs")
    for k, v in over.items():
        C._set_dotted(d, k, v)
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def _spawn(*args, stdin=subprocess.DEVNULL):
    return subprocess.Popen([sys.executable, "-m", "engine", *args], cwd=ROOT, env=_env(), stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)


def _finish(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _events(text: str) -> list[dict]:
    evs = []
    for line in text.splitlines():
        ev = parse_line(line)
        assert ev is not None, f"stdout line is not an event: {line[:200]!r}"
        assert validate_event(ev) == [], (validate_event(ev), line[:300])
        evs.append(ev)
    return evs


def _by_epoch(evs):
    return {e["epoch"]: e for e in evs if e["event"] == "epoch_end"}


def _assert_same_epochs(resumed: list[dict], reference: list[dict], epochs):
    ref, got = _by_epoch(reference), _by_epoch(resumed)
    for e in epochs:
        for f in SAME:
            assert got[e][f] == ref[e][f], (e, f, got[e][f], ref[e][f])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of the tiny configuration: (return code, events, stderr, run dir)."""
    tmp = tmp_path_factory.mktemp("ref")
    rc, out, err = _finish(_spawn("run", "--config", str(_write_cfg(tmp))))
    evs = _events(out)
    run_dir = Path(evs[0]["run_dir"])
    return rc, evs, err, run_dir, out


def test_stdout_holds_only_schema_valid_events(reference):
    rc, evs, err, run_dir, out = reference
    assert rc == 0, err
    names = [e["event"] for e in evs]
    assert names[0] == "run_started" and names[-1] == "run_finished"
    assert evs[-1]["status"] == "completed" and evs[-1]["epochs_completed"] == 4
    assert names.count("epoch_end") == 4
    for required in ("mask_update", "sieve_update", "freeze", "checkpoint"):
        assert required in names, required
    started = evs[0]
    assert started["resumed"] is False and started["start_epoch"] == 0 and started["device"] == "cpu"
    assert started["dataset"]["train_size"] == 256 and started["freeze_plan"] is not None
    assert [b["name"] for b in started["model"]["blocks"]][0] == "stem"
    last = _by_epoch(evs)[3]
    assert last["frozen_blocks"] == ["stem", "layer1.0"] and last["active_samples"] == 205
    assert 0 < last["density"] < 1 and last["memory"]["kind"] == "cpu" and last["memory"]["peak_bytes"] > 0
    assert set(last["lrs"]) == {b["name"] for b in started["model"]["blocks"]}
    assert last["flops"]["spent"] > 0 and set(last["flops"]["saved"]) == {"sparsity", "freeze", "sieve"}
    # the file holds the same stream, and the logs went to stderr
    assert [json.loads(l) for l in out.splitlines()] == list(read_events(run_dir / "events.jsonl"))
    assert "run directory" in err
    assert (run_dir / "config.yaml").is_file() and (run_dir / "checkpoints" / "last.pt").is_file()
    periodic = sorted(p.name for p in (run_dir / "checkpoints").glob("epoch_*.pt"))
    assert periodic == ["epoch_0003.pt"]                     # keep: 1


def test_stop_command_then_resume_reproduces_the_run(reference, tmp_path):
    _, ref, *_ = reference
    proc = _spawn("run", "--config", str(_write_cfg(tmp_path)), stdin=subprocess.PIPE)
    first = proc.stdout.readline()
    assert parse_line(first)["event"] == "run_started"
    proc.stdin.write('{"cmd": "stop"}\n')
    proc.stdin.flush()
    rc, out, err = _finish(proc)
    evs = _events(first + out)
    assert rc == 0, err
    assert evs[-1]["event"] == "run_finished" and evs[-1]["status"] == "stopped", err
    stops = [e for e in evs if e["event"] == "checkpoint" and e["reason"] == "stop"]
    assert len(stops) == 1 and Path(stops[0]["path"]).is_file()
    run_dir = Path(evs[0]["run_dir"])

    rc, out, err = _finish(_spawn("resume", str(run_dir)))
    assert rc == 0, err
    res = _events(out)
    assert res[0]["resumed"] is True and res[0]["start_epoch"] == stops[0]["epoch"]
    assert res[-1]["status"] == "completed"
    _assert_same_epochs(res, ref, range(stops[0]["epoch"], 4))
    assert res[-1]["final"] == ref[-1]["final"] and res[-1]["flops"] == ref[-1]["flops"]


def test_sigkill_then_resume_reproduces_the_run(reference, tmp_path):
    _, ref, *_ = reference
    proc = _spawn("run", "--config", str(_write_cfg(tmp_path)))
    lines = []
    for line in proc.stdout:
        lines.append(line)
        ev = parse_line(line)
        if ev["event"] == "checkpoint" and ev["epoch"] == 2:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    run_dir = Path(parse_line(lines[0])["run_dir"])
    rc, out, err = _finish(_spawn("resume", str(run_dir)))
    assert rc == 0, err
    res = _events(out)
    assert res[0]["start_epoch"] == 2 and res[-1]["status"] == "completed"
    _assert_same_epochs(res, ref, (2, 3))
    assert res[-1]["final"] == ref[-1]["final"]


def test_a_failing_run_exits_nonzero_with_an_error_event(tmp_path):
    # every CIFAR file is there (the pre-start scan passes) but holds no pickle: the run
    # fails while loading its data, after its folder exists
    root = tmp_path / "bad-cifar"
    root.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        (root / name).write_bytes(b"not a pickle")
    rc, out, err = _finish(_spawn("run", "--config", str(_write_cfg(tmp_path, **{"data.name": "cifar10",
                                                                                   "data.root": str(root)}))))
    assert rc == 1
    evs = _events(out)
    assert evs[-1]["event"] == "error"
    assert "data_batch_1" in evs[-1]["message"] and "Traceback" in evs[-1]["traceback"]
    assert "data_batch_1" in err


def test_a_missing_dataset_stops_the_run_before_its_folder_exists(tmp_path):
    missing = tmp_path / "no-cifar"
    rc, out, err = _finish(_spawn("run", "--config", str(_write_cfg(tmp_path, **{"data.name": "cifar10",
                                                                                   "data.root": str(missing)}))))
    assert rc == 2 and str(missing) in err
    assert not (tmp_path / "runs").exists()


def test_bad_config_exits_2_without_a_run(tmp_path):
    rc, out, err = _finish(_spawn("run", "--config", str(_write_cfg(tmp_path)), "--set", "epochs=0"))
    assert rc == 2 and out == "" and "epochs" in err
    assert not (tmp_path / "runs").exists()


# ----------------------------------------------------------------------------- in-process



def _trainer(tmp_path, name, commands=None):
    from engine.run.telemetry import Emitter
    from engine.training.trainer import Trainer
    cfg = C.from_dict(TINY)
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    out = io.StringIO()
    return Trainer(cfg, d, Emitter(d, stream=out, progress_bar=False), commands), out


def test_mid_epoch_stop_and_resume_in_process(tmp_path):
    """Stop after batch 3 of epoch 1 (3 + 7 + 1 polls), resume mid-epoch, match exactly."""
    ref, ref_out = _trainer(tmp_path, "ref")
    assert ref.fit() == "completed"
    stopped, out = _trainer(tmp_path, "stop", StopAfter(7 + 3 + 1))
    assert stopped.fit() == "stopped"
    evs = [json.loads(l) for l in out.getvalue().splitlines()]
    ck = [e for e in evs if e["event"] == "checkpoint" and e["reason"] == "stop"][0]
    assert (ck["epoch"], ck["batch"]) == (1, 3)
    resumed, out2 = _trainer(tmp_path, "stop")
    resumed.load_checkpoint()
    assert resumed.fit() == "completed"
    ref_evs = [json.loads(l) for l in ref_out.getvalue().splitlines()]
    res_evs = [json.loads(l) for l in out2.getvalue().splitlines()]
    _assert_same_epochs(res_evs, ref_evs, (1, 2, 3))
    # the resumed run repeats no mask or sieve update of the interrupted epoch
    assert not [e for e in res_evs if e["event"] in ("mask_update", "sieve_update") and e["epoch"] == 1]


def test_a_failed_periodic_checkpoint_is_not_fatal(tmp_path, monkeypatch):
    from engine.training import checkpoint as ck
    real = ck.save

    def full_disk_at_epoch_2(run_dir, state, epoch_tag=None, keep=2):
        if epoch_tag == 2:
            raise ck.CheckpointError("could not write checkpoint epoch_0002.pt: [Errno 28] No space left on device")
        return real(run_dir, state, epoch_tag=epoch_tag, keep=keep)

    monkeypatch.setattr(ck, "save", full_disk_at_epoch_2)
    tr, out = _trainer(tmp_path, "flaky")
    assert tr.fit() == "completed"
    evs = [json.loads(l) for l in out.getvalue().splitlines()]
    errors = [e for e in evs if e["event"] == "error"]
    assert len(errors) == 1 and errors[0]["fatal"] is False and "No space" in errors[0]["message"]
    assert [e["epoch"] for e in evs if e["event"] == "checkpoint"] == [1, 3, 4]
    assert evs[-1]["event"] == "run_finished" and evs[-1]["status"] == "completed"


def test_demo_preset_end_to_end_shrunk(tmp_path):
    """The demo preset as shipped (schedule, freezing, sieving, sparsity), on less data."""
    rc, out, err = _finish(_spawn("run", "--preset", "demo", "--run-dir", str(tmp_path), "--set", "device=cpu",
                                  "--set", "data.train_size=320", "--set", "data.test_size=64",
                                  "--set", "data.image_size=12", "--set", "model.width=0.25"))
    assert rc == 0, err
    evs = _events(out)
    demo = C.load_preset("demo")
    names = [e["event"] for e in evs]
    assert names.count("epoch_end") == demo.epochs and evs[-1]["status"] == "completed"
    assert names.count("freeze") >= 1 and names.count("sieve_update") >= 1 and names.count("mask_update") >= 1
    last = _by_epoch(evs)[demo.epochs - 1]
    assert abs(last["sparse_density"] - (1 - demo.sparsity.target)) < 0.01   # ends at the target sparsity
    assert last["sparse_density"] < last["density"] < 1                      # the stem stays dense
    seg = evs[0]["projected"]["segments"][-1]          # the projection's last segment
    assert seg["end"] == demo.epochs
    projected = seg["density"]
    assert abs(last["density"] - projected) < 0.01                          # measured matches the plan
