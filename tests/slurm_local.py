"""The one-node Slurm the ``slurm`` tests submit to (scripts/slurm-local), started once per
test session, and why those tests skip when it cannot be had."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "slurm-local"
DAEMONS = ("slurmctld", "slurmd", "munged")


def missing_reason() -> str | None:
    """Why there is no local Slurm to test with (None when scripts/slurm-local can run)."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    absent = [b for b in ("sbatch", "squeue", *DAEMONS) if not shutil.which(b, path=path)]
    if absent:
        return (f"Slurm is not installed ({', '.join(absent)} missing): "
                "apt-get install -y slurm-wlm munge (as root) to run the slurm tests")
    if os.geteuid() != 0:
        return "scripts/slurm-local runs the Slurm daemons as root; the slurm tests need root"
    return None


def start() -> str:
    """Start (or join) the local Slurm; its SLURM_CONF. Raises RuntimeError with the script's
    output when it does not come up."""
    env = {**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"}
    out = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, timeout=180, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"scripts/slurm-local start failed ({out.returncode}): {out.stderr[-2000:]}")
    line = [l for l in out.stdout.splitlines() if l.startswith("export SLURM_CONF=")][-1]
    return line.split("=", 1)[1].strip()
