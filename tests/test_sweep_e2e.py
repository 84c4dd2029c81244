"""A sweep end to end: a grid x 2 seeds of tiny synthetic runs through the real
engine (``spfde-train sweep``, cells as subprocesses), killed mid-sweep and resumed; and a
crashing cell marked failed, the sweep going on, the cell retried once on the next run."""
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from engine.sweep import manifest, results, state
from engine.sweep.runner import SweepRunner

ROOT = Path(__file__).resolve().parent.parent
TINY = {"device": "cpu", "epochs": 2, "interval": 1, "batch_size": 4, "model": {"width": 0.25},
        "data": {"image_size": 8, "train_size": 40, "test_size": 16, "num_classes": 4, "augment": False},
        "freeze": {"target": 0}, "sieve": {"ratio": 0}, "checkpoint": {"every": 1}}


def write_sweep(tmp_path, **kw) -> Path:
    d = {"name": "grid", "base": {"preset": "demo"}, "overrides": TINY,
         "axes": {"sparsity.target": [0.5, 0.8], "optim.lr": [0.05, 0.1]}, "seeds": 2,
         "sweep_dir": str(tmp_path / "sweeps")}
    d.update(kw)
    p = tmp_path / "grid.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def sweep_cmd(path, *extra):
    return [sys.executable, "-m", "engine", "sweep", str(path), "--gpus", "none", *extra]


def env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def events_of(run_dir: Path) -> list[dict]:
    return manifest.read_jsonl(run_dir / "events.jsonl")


@pytest.mark.slow
def test_killed_sweep_resumes_and_each_cell_completes_once(tmp_path):
    # 2 sparsities x 2 seeds: two cells done before the kill, one killed, one never started
    path = write_sweep(tmp_path, axes={"sparsity.target": [0.5, 0.8]})
    # Kill the sweep (SIGKILL: no chance to clean up) as soon as the third cell has started;
    # that cell sees its stdin close and stops with a checkpoint (--stop-on-eof).
    proc = subprocess.Popen(sweep_cmd(path), cwd=ROOT, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    seen = []
    for line in proc.stdout:
        ev = json.loads(line)
        seen.append(ev)
        if ev["event"] == "cell_started" and ev["index"] == 2:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=120)
    sweep_dir = Path(seen[0]["sweep_dir"])
    m = manifest.read(sweep_dir)
    assert len(m.cells) == 4
    # the orphaned cell finishes stopping on its own; wait for its last event
    killed = m.cells[2]
    for _ in range(600):
        rds = state.run_dirs(sweep_dir, killed)
        if rds and any(e["event"] in ("run_finished", "error") for e in events_of(rds[-1])):
            break
        import time
        time.sleep(0.1)
    before = {st.cell.name: st.action for st in state.states(m)}
    assert before["grid-c000"] == "done" and before["grid-c003"] == "start"

    out = subprocess.run(sweep_cmd(path), cwd=ROOT, env=env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    evs = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
    assert evs[0]["event"] == "sweep_started" and evs[0]["todo"] <= 2
    assert evs[-1]["event"] == "sweep_finished" and evs[-1]["status"] == "completed" and evs[-1]["completed"] == 4
    started = {e["cell"] for e in evs if e["event"] == "cell_started"}
    assert not {"grid-c000", "grid-c001"} & started              # finished cells are skipped

    # every cell ran to completion exactly once: one completed session, each epoch once
    resumed_cells = []
    for c in m.cells:
        evts = [e for rd in state.run_dirs(sweep_dir, c) for e in events_of(rd)]
        done = [e for e in evts if e["event"] == "run_finished" and e["status"] == "completed"]
        assert len(done) == 1, c.name
        assert sorted(e["epoch"] for e in evts if e["event"] == "epoch_end") == [0, 1], c.name
        if any(e["event"] == "run_started" and e["resumed"] for e in evts):
            resumed_cells.append(c)
    lines = results.latest_lines(manifest.read_jsonl(sweep_dir / manifest.RESULTS))
    assert sorted(lines) == [c.name for c in m.cells]
    assert all(l["status"] == "completed" for l in lines.values())

    # Results equal an uninterrupted sweep. Cells are independent, deterministic runs, so
    # the cells that were never interrupted are uninterrupted runs already; each resumed
    # one must equal the same cell run without interruption.
    assert resumed_cells == [killed] or not resumed_cells        # only the killed cell resumed
    from engine.cli import main as engine_main  # in-process: no second torch start-up
    for c in resumed_cells or [killed]:
        assert engine_main(["run", "--config", str(m.config_path(c)), "--run-dir", str(tmp_path / "ref")]) == 0
        want = results.summarize_run(next((tmp_path / "ref").iterdir()))
        got = lines[c.name]
        for k in ("final_test_acc", "best_test_acc", "flops_spent", "epochs_completed"):
            assert got[k] == want[k], (c.name, k)

    rows = results.load(m)
    assert len(rows) == 2 and all(r.completed == 2 and r.failed == 0 for r in rows)
    table = subprocess.run(sweep_cmd(path, "--table", "csv"), cwd=ROOT, env=env(), capture_output=True, text=True)
    assert table.returncode == 0 and len(table.stdout.strip().splitlines()) == 3


FAKE_ENGINE = textwrap.dedent('''
    import json, os, sys, time
    from pathlib import Path
    # a stand-in for `python -m engine run|resume ...`: writes a run folder and events;
    # cells named in FAIL crash (exit 1 with an error event) while FAIL_COUNT allows
    args = sys.argv[3:]
    cfg_path, run_dir = Path(args[args.index("--config") + 1]), Path(args[args.index("--run-dir") + 1])
    import yaml
    cfg = yaml.safe_load(cfg_path.read_text())
    d = run_dir / (cfg["name"] + "-2026" + str(time.time_ns()))
    d.mkdir()
    (d / "config.yaml").write_text(cfg_path.read_text())
    def emit(**e):
        line = json.dumps(e)
        print(line, flush=True)
        with open(d / "events.jsonl", "a") as f:
            f.write(line + "\\n")
    emit(event="run_started", run_dir=str(d), resumed=False)
    counter = Path(os.environ["FAIL_DIR"]) / cfg["name"]
    if cfg["name"] in os.environ.get("FAIL", "").split(","):
        n = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(n + 1))
        if n < int(os.environ.get("FAIL_COUNT", "1")):
            emit(event="error", message="RuntimeError: cell exploded")
            sys.exit(1)
    acc = 0.5 + 0.01 * cfg["seed"] + cfg["optim"]["lr"]
    emit(event="epoch_end", epoch=0, test_acc=acc, memory={"peak_bytes": 1000})
    emit(event="run_finished", status="completed", final={"test_acc": acc},
         flops={"spent": 1e6 * (1 - cfg["sparsity"]["target"]), "dense": 1e6, "saved": {}}, wall_time=1.0)
''')


@pytest.mark.parametrize("fail_count, final", [(1, "completed"), (5, "failed")])
def test_crashing_cell_is_marked_failed_and_retried_once(tmp_path, monkeypatch, fail_count, final):
    from engine.sweep import cells as cells_mod
    from engine.sweep import spec as spec_mod
    fake = tmp_path / "fake_engine.py"
    fake.write_text(FAKE_ENGINE)
    wrapper = tmp_path / "fakepy"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {fake} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv("FAIL", "grid-c001")
    monkeypatch.setenv("FAIL_COUNT", str(fail_count))
    monkeypatch.setenv("FAIL_DIR", str(tmp_path))
    s = spec_mod.load(write_sweep(tmp_path, axes={"optim.lr": [0.05, 0.1]}, seeds=1))
    m = manifest.create(s, cells_mod.build(s), tmp_path / "sweeps")

    def run():
        out = []
        code = SweepRunner(m, slots=[None], out=_Sink(out), python=str(wrapper)).run()
        return code, out

    code, evs = run()
    kinds = [(e["event"], e.get("cell")) for e in evs]
    assert ("cell_failed", "grid-c001") in kinds
    failed = next(e for e in evs if e["event"] == "cell_failed")
    assert failed["error"] == "RuntimeError: cell exploded" and failed["will_retry"]
    assert ("cell_finished", "grid-c000") in kinds and code == 1
    rows = results.load(m)
    assert (rows[1].completed, rows[1].failed) == (0, 1) and rows[1].stats["final_test_acc"].mean is None

    code, evs = run()                                    # the second pass retries it once
    assert [e.get("cell") for e in evs if e["event"] == "cell_started"] == ["grid-c001"]
    rows = results.load(m)
    assert (rows[1].completed, rows[1].failed) == ((1, 0) if final == "completed" else (0, 1))
    code3, evs = run()                                   # nothing left to do either way
    assert not [e for e in evs if e["event"] == "cell_started"]
    assert (code3 == 0) == (final == "completed")
    assert state.cell_state(m, m.cells[1]).status == final


class _Sink:
    def __init__(self, out):
        self.out = out

    def write(self, s):
        for line in s.splitlines():
            if line.strip():
                self.out.append(json.loads(line))

    def flush(self):
        pass


def test_one_cell_per_gpu_with_several_gpus(tmp_path, monkeypatch):
    from engine.sweep import cells as cells_mod
    from engine.sweep import spec as spec_mod
    from engine.sweep.runner import detect_gpus
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert detect_gpus("auto") == ["2", "3"] and detect_gpus("0, 1") == ["0", "1"] and detect_gpus("none") == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert detect_gpus("auto") == []
    fake = tmp_path / "fake_engine.py"
    fake.write_text(FAKE_ENGINE.replace('emit(event="run_started", run_dir=str(d), resumed=False)',
                                        'emit(event="run_started", run_dir=str(d), resumed=False, '
                                        'cuda=os.environ.get("CUDA_VISIBLE_DEVICES")); time.sleep(0.5)'))
    wrapper = tmp_path / "fakepy"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {fake} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv("FAIL_DIR", str(tmp_path))
    s = spec_mod.load(write_sweep(tmp_path, axes={"optim.lr": [0.05, 0.1]}, seeds=2))
    m = manifest.create(s, cells_mod.build(s), tmp_path / "sweeps")
    out = []
    assert SweepRunner(m, slots=["0", "1"], out=_Sink(out), python=str(wrapper)).run() == 0
    started = [e for e in out if e["event"] == "cell_started"]
    assert len(started) == 4 and {e["slot"] for e in started} == {"0", "1"}
    for e in started:       # each cell saw only its own GPU
        evs = events_of(Path(e["run_dir"]))
        assert evs[0]["cuda"] == e["slot"]
    assert out[-1]["event"] == "sweep_finished" and out[-1]["completed"] == 4
