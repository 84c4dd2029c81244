"""What a Slurm job runs: ``python -m engine.executor.job RUN_DIR``.

Decided on the node at every start, so that a requeued job (preempted, or warned before its
time limit: the engine checkpointed on SIGTERM) continues where it stopped: ``resume`` when
the run folder holds a checkpoint, else ``run --attach`` (train in this existing folder).
The engine is exec'd, so Slurm's signal reaches it, not a wrapper.

Before that it appends a line to ``<run_dir>/slurm_jobs.jsonl`` (job id, node, restart
count): the submitter reads it back, which proves the node sees the run folder (the shared
filesystem check), and the status view takes the node from it once squeue has forgotten
the job. A job whose node cannot see the run folder fails at once and says so in its log.

Under ``srun`` with several tasks (multi-node DDP) each task maps Slurm's environment to the
torch.distributed one (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), as torchrun
would; rank 0 writes, as in every distributed run (docs/distributed.md).
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from engine.executor.slurm import time_seconds

MARKER = "slurm_jobs.jsonl"
# Set by the batch script of jobs this project submits (engine.executor.slurm.batch_script):
# only those requeue themselves at the time-limit warning.
REQUEUE_ENV, WARNING_ENV = "SPFDE_SLURM_REQUEUE", "SPFDE_SLURM_WARNING_S"
EARLY_SIGNAL_S = 90     # Slurm may send --signal up to 60 s early (its docs); margin on top of the warning


def job_id(env: dict | os._Environ = os.environ) -> str:
    """``<array>_<task>`` for an array task (as squeue names it), else the job id."""
    array, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task is not None else env.get("SLURM_JOB_ID", "")


def restart_count(env: dict | os._Environ = os.environ) -> int:
    try:
        return int(env.get("SLURM_RESTART_COUNT", "0") or 0)
    except ValueError:
        return 0


def requeue_fields(env: dict | os._Environ = os.environ) -> dict | None:
    """The ``requeued`` event's fields when Slurm restarted this job (SLURM_RESTART_COUNT > 0):
    attempt counts from 1, so the first requeue is attempt 2."""
    n = restart_count(env)
    if n <= 0:
        return None
    return {"attempt": n + 1, "restart_count": n, "job_id": job_id(env),
            "node": socket.gethostname().split(".")[0]}


def state_and_time_left(slurm_job_id: str) -> tuple[str, int | None]:
    """The job's state and remaining time from squeue (%T, %L); the time is None when
    unlimited or unknown."""
    try:
        out = subprocess.run(["squeue", "-h", "-j", slurm_job_id, "-o", "%T|%L"], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "", None
    text = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else "|"
    state, _, left = text.partition("|")
    try:
        return state, time_seconds(left) if left else None
    except ValueError:
        return state, None       # UNLIMITED, NOT_SET


def requeue_at_time_limit(env: dict | os._Environ = os.environ) -> bool:
    """After the engine stopped with a checkpoint inside one of our Slurm jobs: when the job
    is at its time-limit warning, requeue it (Slurm does not requeue a timed-out job by
    itself), so it resumes from the checkpoint. A scancel, an ``scontrol requeue`` or a
    preemption also sends SIGTERM, but far from the time limit: left to Slurm (cancelled
    stays cancelled; the next ``spfde-train sweep`` resumes it); and a cancelled or requeued
    job is no longer RUNNING when its engine gets here. True when requeued."""
    jid = env.get("SLURM_JOB_ID")
    if env.get(REQUEUE_ENV) != "1" or not jid:
        return False
    warning = int(env.get(WARNING_ENV, "120") or 120)
    state, left = state_and_time_left(jid)
    if state != "RUNNING" or left is None or left > warning + EARLY_SIGNAL_S:
        return False
    try:
        out = subprocess.run(["scontrol", "requeue", jid], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0


def first_host(nodelist: str) -> str:
    """The first host of a Slurm node list (``node[03-05,7],gpu1`` -> ``node03``), by
    ``scontrol show hostnames`` when it is there, else parsed."""
    try:
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, timeout=30)
        if out.returncode == 0 and out.stdout.split():
            return out.stdout.split()[0]
    except (OSError, subprocess.SubprocessError):
        pass
    m = re.match(r"([^,\[]+)(?:\[([^\],]+))?", nodelist)
    if not m:
        return nodelist
    head, rng = m.group(1), m.group(2)
    return head + rng.split("-")[0] if rng else head


def ddp_env(env: dict | os._Environ = os.environ) -> dict[str, str]:
    """torch.distributed's variables from srun's (empty outside a multi-task step)."""
    ntasks = int(env.get("SLURM_NTASKS", env.get("SLURM_NPROCS", "1")) or 1)
    if ntasks <= 1 or "SLURM_PROCID" not in env:
        return {}
    jid = env.get("SLURM_JOB_ID", "0")
    port = 20000 + int(jid) % 20000 if jid.isdigit() else 29500     # one port per job
    return {"RANK": env["SLURM_PROCID"], "WORLD_SIZE": str(ntasks), "LOCAL_RANK": env.get("SLURM_LOCALID", "0"),
            "LOCAL_WORLD_SIZE": env.get("SLURM_NTASKS_PER_NODE", str(ntasks)).split("(")[0],
            "MASTER_ADDR": env.get("MASTER_ADDR") or first_host(env.get("SLURM_JOB_NODELIST", "localhost")),
            "MASTER_PORT": env.get("MASTER_PORT") or str(port)}


def engine_argv(run_dir: Path, allow_change: list[str] | None = None) -> list[str]:
    """``resume`` when a checkpoint exists (with the fields ``resume --allow-change`` named
    when it was submitted), else train afresh in the existing folder."""
    if (run_dir / "checkpoints" / "last.pt").is_file() or any((run_dir / "checkpoints").glob("*.pt")):
        return ["resume", str(run_dir), *(a for f in allow_change or [] for a in ("--allow-change", f))]
    return ["run", "--config", str(run_dir / "config.yaml"), "--attach", str(run_dir)]


USAGE = "usage: python -m engine.executor.job RUN_DIR [--allow-change FIELD[,FIELD]]..."


def parse_args(args: list[str]) -> tuple[Path, list[str]] | None:
    """(RUN_DIR, the --allow-change values), or None for anything else."""
    if not args or args[0].startswith("-"):
        return None
    rest, allow = args[1:], []
    while rest:
        if rest[0] != "--allow-change" or len(rest) < 2:
            return None
        allow.append(rest[1])
        rest = rest[2:]
    return Path(args[0]), allow


def main(argv: list[str] | None = None) -> int:
    parsed = parse_args(list(sys.argv[1:] if argv is None else argv))
    if parsed is None:
        print(USAGE, file=sys.stderr)
        return 2
    run_dir, allow_change = parsed
    node = socket.gethostname().split(".")[0]
    if not (run_dir / "config.yaml").is_file():
        print(f"run folder {run_dir} is not visible on node {node} (or holds no config.yaml): Slurm jobs need "
              "the run folder on a filesystem shared with the submitting machine", file=sys.stderr)
        return 2
    dist = ddp_env()
    if dist.get("RANK", "0") == "0":
        line = {"job_id": job_id(), "node": node, "restart_count": restart_count(), "time": round(time.time(), 3),
                "ntasks": int(dist.get("WORLD_SIZE", "1"))}
        with open(run_dir / MARKER, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
    os.environ.update(dist)
    cmd = [sys.executable, "-m", "engine", *engine_argv(run_dir, allow_change)]
    sys.stdout.flush()
    # the events are in the run folder's events.jsonl: the Slurm log keeps the engine's log
    # lines (stderr), so that a failed job's log tail says what went wrong
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.execv(sys.executable, cmd)
    return 0    # not reached


if __name__ == "__main__":
    sys.exit(main())
