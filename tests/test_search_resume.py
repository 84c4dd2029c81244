"""The search survives its process: kill it (SIGTERM or SIGKILL) mid-trial and rerun, and
every finished trial is kept while the interrupted one resumes from its checkpoint; two
worker processes on one SQLite study never run the same trial. Real engine subprocesses."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from engine.sweep import manifest, state

pytest.importorskip("optuna")
ROOT = Path(__file__).resolve().parent.parent
# Epochs of about half a second on the shared CPU: room to kill a trial after its first
# checkpoint (the built-in model: a py: model would have each search process load torch to
# measure it, which costs more than the training here).
TINY = {"device": "cpu", "epochs": 5, "interval": 1, "batch_size": 16, "model": {"width": 0.25},
        "analysis": {"enabled": False}, "freeze": {"target": 0}, "sieve": {"ratio": 0},
        "checkpoint": {"every": 1},
        "data": {"image_size": 16, "train_size": 768, "test_size": 64, "num_classes": 4, "augment": False}}
# No timing to hit: a few samples.
QUICK = {**TINY, "data": {**TINY["data"], "image_size": 8, "train_size": 64}}
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def search_file(tmp_path: Path, name: str, trials: int, epochs: int = 5, overrides: dict | None = None) -> Path:
    f = tmp_path / f"{name}.yaml"
    f.write_text(yaml.safe_dump({"name": name, "base": {"preset": "demo"},
                                 "overrides": {**(overrides or TINY), "epochs": epochs},
                                 "space": {"sparsity.target": [0.5, 0.9]}, "budget": {"fraction": 1.0},
                                 "trials": trials, "sampler": "random", "pruner": "none"}))
    return f


def start(f: Path, out: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "engine", "search", str(f), "--search-dir", str(out)],
                            cwd=ROOT, env=ENV, stdout=open(log, "w"), stderr=subprocess.STDOUT)  # noqa: SIM115


def events(path: Path) -> list[dict]:
    return manifest.read_jsonl(path) if path.is_file() else []


def wait_for(pred, proc: subprocess.Popen, what: str, timeout: float = 240.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        if proc.poll() is not None:
            pytest.fail(f"the search exited ({proc.returncode}) before {what}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def load_study(folder: Path, name: str):
    import optuna
    return optuna.load_study(study_name=name, storage=f"sqlite:///{folder / 'study.db'}")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_kill_and_rerun_keeps_finished_trials_and_resumes_the_interrupted_one(tmp_path, sig):
    import optuna
    f = search_file(tmp_path, "kr", trials=2)
    out = tmp_path / "out"
    folder = out / "kr"
    proc = start(f, out, tmp_path / "first.log")

    def second_trial_checkpointed():
        evs = events(folder / manifest.EVENTS)
        done = [e["cell"] for e in evs if e.get("event") == "cell_finished"]
        started = [e for e in evs if e.get("event") == "cell_started" and e["cell"] not in done]
        if not done or not started:
            return None
        rd = Path(started[-1]["run_dir"])
        ends = [e for e in events(rd / "events.jsonl") if e.get("event") == "epoch_end"]
        return (done[0], started[-1]["cell"], rd) if ends and state.has_checkpoint(rd) else None

    first_cell, cut_cell, cut_dir = wait_for(second_trial_checkpointed, proc, "the second trial's first checkpoint")
    before = {t.number: (t.state, t.values) for t in load_study(folder, "kr").trials}
    os.kill(proc.pid, sig)
    proc.wait(timeout=120)
    mid = load_study(folder, "kr").trials
    assert [t.state for t in mid].count(optuna.trial.TrialState.COMPLETE) == 1
    assert [t.state for t in mid].count(optuna.trial.TrialState.RUNNING) == 1     # interrupted, not failed

    rerun = subprocess.run([sys.executable, "-m", "engine", "search", str(f), "--search-dir", str(out)],
                           cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    trials = load_study(folder, "kr").trials
    assert len(trials) == 2, [(t.number, t.state) for t in trials]      # no trial asked again
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    # the finished trial is kept as it was: same value, its cell neither rerun nor restarted
    done_before = [n for n, (st, _) in before.items() if st == optuna.trial.TrialState.COMPLETE]
    assert done_before and trials[done_before[0]].values == before[done_before[0]][1]
    lines = state.results_by_cell(folder)
    assert [ln["status"] for ln in lines[first_cell]] == ["completed"]
    # the interrupted trial went on in the same run folder, from its checkpoint
    m = manifest.read(folder)
    assert state.run_dirs(folder, m.cell(cut_cell)) == [cut_dir]
    starts = [e for e in events(cut_dir / "events.jsonl") if e.get("event") == "run_started"]
    assert len(starts) == 2 and starts[1]["resumed"] is True and starts[1]["start_epoch"] >= 1
    assert "trial_resumed" in {e.get("event") for e in events(folder / manifest.EVENTS)}


@pytest.mark.slow
def test_two_workers_on_one_sqlite_study_never_run_the_same_trial(tmp_path):
    import optuna
    f = search_file(tmp_path, "two", trials=4, epochs=2, overrides=QUICK)
    out = tmp_path / "out"
    procs = [start(f, out, tmp_path / f"w{i}.log") for i in range(2)]
    for p in procs:
        p.wait(timeout=400)
    logs = [(tmp_path / f"w{i}.log").read_text() for i in range(2)]
    assert [p.returncode for p in procs] == [0, 0], logs
    folder = out / "two"
    trials = load_study(folder, "two").trials
    assert len(trials) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    # each trial's cells ran exactly once, by one worker
    cells = [c for t in trials for c in t.user_attrs["cells"]]
    assert len(cells) == len(set(cells)) == 4
    lines = state.results_by_cell(folder)
    assert sorted(lines) == sorted(cells)
    assert all([ln["status"] for ln in lines[c]] == ["completed"] for c in cells)
    m = manifest.read(folder)
    assert sorted(c.name for c in m.cells) == sorted(cells)                 # no cell lost from sweep.yaml
    assert all(len(state.run_dirs(folder, c)) == 1 for c in m.cells)
    # both workers took part (each writes its own cell_started lines to its stdout log)
    started = [{json.loads(ln)["cell"] for ln in log.splitlines()
                if ln.startswith("{") and '"cell_started"' in ln} for log in logs]
    assert not (started[0] & started[1])
    assert started[0] | started[1] == set(cells)
