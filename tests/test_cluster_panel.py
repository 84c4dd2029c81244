"""The studio's Cluster tab: "Slurm not found" as a normal state; the queue view against the
real squeue of the local Slurm (scripts/slurm-local), with cancel; Launch with "Run on:
Slurm" submitting the form's run, whose folder the Runs tab then lists."""
from __future__ import annotations

import re
import subprocess
import time

import pytest

from spfde_gui.model import slurm_queue

TINY = {"device": "cpu", "epochs": 2, "interval": 1, "batch_size": 4, "model": {"width": 0.25}, "threads": 1,
        "data": {"image_size": 8, "train_size": 40, "test_size": 16, "num_classes": 4, "augment": False},
        "freeze": {"target": 0}, "sieve": {"ratio": 0}, "analysis": {"enabled": False}}


def test_squeue_lines_keep_this_projects_jobs():
    text = "12_0|spfde-grid|RUNNING|node3|1:02|None\n13|other|PENDING||0:00|Priority\n" \
           "12_1|spfde-grid|PENDING||0:00|Resources\nbroken line\n"
    rows = slurm_queue.parse(text)
    assert [(r.job_id, r.state, r.node, r.reason) for r in rows] == [("12_0", "RUNNING", "node3", ""),
                                                                     ("12_1", "PENDING", "", "Resources")]
    assert slurm_queue.option_args({"partition": "gpu", "account": "", "time": "30"}) == \
        ["--slurm", "partition=gpu", "--slurm", "time=30"]


@pytest.mark.gui
def test_no_slurm_is_a_clear_state_not_a_crash(qtbot, monkeypatch, tmp_path):
    from spfde_gui.window.cluster_panel import ClusterPanel
    monkeypatch.setenv("PATH", str(tmp_path))          # no sbatch anywhere
    p = ClusterPanel()
    qtbot.addWidget(p)
    assert "Slurm not found" in p.status.text()
    assert not p.on_slurm() and not p.run_on.isEnabled() and not p.cancel_btn.isEnabled()
    assert p.submit_sweep(tmp_path) is False and "Slurm not found" in p.message.text()
    assert p.resubmit_run(tmp_path) is False
    p.refresh()                                      # nothing to ask: no error either
    p.shutdown()


@pytest.mark.gui
@pytest.mark.slurm
@pytest.mark.slow
def test_queue_view_shows_and_cancels_a_job_from_the_real_squeue(slurm_cluster, qtbot, tmp_path):
    from spfde_gui.window.cluster_panel import ClusterPanel
    out = subprocess.run(["sbatch", "--parsable", "--job-name=spfde-queue-view", f"--output={tmp_path}/o.log",
                          "--wrap", "sleep 120"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    job = out.stdout.strip().split(";")[0]
    p = ClusterPanel()
    qtbot.addWidget(p)
    try:
        def shows_job():
            p.refresh()
            qtbot.wait(300)
            return any(r.job_id == job and r.state in ("PENDING", "RUNNING") for r in p.rows)
        qtbot.waitUntil(shows_job, timeout=60_000)
        row = next(i for i, r in enumerate(p.rows) if r.job_id == job)
        assert p.table.item(row, 1).text() == "spfde-queue-view"
        p.table.selectRow(row)
        p.cancel_selected()
        qtbot.waitUntil(lambda: "Cancelled" in p.message.text(), timeout=60_000)

        def gone():
            p.refresh()
            qtbot.wait(300)
            return not any(r.job_id == job and r.state in ("PENDING", "RUNNING") for r in p.rows)
        qtbot.waitUntil(gone, timeout=60_000)
    finally:
        subprocess.run(["scancel", job], capture_output=True)
        p.shutdown()


@pytest.mark.gui
@pytest.mark.slurm
@pytest.mark.slow
def test_launch_with_run_on_slurm_submits_the_forms_run(slurm_cluster, studio, qtbot, tmp_path):
    from engine.config import load_preset
    cfg = load_preset("demo").to_dict()
    for k, v in TINY.items():
        cfg[k] = {**cfg[k], **v} if isinstance(v, dict) else v
    cfg["run_dir"] = str(tmp_path / "runs")
    studio.form.set_config(cfg)
    studio.cluster.run_on.setCurrentText("Slurm")
    assert studio.cluster.on_slurm()
    assert studio.launch() is True
    assert not studio.controller.is_running()          # nothing started on this machine
    qtbot.waitUntil(lambda: "submitted Slurm job" in studio.cluster.message.text(), timeout=60_000)
    runs = tmp_path / "runs"

    def finished():
        return any((d / "events.jsonl").is_file() and '"run_finished"' in (d / "events.jsonl").read_text()
                   for d in runs.iterdir())
    deadline = time.monotonic() + 300
    while not finished() and time.monotonic() < deadline:
        qtbot.wait(500)
    assert finished()
    studio.runs.rescan()                               # listed, and watched from its folder
    qtbot.waitUntil(lambda: studio.runs.table.rowCount() == 1, timeout=30_000)
    # resubmitted: a new job that finds the run completed and appends nothing
    run_dir = next(runs.iterdir())
    n_lines = len((run_dir / "events.jsonl").read_text().splitlines())
    studio.cluster.message.setText("")
    assert studio.cluster.resubmit_run(run_dir)
    qtbot.waitUntil(lambda: "submitted Slurm job" in studio.cluster.message.text(), timeout=60_000)
    job = re.search(r"submitted Slurm job (\d+)", studio.cluster.message.text()).group(1)
    marker = run_dir / "slurm_jobs.jsonl"
    qtbot.waitUntil(lambda: len(marker.read_text().splitlines()) == 2, timeout=120_000)
    # until this job has left the queue (the Slurm tests' jobs may be queued meanwhile)
    deadline = time.monotonic() + 60
    while job in subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout.split() \
            and time.monotonic() < deadline:
        qtbot.wait(500)
    assert len((run_dir / "events.jsonl").read_text().splitlines()) == n_lines
