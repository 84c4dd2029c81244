import pytest

from engine.executor.base import JobInfo
from engine.executor.slurm import SlurmOptions, batch_script, parse_squeue, time_seconds


def test_time_formats():
    assert time_seconds("30") == 1800
    assert time_seconds("2:30") == 150
    assert time_seconds("1:00:00") == 3600
    assert time_seconds("1-12") == 36 * 3600
    assert time_seconds("1-0:30:05") == 24 * 3600 + 30 * 60 + 5
    with pytest.raises(ValueError, match="slurm.time"):
        time_seconds("soon")


def test_options_refuse_bad_values():
    with pytest.raises(ValueError, match="slurm.cpus_per_task"):
        SlurmOptions(cpus_per_task=0).validate()
    with pytest.raises(ValueError, match="slurm.array_parallelism"):
        SlurmOptions(array_parallelism=-1).validate()


def test_batch_script_is_a_throttled_array_with_signal_and_requeue():
    opts = SlurmOptions(partition="gpu", array_parallelism=2, gpus_per_node=1)
    s = batch_script([["python", "-m", "engine", "run"], ["python", "x y"]], "spfde-demo", "/s/logs", opts)
    assert "#SBATCH --array=0-1%2" in s
    assert "#SBATCH --partition=gpu" in s and "#SBATCH --gpus-per-node=1" in s
    assert "#SBATCH --requeue" in s and "#SBATCH --signal=B:TERM@120" in s
    assert "1) exec python 'x y' ;;" in s
    with pytest.raises(ValueError):
        batch_script([], "n", "/l", opts)


def test_parse_squeue_and_active():
    jobs = parse_squeue("12_0|RUNNING|node1|0:05|None\n12_1|PENDING||0:00|Priority\n")
    assert jobs["12_0"].node == "node1" and jobs["12_0"].reason == ""
    assert jobs["12_1"].reason == "Priority" and jobs["12_1"].active
    assert not JobInfo("9", "ENDED").active


# ---------------------------------------------------------------- options, checks, the job entry
from pathlib import Path  # noqa: E402

from engine.executor import checks, job  # noqa: E402
from engine.executor.slurm import options_from, parse_sets  # noqa: E402


def test_options_from_a_mapping_name_the_bad_field():
    o = options_from({"partition": "gpu", "time": "4:00:00", "gpus_per_node": 8, "extra": "--exclusive"})
    assert (o.partition, o.gpus_per_node, o.extra) == ("gpu", 8, ["--exclusive"])
    with pytest.raises(ValueError, match=r"slurm\.partiton: unknown Slurm option"):
        options_from({"partiton": "gpu"})
    with pytest.raises(ValueError, match=r"slurm\.gpus_per_node: expected a whole number"):
        options_from({"gpus_per_node": "eight"})
    with pytest.raises(ValueError, match=r"slurm\.time"):
        options_from({"time": "tomorrow"})
    layered = parse_sets(["time=30", "qos=high"], o)
    assert (layered.partition, layered.time, layered.qos) == ("gpu", "30", "high")
    with pytest.raises(ValueError, match="--slurm: expected KEY=VALUE"):
        parse_sets(["partition"], o)


def test_sweep_file_executor_fields_are_checked():
    from engine.sweep import spec as spec_mod
    s = spec_mod.parse({"base": {"preset": "demo"}, "executor": "slurm", "slurm": {"partition": "gpu"}})
    assert s.executor == "slurm" and s.slurm == {"partition": "gpu"}
    with pytest.raises(spec_mod.SweepError, match=r"executor: expected one of local, slurm"):
        spec_mod.parse({"base": {"preset": "demo"}, "executor": "k8s"})
    with pytest.raises(spec_mod.SweepError, match=r"slurm\.cpus_per_task"):
        spec_mod.parse({"base": {"preset": "demo"}, "slurm": {"cpus_per_task": 0}})


def test_gpus_in_gres():
    assert checks.gpus_in_gres("gpu:a100:8(S:0-1)") == 8
    assert checks.gpus_in_gres("gpu:4,shard:8") == 4
    assert checks.gpus_in_gres("(null)") == 0


def test_node_local_run_folder_is_refused_unless_the_nodes_are_this_machine(monkeypatch, tmp_path):
    monkeypatch.setattr(checks, "partition_nodes", lambda p: [("node01", 0), ("node02", 0)])
    with pytest.raises(checks.SubmitError, match=r"run folder /tmp/x: under /tmp"):
        checks.check_folder(Path("/tmp/x"), "debug")
    with pytest.raises(checks.SubmitError, match="must be an absolute path"):
        checks.check_folder(Path("runs"), "debug")
    checks.check_folder(Path("/shared/runs"), "debug")      # not node-local: accepted
    import socket
    monkeypatch.setattr(checks, "partition_nodes", lambda p: [(socket.gethostname(), 0)])
    checks.check_folder(Path("/tmp/x"), "debug")             # a one-node cluster on this machine


def test_more_cpus_than_a_node_has_is_refused_not_left_pending(monkeypatch):
    monkeypatch.setattr(checks, "partition_cpus", lambda p: 8)
    checks.check_cpus(SlurmOptions(cpus_per_task=8), "debug", 1)
    checks.check_cpus(SlurmOptions(cpus_per_task=2), "debug", 4)
    with pytest.raises(checks.SubmitError, match=r"slurm\.cpus_per_task: 9 CPUs on one node, .* at most 8"):
        checks.check_cpus(SlurmOptions(cpus_per_task=9), "debug", 1)
    with pytest.raises(checks.SubmitError, match=r"distributed\.nproc_per_node x slurm\.cpus_per_task: 12 CPUs"):
        checks.check_cpus(SlurmOptions(cpus_per_task=3), "debug", 4)
    monkeypatch.setattr(checks, "partition_cpus", lambda p: 0)      # sinfo silent: not checked
    checks.check_cpus(SlurmOptions(cpus_per_task=64), "debug", 8)


def test_time_limit_against_an_epoch():
    assert "not checked" in checks.check_time(SlurmOptions(time="10"), None)
    assert checks.check_time(SlurmOptions(time="10"), 300.0) is None
    with pytest.raises(checks.SubmitError, match=r"slurm\.time: 1 \(60 s\) is shorter than one epoch"):
        checks.check_time(SlurmOptions(time="1"), 300.0)


def test_job_entry_resumes_when_a_checkpoint_exists(tmp_path):
    assert job.engine_argv(tmp_path)[:1] == ["run"] and job.engine_argv(tmp_path)[-2:] == ["--attach", str(tmp_path)]
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"x")
    assert job.engine_argv(tmp_path) == ["resume", str(tmp_path)]
    assert job.engine_argv(tmp_path, ["epochs", "lr"]) == ["resume", str(tmp_path), "--allow-change", "epochs",
                                                            "--allow-change", "lr"]
    assert job.main([str(tmp_path / "nowhere")]) == 2        # a folder the node cannot see
    assert job.parse_args(["/r", "--allow-change", "epochs"]) == (Path("/r"), ["epochs"])
    for bad in ([], ["--allow-change", "epochs"], ["/r", "--allow-change"], ["/r", "--set", "x=1"]):
        assert job.parse_args(bad) is None and job.main(bad) == 2


def test_resume_on_slurm_hands_allow_change_to_the_job(tmp_path, monkeypatch):
    """`resume RUN --executor slurm --allow-change epochs`: the job's resume accepts the same
    fields (else it would refuse the config the user changed)."""
    import argparse

    from engine.executor import cli as ex_cli
    from engine.executor import slurm as slurm_mod
    submitted = []
    monkeypatch.setattr(ex_cli, "available", lambda: None)
    monkeypatch.setattr(ex_cli.checks, "check_all", lambda *a, **k: [])
    monkeypatch.setattr(slurm_mod.SlurmExecutor, "submit",
                        lambda self, commands, **kw: submitted.append(commands) or ["42"])
    from engine import config as C
    cfg = C.load_preset("demo")
    run = tmp_path / "run"
    run.mkdir()
    args = argparse.Namespace(slurm_config=None, slurm=[], run_dir=None, allow_change=["epochs", "lr"])
    assert ex_cli.submit_run(cfg, args, existing=run) == 0
    assert submitted[0] == [[submitted[0][0][0], "-m", "engine.executor.job", str(run.resolve()),
                             "--allow-change", "epochs", "--allow-change", "lr"]]


def test_slurm_environment_to_torch_distributed():
    env = {"SLURM_NTASKS": "4", "SLURM_PROCID": "3", "SLURM_LOCALID": "1", "SLURM_JOB_ID": "1234",
           "SLURM_NTASKS_PER_NODE": "2(x2)", "SLURM_JOB_NODELIST": "gpu[07-08]"}
    d = job.ddp_env(env)
    assert (d["RANK"], d["WORLD_SIZE"], d["LOCAL_RANK"], d["LOCAL_WORLD_SIZE"]) == ("3", "4", "1", "2")
    assert d["MASTER_ADDR"] in ("gpu07",) and d["MASTER_PORT"] == str(20000 + 1234)
    assert job.ddp_env({"SLURM_NTASKS": "1", "SLURM_PROCID": "0"}) == {}
    assert job.requeue_fields({"SLURM_RESTART_COUNT": "0"}) is None
    r = job.requeue_fields({"SLURM_RESTART_COUNT": "2", "SLURM_ARRAY_JOB_ID": "7", "SLURM_ARRAY_TASK_ID": "3"})
    assert (r["attempt"], r["restart_count"], r["job_id"]) == (3, 2, "7_3")


def test_srun_for_a_multi_process_job():
    text = batch_script([["python", "-m", "engine.executor.job", "/r"]], "spfde-x", "/r", SlurmOptions(), ntasks=2)
    assert "#SBATCH --ntasks-per-node=2" in text and "exec srun --kill-on-bad-exit=1 python" in text


def test_requeue_only_at_the_time_limit_of_our_own_jobs(monkeypatch):
    calls = []
    monkeypatch.setattr(job.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or type("R", (), {"returncode": 0})())
    ours = {"SLURM_JOB_ID": "41", job.REQUEUE_ENV: "1", job.WARNING_ENV: "120"}
    monkeypatch.setattr(job, "state_and_time_left", lambda jid: ("RUNNING", 100))
    assert job.requeue_at_time_limit(ours) and calls == [["scontrol", "requeue", "41"]]
    assert not job.requeue_at_time_limit({"SLURM_JOB_ID": "41"})          # a job someone else wrote
    monkeypatch.setattr(job, "state_and_time_left", lambda jid: ("RUNNING", 3600))   # preemption far from the limit
    assert not job.requeue_at_time_limit(ours)
    monkeypatch.setattr(job, "state_and_time_left", lambda jid: ("COMPLETING", 100))  # scancel'd near the limit
    assert not job.requeue_at_time_limit(ours)
    monkeypatch.setattr(job, "state_and_time_left", lambda jid: ("RUNNING", None))    # unlimited
    assert not job.requeue_at_time_limit(ours) and len(calls) == 1


def test_a_job_settled_twice_is_one_failure(tmp_path):
    from engine.sweep import state as state_mod
    from engine.sweep.cells import Cell
    from engine.sweep.manifest import Manifest
    m = Manifest(tmp_path, {"cells": [Cell(index=0, name="s-c000", setting={}, seed=0, config={}).to_dict()]})
    line = {"cell": "s-c000", "status": "failed", "job_id": "5_0", "error": "boom"}
    (tmp_path / "results.jsonl").write_text("\n".join(__import__("json").dumps(line) for _ in range(2)) + "\n")
    st = state_mod.cell_state(m, m.cells[0])
    assert (st.failures, st.action) == (1, "retry_start")


def test_a_time_limit_within_the_early_signal_is_refused():
    with pytest.raises(ValueError, match=r"slurm\.time: 2 \(120 s\) leaves no time before the warning signal"):
        SlurmOptions(time="2", signal_warning_s=90).validate()
    SlurmOptions(time="2", signal_warning_s=30).validate()
