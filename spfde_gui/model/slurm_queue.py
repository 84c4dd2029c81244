"""The studio's view of Slurm, without Qt: the project's jobs from ``squeue``, and the
``spfde-train`` command lines that submit a run or a sweep, or cancel jobs. The commands
are the CLI's own (engine.executor), so the studio and the terminal submit the same jobs."""
from __future__ import annotations

import getpass
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.executor.slurm import OPTION_NAMES, SlurmOptions, available, load_options
from spfde_gui.system import cancellable

SUBMIT_TIMEOUT_S = 120        # a submission or cancel command's time limit
JOB_PREFIX = "spfde-"          # every job this project submits is named spfde-<run or sweep>
# The fields the studio shows, in order (the rest stay in ~/.config/spfde/slurm.yaml).
FORM_FIELDS = ("partition", "account", "qos", "time", "gpus_per_node", "cpus_per_task", "mem", "array_parallelism")


@dataclass
class JobRow:
    job_id: str
    name: str
    state: str
    node: str
    elapsed: str
    reason: str


def not_found() -> str | None:
    """The message for a machine without Slurm (None when sbatch is on PATH)."""
    return available()


def parse(text: str) -> list[JobRow]:
    """``squeue -h -r -o '%i|%j|%T|%N|%M|%r'`` lines: this project's jobs only."""
    rows = []
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 6 or not parts[1].startswith(JOB_PREFIX):
            continue
        reason = parts[5] if parts[5] not in ("None", "(null)") else ""
        rows.append(JobRow(parts[0], parts[1], parts[2], parts[3], parts[4], reason))
    return rows


def queue_rows(check: Callable[[], None] | None = None) -> list[JobRow]:
    """The user's spfde jobs, pending first; RuntimeError with squeue's words when it fails.
    ``check`` (the task's) kills squeue when the window closes: a busy controller can keep it
    waiting for many seconds."""
    try:
        out = cancellable.run(["squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%i|%j|%T|%N|%M|%r"], 30, check)
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"squeue could not run: {exc}") from None
    if out.returncode != 0:
        raise RuntimeError(f"squeue failed: {out.stderr.strip() or out.stdout.strip()}")
    return parse(out.stdout)


def default_options() -> SlurmOptions:
    """The user's cluster settings (~/.config/spfde/slurm.yaml), else the defaults; a broken
    file gives the defaults (the CLI names its problem when submitting)."""
    try:
        return load_options(None)
    except ValueError:
        return SlurmOptions()


def option_args(values: dict) -> list[str]:
    """``--slurm KEY=VALUE`` for each filled field (empty ones keep the config file's)."""
    out: list[str] = []
    for k, v in values.items():
        if k in OPTION_NAMES and v not in ("", None):
            out += ["--slurm", f"{k}={v}"]
    return out


def submit_run_argv(config_path: Path, runs_dir: Path, values: dict) -> list[str]:
    return [sys.executable, "-m", "engine", "run", "--config", str(config_path), "--run-dir", str(runs_dir),
            "--executor", "slurm", *option_args(values)]


def resubmit_run_argv(run_dir: Path, values: dict) -> list[str]:
    """A stopped or cancelled run folder, resumed by a new job (from its checkpoint)."""
    return [sys.executable, "-m", "engine", "resume", str(run_dir), "--executor", "slurm", *option_args(values)]


def submit_sweep_argv(sweep_dir: Path, values: dict) -> list[str]:
    return [sys.executable, "-m", "engine", "sweep", str(sweep_dir), "--executor", "slurm", "--detach",
            *option_args(values)]


def run_command(argv: list[str], timeout: float = SUBMIT_TIMEOUT_S) -> tuple[int, str]:
    """(exit status, what it said) of a submission or cancel command."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        return 1, str(exc)
    said = (out.stdout.strip() + "\n" + out.stderr.strip()).strip()
    lines = [l for l in said.splitlines() if l.strip() and not l.startswith("{")]
    return out.returncode, "\n".join(lines[-6:])


def cancel(job_ids: list[str]) -> tuple[int, str]:
    if not job_ids:
        return 0, ""
    return run_command(["scancel", *job_ids], timeout=60)
