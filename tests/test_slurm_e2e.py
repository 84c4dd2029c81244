"""Sweeps and runs on a real one-node Slurm (scripts/slurm-local, the ``slurm_cluster``
fixture): the same results as the local executor, a requeued cell that resumes to the same
final metrics, a cancelled sweep that continues, a failed job that comes back as a failed
cell with its log tail, and bad input refused before anything is submitted. Tiny synthetic
runs; skipped (saying why) where Slurm is not installed."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from engine.executor.slurm import SlurmExecutor, SlurmOptions
from engine.sweep import cluster, manifest, results, state

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
TINY = {"device": "cpu", "epochs": 2, "interval": 1, "batch_size": 4, "model": {"width": 0.25}, "threads": 1,
        "data": {"image_size": 8, "train_size": 40, "test_size": 16, "num_classes": 4, "augment": False},
        "freeze": {"target": 0}, "sieve": {"ratio": 0}, "checkpoint": {"every": 1}, "analysis": {"enabled": False}}
# Long enough (about a second an epoch) to be caught running. The model sleeps in every forward
# (tests/toy_models WaitingConvNet): the job stays in flight while leaving the CPU to the rest
# of the suite, whose other worker needs it (a job that trained instead took as much CPU).
WAITING = {"name": "py:toy_models:waiting_convnet", "width": 1, "kwargs": {"wait_s": 0.04}}
LONGER = {**TINY, "epochs": 3, "batch_size": 8, "model": WAITING, "data": {**TINY["data"], "train_size": 240}}
COMPARED = ("status", "final_test_acc", "best_test_acc", "flops_spent", "epochs_completed")


def env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)]), "OMP_NUM_THREADS": "1"}


def spfde(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], cwd=ROOT, env=env(),
                          capture_output=True, text=True, timeout=timeout)


def write_sweep(tmp_path, name="grid", overrides=TINY, **kw) -> Path:
    d = {"name": name, "base": {"preset": "demo"}, "overrides": overrides,
         "axes": {"sparsity.target": [0.5, 0.8]}, "seeds": 2, "sweep_dir": str(tmp_path / "sweeps")}
    d.update(kw)
    tmp_path.mkdir(parents=True, exist_ok=True)
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def events(out: str) -> list[dict]:
    return [json.loads(l) for l in out.splitlines() if l.startswith("{")]


def compared(m) -> dict:
    lines = results.latest_lines(manifest.read_jsonl(m.dir / manifest.RESULTS))
    return {cell: {k: line.get(k) for k in COMPARED} for cell, line in lines.items()}


def wait_for(pred, what: str, timeout: float = 300):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def run_events(run_dir: Path) -> list[dict]:
    return manifest.read_jsonl(Path(run_dir) / "events.jsonl")


def queue() -> str:
    return subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T"], capture_output=True, text=True).stdout


def release(job: str, started) -> None:
    """Slurm holds a requeued job back (BeginTime) for a while: make it eligible now. Only
    once it has pended a few seconds: started at once, while its previous instance is still
    being cleaned up, Slurm kills it ("Job credential revoked")."""
    wait_for(lambda: f"{job}|PENDING" in queue(), f"job {job} to pend")
    time.sleep(3)

    def go():
        if started():
            return True
        if f"{job}|PENDING" in queue():
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], capture_output=True, text=True)
        time.sleep(1)
        return started()
    wait_for(go, f"job {job} to start again")


def test_four_cell_sweep_on_slurm_gives_the_local_results(slurm_cluster, tmp_path):
    # the local sweep runs beside the Slurm one: this test's wall time is the longer of the two
    local_path = write_sweep(tmp_path / "a")
    local_proc = subprocess.Popen([sys.executable, "-m", "engine", "sweep", str(local_path), "--gpus", "none"],
                                  cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    on_slurm = spfde("sweep", write_sweep(tmp_path / "b", executor="slurm", slurm={"array_parallelism": 2}),
                     "--poll-s", "0.5")
    out, err = local_proc.communicate(timeout=600)
    local = subprocess.CompletedProcess(local_proc.args, local_proc.returncode, out, err)
    assert local.returncode == 0, local.stderr[-2000:]
    assert on_slurm.returncode == 0, on_slurm.stderr[-2000:]
    evs = events(on_slurm.stdout)
    assert evs[0]["event"] == "sweep_started" and len(evs[0]["jobs"]) == 4
    assert evs[-1]["event"] == "sweep_finished" and evs[-1]["completed"] == 4 and evs[-1]["failed"] == 0
    a = manifest.read(Path(events(local.stdout)[0]["sweep_dir"]))
    b = manifest.read(Path(evs[0]["sweep_dir"]))
    assert compared(b) == compared(a) and all(v["status"] == "completed" for v in compared(b).values())
    # the table (its training columns) and the status view
    rows_a = {r.label(): r.stats["final_test_acc"].mean for r in results.load(a)}
    assert {r.label(): r.stats["final_test_acc"].mean for r in results.load(b)} == rows_a
    status = spfde("sweep", b.dir, "--status")
    assert status.returncode == 0 and status.stdout.count("COMPLETED") == 4
    # rerunning submits nothing
    again = spfde("sweep", write_sweep(tmp_path / "b", executor="slurm"), "--poll-s", "0.5")
    assert again.returncode == 0 and events(again.stdout)[0]["todo"] == 0
    assert not any(e["event"] == "cell_started" for e in events(again.stdout))


def test_cancelled_sweep_continues_on_rerun(slurm_cluster, tmp_path):
    """Cancelled while a cell trains: that cell stops with a checkpoint and the rerun resumes it
    in its folder. Slurm may run the two cells side by side or one after the other (free
    cores), so the other cell may be running, pending or already done when --cancel lands:
    each is checked for what it was."""
    slow = {**LONGER, "model": {**WAITING, "kwargs": {"wait_s": 0.05}}}   # ~5 s a cell
    path = write_sweep(tmp_path, name="cx", overrides=slow, executor="slurm", axes={"sparsity.target": [0.5]})
    out = spfde("sweep", path, "--detach")
    assert out.returncode == 0, out.stderr[-2000:]
    sweep_dir = Path(events(out.stdout)[0]["sweep_dir"])
    m = manifest.read(sweep_dir)
    jobs = cluster.jobs(m)
    assert len(jobs) == 2

    def training(j) -> bool:
        evs = [e["event"] for e in run_events(Path(j.run_dir))]
        return "progress" in evs and "run_finished" not in evs

    wait_for(lambda: any(training(j) for j in jobs.values()), "a cell to be training")
    cancel = spfde("sweep", sweep_dir, "--cancel")
    assert cancel.returncode == 0, cancel.stderr
    said = re.search(r"cancelled (\d+) job\(s\): ([^;]+);", cancel.stdout)
    assert said, cancel.stdout
    cancelled = said.group(2).split()
    assert int(said.group(1)) == len(cancelled) >= 1
    wait_for(lambda: not any(jid in queue() for jid in cancelled), "the cancelled jobs to leave")
    status = spfde("sweep", sweep_dir, "--status")
    assert status.stdout.count("CANCELLED") == len(cancelled), status.stdout
    started = {}
    for name, j in jobs.items():
        finished = [e["status"] for e in run_events(Path(j.run_dir)) if e["event"] == "run_finished"]
        started[name] = bool(finished)
        if j.job_id in cancelled and finished:        # it was training: stopped with a checkpoint
            assert finished == ["stopped"] and state.has_checkpoint(Path(j.run_dir))
        elif j.job_id not in cancelled:               # it had finished before --cancel
            assert finished == ["completed"]
    assert any(started[n] for n, j in jobs.items() if j.job_id in cancelled)
    again = spfde("sweep", path, "--poll-s", "0.5")
    assert again.returncode == 0, again.stderr[-2000:]
    assert events(again.stdout)[-1]["completed"] == 2
    m = manifest.read(sweep_dir)
    for name, j in cluster.jobs(m).items():
        before = jobs[name]
        starts = [e["resumed"] for e in run_events(Path(j.run_dir)) if e["event"] == "run_started"]
        if before.job_id in cancelled:      # resubmitted; resumed in the same folder, not restarted
            assert j.run_dir == before.run_dir and j.job_id != before.job_id
            assert starts == ([False, True] if started[name] else [False])
        else:                               # done: not submitted again
            assert j.job_id == before.job_id and starts == [False]


@pytest.fixture(scope="module")
def time_limit_job(slurm_cluster, tmp_path_factory):
    """The job of test_time_limit_warning_checkpoints_and_requeues_itself, submitted by the
    first test that asks for it, so that the minute it waits for Slurm's warning overlaps the
    tests between them. It holds one of the local Slurm's two CPU slots: those tests submit one
    job at a time (file order: the two-cell and two-task tests run before or after it).
    Cancelled at the end of the module whatever happened."""
    tmp_path = tmp_path_factory.mktemp("time-limit")
    sets = ["device=cpu", "epochs=1000", "batch_size=16", "model.name=py:toy_models:waiting_convnet",
            "model.width=1", "model.kwargs.wait_s=0.1", "threads=1", "data.image_size=8", "data.train_size=400",
            "data.test_size=16", "data.num_classes=4", "data.augment=false",
            "freeze.target=0", "sieve.ratio=0", "analysis.enabled=false", "checkpoint.every=1"]
    args = [a for s in sets for a in ("--set", s)]
    sub = spfde("run", "--preset", "demo", *args, "--run-dir", tmp_path / "tl", "--executor", "slurm",
                "--slurm", "time=2", "--slurm", "signal_warning_s=59")
    assert sub.returncode == 0, sub.stderr[-2000:]
    job = sub.stdout.split("Slurm job ")[1].split(":")[0]
    yield job, next((tmp_path / "tl").iterdir())
    subprocess.run(["scancel", job], capture_output=True, text=True)


def _final_metrics(run_dir: Path) -> dict:
    evs = run_events(run_dir)
    last = [e for e in evs if e["event"] == "epoch_end"][-1]
    fin = [e for e in evs if e["event"] == "run_finished"][-1]
    return {"status": fin["status"], "final": fin["final"], "train_loss": last["train_loss"],
            "test_acc": last["test_acc"], "epoch": last["epoch"]}


def test_requeued_run_resumes_to_the_same_final_metrics(slurm_cluster, time_limit_job, tmp_path):
    # time_limit_job: submitted first, so that its minute of waiting for Slurm's warning
    # overlaps this test (one of the two CPU slots; this test's job takes the other)
    cfg = tmp_path / "run.yaml"
    base = yaml.safe_load((ROOT / "assets/presets/demo.yaml").read_text())
    for k, v in LONGER.items():
        base[k] = {**base[k], **v} if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    base["name"] = "rq"
    cfg.write_text(yaml.safe_dump(base))
    # the uninterrupted reference runs here, beside the Slurm job (both mostly wait)
    local = subprocess.Popen([sys.executable, "-m", "engine", "run", "--config", str(cfg), "--run-dir",
                              str(tmp_path / "local")], cwd=ROOT, env=env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    sub = spfde("run", "--config", cfg, "--run-dir", tmp_path / "slurm", "--executor", "slurm")
    assert sub.returncode == 0, sub.stderr[-2000:]
    run_dir = next((tmp_path / "slurm").iterdir())
    job = sub.stdout.split("Slurm job ")[1].split(":")[0]
    # requeue once the first epoch is done (the job is mid-run: 3 epochs)
    wait_for(lambda: any(e["event"] == "epoch_end" for e in run_events(run_dir)), "the first epoch")
    assert subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True).returncode == 0
    wait_for(lambda: any(e["event"] == "run_finished" for e in run_events(run_dir)), "the checkpoint on SIGTERM")
    release(job, lambda: len(manifest.read_jsonl(run_dir / "slurm_jobs.jsonl")) > 1)
    wait_for(lambda: sum(e["event"] == "run_finished" for e in run_events(run_dir)) == 2, "the resumed run's end")
    evs = run_events(run_dir)
    assert [e["status"] for e in evs if e["event"] == "run_finished"] == ["stopped", "completed"]
    req = [e for e in evs if e["event"] == "requeued"]
    assert len(req) == 1 and req[0]["attempt"] == 2 and req[0]["job_id"] == job
    assert [e["resumed"] for e in evs if e["event"] == "run_started"] == [False, True]
    _, err = local.communicate(timeout=600)
    assert local.returncode == 0, err[-2000:]
    assert _final_metrics(run_dir) == _final_metrics(next((tmp_path / "local").iterdir()))


def test_a_job_failing_on_its_node_is_a_failed_cell_with_its_log_tail(slurm_cluster, tmp_path):
    path = write_sweep(tmp_path, name="bad", axes={"sparsity.target": [0.5]}, seeds=1)
    out = spfde("sweep", path, "--plan")
    assert out.returncode == 0
    from engine.sweep import cells as cells_mod
    from engine.sweep import spec as spec_mod
    spec = spec_mod.load(path)
    m = manifest.create(spec, cells_mod.build(spec))
    broken = tmp_path / "python-on-a-broken-node"
    broken.write_text("#!/bin/sh\necho 'node 7: GPU fell off the bus' >&2\nexit 3\n")
    broken.chmod(0o755)
    ex = SlurmExecutor(SlurmOptions())
    seen = []
    cluster.submit(m, ex, python=str(broken))
    assert cluster.follow(m, ex, lambda ev, **f: seen.append((ev, f)), poll_s=0.3) == 0   # will retry once
    failed = [f for ev, f in seen if ev == "cell_failed"]
    assert len(failed) == 1 and "GPU fell off the bus" in failed[0]["error"] and failed[0]["will_retry"]
    line = results.latest_lines(manifest.read_jsonl(m.dir / manifest.RESULTS))[m.cells[0].name]
    assert line["status"] == "failed" and "GPU fell off the bus" in line["slurm_log_tail"]
    table = spfde("sweep", m.dir, "--table", "md")
    assert "0/1 (1 failed)" in table.stdout and "GPU fell off the bus" in table.stderr
    # the retry (once) fails too: the cell is failed for good, not resubmitted again
    cluster.submit(m, ex, python=str(broken))
    assert cluster.follow(m, ex, lambda ev, **f: None, poll_s=0.3) == 1
    assert cluster.submit(m, ex, python=str(broken)) == []
    assert state.states(m)[0].action == "failed"


@pytest.mark.parametrize("extra, field", [
    (["--slurm", "partition=nosuch"], "slurm.partition"),
    (["--slurm", "gpus_per_node=4"], "slurm.gpus_per_node"),
    (["--slurm", "time=0:01", "--flops-per-s", "1000"], "slurm.time"),
])
def test_bad_input_is_refused_before_submitting(slurm_cluster, tmp_path, extra, field):
    path = write_sweep(tmp_path, name="refused", executor="slurm")
    out = spfde("sweep", path, *extra)
    assert out.returncode == 2 and field in out.stderr, out.stderr
    assert not (tmp_path / "sweeps").exists() or not any((tmp_path / "sweeps").iterdir())
    # nothing of this sweep reached Slurm (other jobs, the time-limit test's, may come and go)
    names = subprocess.run(["squeue", "-h", "-o", "%j"], capture_output=True, text=True).stdout
    assert "refused" not in names


def test_resume_on_slurm_and_no_local_run_beside_active_jobs(slurm_cluster, tmp_path):
    path = write_sweep(tmp_path, name="busy", overrides=LONGER, executor="slurm", axes={"sparsity.target": [0.5]},
                       seeds=1)
    out = spfde("sweep", path, "--detach")
    assert out.returncode == 0, out.stderr[-2000:]
    sweep_dir = Path(events(out.stdout)[0]["sweep_dir"])
    (j,) = cluster.jobs(manifest.read(sweep_dir)).values()
    try:
        local = spfde("sweep", sweep_dir, "--executor", "local", "--gpus", "none")
        assert local.returncode == 2 and "Slurm jobs pending or running" in local.stderr, local.stderr
        wait_for(lambda: any(e["event"] == "epoch_end" for e in run_events(Path(j.run_dir))), "a checkpoint")
    finally:
        assert spfde("sweep", sweep_dir, "--cancel").returncode == 0
    wait_for(lambda: f"{j.job_id}|" not in queue(), "the cancelled job to leave")
    # the stopped run folder, resumed on Slurm by hand
    sub = spfde("resume", j.run_dir, "--executor", "slurm")
    assert sub.returncode == 0 and j.run_dir in sub.stdout, sub.stderr[-2000:]
    wait_for(lambda: [e["status"] for e in run_events(Path(j.run_dir)) if e["event"] == "run_finished"][-1:]
             == ["completed"], "the resumed run's end")
    assert [e["resumed"] for e in run_events(Path(j.run_dir)) if e["event"] == "run_started"][-1] is True


def test_time_limit_warning_checkpoints_and_requeues_itself(time_limit_job):
    """--signal=B:TERM@59 on a 2-minute job, the widest warning the 2 minutes allow (a time
    limit within 60 s of the warning is refused: Slurm may send it up to 60 s early). slurmctld
    sends it once the job is within warning + 30 s of its limit, at its next 30-second check:
    31 to 61 s in, half a minute sooner than a 30 s warning. The engine checkpoints, sees the
    job at its time limit and requeues it (Slurm would not); it resumes. The job waits in its
    model's forward rather than training for that minute, leaving the CPU to the suite, and it
    was submitted by an earlier test (the fixture), so that the minute overlaps other tests."""
    job, run_dir = time_limit_job
    try:
        wait_for(lambda: any(e["event"] == "run_finished" for e in run_events(run_dir)), "the warning signal",
                 timeout=240)
        release(job, lambda: len(manifest.read_jsonl(run_dir / "slurm_jobs.jsonl")) > 1)
        wait_for(lambda: any(e["event"] == "requeued" for e in run_events(run_dir)), "the resumed session")
    finally:
        subprocess.run(["scancel", job], capture_output=True, text=True)
    # a cancel near the time limit is still a cancel: the job does not requeue itself
    wait_for(lambda: f"{job}|" not in queue(), "the cancelled job to leave the queue")
    time.sleep(3)
    assert f"{job}|" not in queue()
    evs = run_events(run_dir)
    first = next(e for e in evs if e["event"] == "run_finished")
    assert first["status"] == "stopped" and "time limit: requeued" in next(run_dir.glob("slurm-*.log")).read_text()
    again = [e for e in evs if e["event"] == "run_started"][1]
    # resumed from the stop checkpoint (which may be at batch 0 when the signal came early)
    assert again["resumed"] and again["resume"]["checkpoint"]
    assert next(e for e in evs if e["event"] == "requeued")["attempt"] == 2


def test_two_task_gloo_ddp_run_through_srun(slurm_cluster, tmp_path):
    sets = [f"{k}={v}" for k, v in {"device": "cpu", "epochs": 2, "interval": 1, "batch_size": 4, "model.width": 0.25,
                                     "threads": 1, "data.image_size": 8, "data.train_size": 40, "data.test_size": 16,
                                     "data.num_classes": 4, "data.augment": "false", "freeze.target": 0,
                                     "sieve.ratio": 0, "analysis.enabled": "false",
                                     "distributed.nproc_per_node": 2}.items()]
    args = [a for s in sets for a in ("--set", s)]
    sub = spfde("run", "--preset", "demo", *args, "--run-dir", tmp_path / "ddp", "--executor", "slurm")
    assert sub.returncode == 0, sub.stderr[-2000:]
    run_dir = next((tmp_path / "ddp").iterdir())
    wait_for(lambda: any(e["event"] in ("run_finished", "error") for e in run_events(run_dir)), "the DDP run's end")
    evs = run_events(run_dir)
    assert [e["event"] for e in evs if e["event"] in ("run_started", "run_finished")] == ["run_started", "run_finished"]
    dist = evs[0]["distributed"]          # rank 0 alone wrote
    assert dist["world_size"] == 2 and dist["backend"] == "gloo" and evs[-1]["status"] == "completed"
    marker = manifest.read_jsonl(run_dir / "slurm_jobs.jsonl")
    assert len(marker) == 1 and marker[0]["ntasks"] == 2
    log = next(run_dir.glob("slurm-*.log")).read_text()
    assert "rank 1 of 2" in log and "backend gloo" in log
    # more machines than the partition has: refused before submitting
    nodes = spfde("run", "--preset", "demo", *args, "--set", "distributed.nnodes=2", "--run-dir", tmp_path / "n2",
                  "--executor", "slurm")
    assert nodes.returncode == 2 and "distributed.nnodes" in nodes.stderr, nodes.stderr
    # more processes on one node than it has CPUs: refused, not left pending for ever
    wide = spfde("run", "--preset", "demo", *args, "--slurm", "cpus_per_task=512", "--run-dir", tmp_path / "wide",
                 "--executor", "slurm")
    assert wide.returncode == 2 and "distributed.nproc_per_node x slurm.cpus_per_task" in wide.stderr, wide.stderr
