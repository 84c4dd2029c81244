"""The wall-time estimate before training against the measured wall time (issue 26 goal:
within +-20%), for the demo preset (shortened) on this machine.

In a fresh cache folder: (1) `plan --calibrate` measures a few steps and estimates; (2) the
run itself, timed from the command's start to its exit; (3) the rate that run recorded
estimates a second identical run, which is then timed too. Prints both estimates, both
actual times, their ratios and the load average. Usage:
    python benchmarks/bench_wall_time.py [--epochs N]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _plan(args: list[str], env: dict) -> dict:
    out = subprocess.run([sys.executable, "-m", "engine", "plan", *args, "--json"], capture_output=True, text=True,
                         env=env, cwd=ROOT, check=True).stdout
    return json.loads(out)["wall_time"]


def _run(args: list[str], env: dict, runs: Path) -> float:
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "engine", "run", *args, "--run-dir", str(runs)], env=env, cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--freeze-target", type=float, default=0.1)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-wall-time-"))
    env = dict(os.environ, SPFDE_CACHE_DIR=str(tmp / "cache"), PYTHONPATH=str(ROOT))
    cfg = ["--preset", "demo", "--set", f"epochs={a.epochs}", "--set", f"freeze.target={a.freeze_target}"]
    print(f"demo, {a.epochs} epochs; {os.cpu_count()} cores; load average {os.getloadavg()}")
    est1 = _plan([*cfg, "--calibrate"], env)
    act1 = _run(cfg, env, tmp / "runs")
    est2 = _plan(cfg, env)                  # from the rate the first run recorded
    act2 = _run(cfg, env, tmp / "runs")
    print(f"{'estimate from':<28} {'estimate s':>10} {'actual s':>9} {'estimate/actual':>16}")
    for what, e, t in (("calibration (before any run)", est1, act1), ("the first run's own rate", est2, act2)):
        s = e.get("seconds")
        print(f"{what:<28} {s if s is None else round(s, 1)!s:>10} {t:>9.1f} "
              f"{'-' if s is None else f'{s / t:.2f}':>16}")
    print(f"load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
