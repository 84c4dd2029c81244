"""The Slurm executor's overhead against the local one, on the same tiny sweep, side by side.

Both run the same cells (tiny synthetic runs) one at a time (the local runner has one CPU
slot; the Slurm array is throttled to 1 with array_parallelism), so the difference is what
Slurm adds: the scheduling interval, the job's start on the node, the polling of squeue.

    python benchmarks/bench_slurm.py [--cells 4] [--rounds 2] [--poll-s 0.5]

Needs a Slurm (scripts/slurm-local start, as root); prints, per executor, the time from the
command's start to the first cell's first engine event (run_started) and the total wall
time, the overhead per cell, Slurm's scheduling interval and the load average.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TINY = {"device": "cpu", "epochs": 2, "interval": 1, "batch_size": 4, "model": {"width": 0.25}, "threads": 1,
        "data": {"image_size": 8, "train_size": 40, "test_size": 16, "num_classes": 4, "augment": False},
        "freeze": {"target": 0}, "sieve": {"ratio": 0}, "checkpoint": {"every": 1}, "analysis": {"enabled": False}}


def sweep_file(d: Path, cells: int, executor: str) -> Path:
    seeds = max(1, cells // 2)
    spec = {"name": f"bench-{executor}", "base": {"preset": "demo"}, "overrides": TINY,
            "axes": {"sparsity.target": [0.5, 0.8][:max(1, cells // seeds)]}, "seeds": seeds,
            "sweep_dir": str(d / "sweeps"), "executor": executor, "slurm": {"array_parallelism": 1}}
    p = d / f"{executor}.yaml"
    p.write_text(yaml.safe_dump(spec))
    return p


def one(executor: str, cells: int, poll_s: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-slurm-") as tmp:
        path = sweep_file(Path(tmp), cells, executor)
        cmd = [sys.executable, "-m", "engine", "sweep", str(path), "--new", "--gpus", "none", "--poll-s", str(poll_s)]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        t0 = time.time()
        out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
        wall = time.time() - t0
        if out.returncode != 0:
            raise SystemExit(f"{executor} sweep failed:\n{out.stderr[-2000:]}")
        evs = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
        sweep_dir = Path(evs[0]["sweep_dir"])
        firsts = []
        for run_dir in sweep_dir.glob("*-c*-2*"):
            lines = (run_dir / "events.jsonl").read_text().splitlines()
            firsts += [json.loads(l)["time"] for l in lines[:1]]
        return {"first_event_s": min(firsts) - t0, "wall_s": wall, "done": evs[-1].get("completed")}


def sched_interval() -> str:
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True).stdout
    m = re.search(r"SchedulerParameters\s*=\s*(\S+)", out)
    return m.group(1) if m else "unknown (Slurm's default sched_interval is 60 s, event-driven scheduling on top)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--poll-s", type=float, default=0.5)
    args = ap.parse_args()
    if not shutil.which("sbatch"):
        print("Slurm not found (no sbatch on PATH): scripts/slurm-local start, then export SLURM_CONF=...")
        return 2
    print(f"load average at start: {os.getloadavg()}")
    print(f"Slurm: {sched_interval()}")
    rows: dict[str, list[dict]] = {"local": [], "slurm": []}
    for r in range(args.rounds):
        for ex in ("local", "slurm") if r % 2 == 0 else ("slurm", "local"):   # alternate the order
            rows[ex].append(one(ex, args.cells, args.poll_s))
            print(f"round {r + 1} {ex:5s}: first event {rows[ex][-1]['first_event_s']:.1f} s, "
                  f"wall {rows[ex][-1]['wall_s']:.1f} s, cells completed {rows[ex][-1]['done']}", flush=True)

    def mean(ex: str, key: str) -> float:
        return sum(x[key] for x in rows[ex]) / len(rows[ex])

    lf, sf = mean("local", "first_event_s"), mean("slurm", "first_event_s")
    lw, sw = mean("local", "wall_s"), mean("slurm", "wall_s")
    print("\n| executor | submission to first event (s) | total wall (s) | per cell (s) |")
    print("|---|---|---|---|")
    print(f"| local | {lf:.1f} | {lw:.1f} | {lw / args.cells:.1f} |")
    print(f"| slurm | {sf:.1f} | {sw:.1f} | {sw / args.cells:.1f} |")
    print(f"\nSlurm / local: first event x{sf / lf:.2f}, wall x{sw / lw:.2f}; "
          f"overhead {(sw - lw) / args.cells:+.1f} s per cell ({args.cells} cells, {args.rounds} rounds, "
          f"polling every {args.poll_s} s)")
    print(f"load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
