"""Slurm through plain ``sbatch`` / ``squeue`` / ``scancel`` (no extra dependency: a cell is
already a command line, and the run folder, not a pickled callable, carries its state).

A sweep's cells go out as one job array throttled by ``array_parallelism``; every task gets
``--signal=B:TERM@<warn>`` so the engine checkpoints before the time limit, and ``--requeue``.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field

from engine.executor.base import Executor, JobInfo

_TIME = re.compile(r"^(?:(\d+)-)?(?:(\d+):)?(\d+)(?::(\d+))?$")


def time_seconds(text: str) -> int:
    """Slurm's time formats (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S) in seconds."""
    m = _TIME.match(text.strip())
    if not m:
        raise ValueError(f"slurm.time: expected a Slurm time such as 30, 2:00:00 or 1-12:00:00; got {text!r}")
    days, a, b, c = (int(g) if g else None for g in m.groups())
    if days is not None:        # D-H, D-H:M, D-H:M:S
        parts = [p for p in (a, b, c) if p is not None]
        h, mi, s = (parts + [0, 0, 0])[:3]
        return ((days * 24 + h) * 60 + mi) * 60 + s
    if a is None:
        return (b or 0) * 60                    # M
    if c is None:
        return a * 60 + (b or 0)                # M:S
    return (a * 60 + (b or 0)) * 60 + c         # H:M:S


@dataclass
class SlurmOptions:
    partition: str = ""
    account: str = ""
    qos: str = ""
    time: str = "1:00:00"
    gpus_per_node: int = 0
    cpus_per_task: int = 1
    mem: str = ""
    constraint: str = ""
    array_parallelism: int = 0      # 0: no throttle
    signal_warning_s: int = 120
    extra: list[str] = field(default_factory=list)

    def validate(self) -> None:
        time_seconds(self.time)
        for name in ("gpus_per_node", "cpus_per_task", "array_parallelism", "signal_warning_s"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"slurm.{name}: expected a number >= 0; got {getattr(self, name)!r}")
        if self.cpus_per_task < 1:
            raise ValueError(f"slurm.cpus_per_task: expected at least 1; got {self.cpus_per_task}")

    def directives(self) -> list[str]:
        d = [f"--time={self.time}", f"--cpus-per-task={self.cpus_per_task}", "--requeue",
             f"--signal=B:TERM@{self.signal_warning_s}", "--open-mode=append"]
        for flag, value in (("partition", self.partition), ("account", self.account), ("qos", self.qos),
                            ("mem", self.mem), ("constraint", self.constraint)):
            if value:
                d.append(f"--{flag}={value}")
        if self.gpus_per_node:
            d.append(f"--gpus-per-node={self.gpus_per_node}")
        return d + list(self.extra)


def batch_script(commands: list[list[str]], job_name: str, log_dir: str, opts: SlurmOptions) -> str:
    """One job array, task i running commands[i] (exec'd, so Slurm's signal reaches the engine)."""
    if not commands:
        raise ValueError("batch_script: no commands to submit")
    array = f"0-{len(commands) - 1}" + (f"%{opts.array_parallelism}" if opts.array_parallelism else "")
    lines = ["#!/bin/bash", f"#SBATCH --job-name={job_name}", f"#SBATCH --array={array}",
             f"#SBATCH --output={log_dir}/slurm-%A_%a.log"]
    lines += [f"#SBATCH {d}" for d in opts.directives()]
    lines.append('case "$SLURM_ARRAY_TASK_ID" in')
    lines += [f"  {i}) exec {shlex.join(cmd)} ;;" for i, cmd in enumerate(commands)]
    lines += ["esac", "echo 'no command for this array task' >&2", "exit 2", ""]
    return "\n".join(lines)


def parse_squeue(text: str) -> dict[str, JobInfo]:
    """``squeue -h -o '%i|%T|%N|%M|%r'`` lines into JobInfo by job id."""
    out: dict[str, JobInfo] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 5 or not parts[0]:
            continue
        reason = parts[4] if parts[4] not in ("None", "(null)") else ""
        out[parts[0]] = JobInfo(parts[0], parts[1], parts[2], parts[3], reason)
    return out


def available() -> str | None:
    """None when sbatch is on PATH, else the message the CLI and the studio show."""
    return None if shutil.which("sbatch") else "Slurm not found: no sbatch on PATH (executor: local still works)"


class SlurmExecutor(Executor):
    name = "slurm"

    def __init__(self, opts: SlurmOptions):
        opts.validate()
        self.opts = opts

    def submit(self, commands: list[list[str]], job_name: str, log_dir: str) -> list[str]:
        missing = available()
        if missing:
            raise RuntimeError(missing)
        script = batch_script(commands, job_name, log_dir, self.opts)
        res = subprocess.run(["sbatch", "--parsable"], input=script, capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise RuntimeError(f"sbatch refused the job: {res.stderr.strip() or res.stdout.strip()}")
        array_id = res.stdout.strip().split(";")[0]
        return [f"{array_id}_{i}" for i in range(len(commands))]

    def query(self, job_ids: list[str]) -> dict[str, JobInfo]:
        if not job_ids:
            return {}
        res = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T|%N|%M|%r", "-j", ",".join(job_ids)],
                             capture_output=True, text=True, timeout=60)
        seen = parse_squeue(res.stdout) if res.returncode == 0 else {}
        return {j: seen.get(j, JobInfo(j, "ENDED")) for j in job_ids}

    def cancel(self, job_ids: list[str]) -> None:
        if job_ids:
            subprocess.run(["scancel", *job_ids], capture_output=True, text=True, timeout=60)
