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
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

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
        limit = time_seconds(self.time)
        # Slurm may send --signal up to 60 s early: a shorter job could be signalled while
        # the engine still starts (no handler yet), and die without a checkpoint
        if limit <= int(self.signal_warning_s) + 60:
            raise ValueError(f"slurm.time: {self.time} ({limit} s) leaves no time before the warning signal "
                             f"(signal_warning_s={self.signal_warning_s}, which Slurm may send up to 60 s early); "
                             f"raise time above {int(self.signal_warning_s) + 60} s or lower signal_warning_s")
        for name in ("gpus_per_node", "cpus_per_task", "array_parallelism", "signal_warning_s"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"slurm.{name}: expected a number >= 0; got {getattr(self, name)!r}")
        if self.cpus_per_task < 1:
            raise ValueError(f"slurm.cpus_per_task: expected at least 1; got {self.cpus_per_task}")

    def directives(self, ntasks: int = 1, nodes: int = 1) -> list[str]:
        d = [f"--time={self.time}", f"--cpus-per-task={self.cpus_per_task}", "--requeue",
             f"--signal=B:TERM@{self.signal_warning_s}", "--open-mode=append"]
        for flag, value in (("partition", self.partition), ("account", self.account), ("qos", self.qos),
                            ("mem", self.mem), ("constraint", self.constraint)):
            if value:
                d.append(f"--{flag}={value}")
        if self.gpus_per_node:
            d.append(f"--gpus-per-node={self.gpus_per_node}")
        if nodes > 1 or ntasks > 1:        # a multi-process DDP run: one task per process
            d += [f"--nodes={nodes}", f"--ntasks-per-node={max(1, ntasks // nodes)}"]
        return d + list(self.extra)


# Where the user keeps their cluster's settings (read when it exists; --slurm-config names another).
USER_CONFIG = Path("~/.config/spfde/slurm.yaml")
OPTION_NAMES = tuple(f.name for f in fields(SlurmOptions))


def options_from(data: Any, where: str = "slurm", base: SlurmOptions | None = None) -> SlurmOptions:
    """SlurmOptions from a mapping (a sweep file's ``slurm:``, the user's slurm.yaml),
    on top of ``base``; an unknown key or a value of the wrong kind names the field."""
    out = SlurmOptions(**{n: getattr(base, n) for n in OPTION_NAMES}) if base else SlurmOptions()
    if data is None:
        return out
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping of Slurm options ({', '.join(OPTION_NAMES)}); got {data!r}")
    for key, value in data.items():
        if key not in OPTION_NAMES:
            raise ValueError(f"{where}.{key}: unknown Slurm option; expected one of {', '.join(OPTION_NAMES)}")
        default = getattr(SlurmOptions(), key)
        if isinstance(default, list):
            value = [value] if isinstance(value, str) else value
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{where}.{key}: expected a list of sbatch options such as [--exclusive]; got {value!r}")
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{where}.{key}: expected a whole number; got {value!r}")
        else:
            if value is None:
                value = ""
            if not isinstance(value, (str, int)):
                raise ValueError(f"{where}.{key}: expected a string; got {value!r}")
            value = str(value)
        setattr(out, key, value)
    try:
        out.validate()
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return out


def load_options(path: str | Path | None, explicit: bool = False) -> SlurmOptions:
    """The user's cluster settings: ``path`` (an error when it is missing and was named), else
    ~/.config/spfde/slurm.yaml when it exists, else the defaults."""
    p = Path(path).expanduser() if path else USER_CONFIG.expanduser()
    if not p.is_file():
        if explicit:
            raise ValueError(f"--slurm-config: {p} does not exist")
        return SlurmOptions()
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{p}: not a readable YAML file: {exc}") from None
    return options_from(data, str(p))


def parse_sets(pairs: list[str], base: SlurmOptions) -> SlurmOptions:
    """``--slurm KEY=VALUE`` pairs (values read as YAML) on top of ``base``."""
    data: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--slurm: expected KEY=VALUE such as partition=gpu; got {pair!r}")
        data[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    return options_from(data, "--slurm", base)


def batch_script(commands: list[list[str]], job_name: str, log_dir: str, opts: SlurmOptions,
                 ntasks: int = 1, nodes: int = 1) -> str:
    """One job array, task i running commands[i] (exec'd, so Slurm's signal reaches the engine;
    through ``srun`` when the job has several tasks, one per DDP process)."""
    if not commands:
        raise ValueError("batch_script: no commands to submit")
    array = f"0-{len(commands) - 1}" + (f"%{opts.array_parallelism}" if opts.array_parallelism else "")
    lines = ["#!/bin/bash", f"#SBATCH --job-name={job_name}", f"#SBATCH --array={array}",
             f"#SBATCH --output={log_dir}/slurm-%A_%a.log"]
    lines += [f"#SBATCH {d}" for d in opts.directives(ntasks, nodes)]
    # read by the engine (engine.executor.job.requeue_at_time_limit): requeue at the warning
    lines.append(f"export SPFDE_SLURM_REQUEUE=1 SPFDE_SLURM_WARNING_S={opts.signal_warning_s}")
    # srun forwards the batch shell's TERM to its tasks (the engine checkpoints on every rank)
    launch = "exec srun --kill-on-bad-exit=1 " if ntasks > 1 or nodes > 1 else "exec "
    lines.append('case "$SLURM_ARRAY_TASK_ID" in')
    lines += [f"  {i}) {launch}{shlex.join(cmd)} ;;" for i, cmd in enumerate(commands)]
    lines += ["esac", "echo 'no command for this array task' >&2", "exit 2", ""]
    return "\n".join(lines)


def log_file(log_dir: str | Path, job_id: str) -> Path:
    """The Slurm output file of job ``<array>_<task>`` (the --output pattern above)."""
    return Path(log_dir) / f"slurm-{job_id}.log"


def log_tail(path: Path, lines: int = 15) -> str:
    """The last lines of a job's Slurm log ('' when there is none)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    kept = [l for l in text.splitlines() if l.strip()]
    return "\n".join(kept[-lines:])[-2000:]


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

    def submit(self, commands: list[list[str]], job_name: str, log_dir: str,
               ntasks: int = 1, nodes: int = 1) -> list[str]:
        missing = available()
        if missing:
            raise RuntimeError(missing)
        script = batch_script(commands, job_name, log_dir, self.opts, ntasks, nodes)
        res = subprocess.run(["sbatch", "--parsable"], input=script, capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise RuntimeError(f"sbatch refused the job: {res.stderr.strip() or res.stdout.strip()}")
        array_id = res.stdout.strip().split(";")[0]
        return [f"{array_id}_{i}" for i in range(len(commands))]

    def query(self, job_ids: list[str]) -> dict[str, JobInfo]:
        """Every listed job's state. squeue is asked for all jobs (``-j`` with a job it has
        already forgotten fails as a whole); a failing squeue raises, so that a controller
        that does not answer is never read as "every job ended"."""
        if not job_ids:
            return {}
        res = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T|%N|%M|%r"],
                             capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise RuntimeError(f"squeue failed: {res.stderr.strip() or res.stdout.strip()}")
        seen = parse_squeue(res.stdout)
        return {j: seen.get(j, JobInfo(j, "ENDED")) for j in job_ids}

    def cancel(self, job_ids: list[str]) -> None:
        if job_ids:
            subprocess.run(["scancel", *job_ids], capture_output=True, text=True, timeout=60)
