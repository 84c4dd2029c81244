"""The wall-time estimate before training against the measured wall time (issue 26 goal:
within +-20%), for the demo preset (shortened) on this machine.

In a fresh cache folder: (1) `plan --calibrate` measures a few steps and estimates; (2) the
run itself, timed from the command's start to its exit; (3) the rate that run recorded
estimates a second identical run, which is then timed too; (4) `sweep --plan`'s estimated
total for a two-cell sweep of the same preset (sparsity 0.9 and 0.95), against the sweep
timed from its command's start to its exit. Prints every estimate, actual time, their
ratios and the load average. Usage:
    python benchmarks/bench_wall_time.py [--epochs N] [--no-sweep]
"""
from __future__ import annotations

import argparse
import json
import os
import re
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


def _sweep_total(plan_text: str) -> float | None:
    """Seconds of `sweep --plan`'s "estimated total: 3m05s" line."""
    m = re.search(r"estimated total: (?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", plan_text)
    if not m or not any(m.groups()):
        return None
    h, mi, s = (int(g or 0) for g in m.groups())
    return 3600.0 * h + 60.0 * mi + s


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--freeze-target", type=float, default=0.1)
    ap.add_argument("--no-sweep", action="store_true", help="skip the sweep stage (4)")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-wall-time-"))
    env = dict(os.environ, SPFDE_CACHE_DIR=str(tmp / "cache"), PYTHONPATH=str(ROOT))
    cfg = ["--preset", "demo", "--set", f"epochs={a.epochs}", "--set", f"freeze.target={a.freeze_target}"]
    print(f"demo, {a.epochs} epochs; {os.cpu_count()} cores; load average {os.getloadavg()}")
    est1 = _plan([*cfg, "--calibrate"], env)
    act1 = _run(cfg, env, tmp / "runs")
    est2 = _plan(cfg, env)                  # from the rate the first run recorded
    act2 = _run(cfg, env, tmp / "runs")
    rows = [("calibration (before any run)", est1, act1), ("the first run's own rate", est2, act2)]
    if not a.no_sweep:
        sweep = tmp / "sweep.yaml"
        sweep.write_text(json.dumps({"name": "bench", "base": {"preset": "demo"}, "seeds": 1,
                                     "overrides": {"epochs": a.epochs, "freeze": {"target": a.freeze_target}},
                                     "axes": {"sparsity.target": [0.9, 0.95]}, "sweep_dir": str(tmp / "sweeps")}))
        plan = subprocess.run([sys.executable, "-m", "engine", "sweep", str(sweep), "--plan"], capture_output=True,
                              text=True, env=env, cwd=ROOT, check=True).stdout
        est3 = _sweep_total(plan)
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-m", "engine", "sweep", str(sweep)], env=env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rows.append(("sweep --plan (2 cells)", {"seconds": est3}, time.monotonic() - t0))
    print(f"{'estimate from':<28} {'estimate s':>10} {'actual s':>9} {'estimate/actual':>16}")
    for what, e, t in rows:
        s = e.get("seconds")
        print(f"{what:<28} {s if s is None else round(s, 1)!s:>10} {t:>9.1f} "
              f"{'-' if s is None else f'{s / t:.2f}':>16}")
    print(f"load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
