"""Start-up of a run: the engine as it starts now against torch's optimizer wrappers as they ship.

torch imports ``torch._dynamo`` on an optimizer's first call (engine/training/eager_start.py);
a run that does not compile now skips that import. This times the same tiny CLI run
(``spfde-train run``, ResNet-20 x0.25, 8 px, 64 samples, 1 epoch) in fresh processes,
alternating the two (``SPFDE_EAGER_START=0`` is torch as it ships), and prints per variant
the median wall time to the first ``epoch_end`` event, the median wall time and CPU time of
the whole process, and the ratios, with the load average before and after.

    python benchmarks/bench_startup.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETS = ["device=cpu", "epochs=1", "interval=1", "threads=1", "model.width=0.25", "data.image_size=8",
        "data.train_size=64", "data.test_size=32", "freeze.target=0", "sieve.ratio=0", "analysis.enabled=false",
        "checkpoint.every=1"]
VARIANTS = {"now": "1", "as shipped": "0"}


def one_run(flag: str, folder: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "SPFDE_EAGER_START": flag}
    args = [sys.executable, "-m", "engine", "run", "--preset", "demo", "--run-dir", folder]
    for s in SETS:
        args += ["--set", s]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    first_epoch = None
    for line in proc.stdout:
        if first_epoch is None and line.startswith("{") and json.loads(line).get("event") == "epoch_end":
            first_epoch = time.perf_counter() - t0
    if proc.wait():
        raise RuntimeError(f"the run failed ({proc.returncode}): {' '.join(args)}")
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"first_epoch": first_epoch, "wall": wall, "cpu": cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; python {platform.python_version()}; "
          f"load average before {os.getloadavg()}")
    res: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory() as d:
        for i in range(a.repeat):
            order = list(VARIANTS) if i % 2 == 0 else list(reversed(VARIANTS))
            for name in order:
                res[name].append(one_run(VARIANTS[name], str(Path(d) / f"{name}-{i}")))
    med = {v: {k: statistics.median(r[k] for r in runs) for k in ("first_epoch", "wall", "cpu")}
           for v, runs in res.items()}
    print(f"\n{'variant':<12}{'first epoch_end':>17}{'process wall':>15}{'process CPU':>14}")
    for v, m in med.items():
        print(f"{v:<12}{m['first_epoch']:>16.2f}s{m['wall']:>14.2f}s{m['cpu']:>13.2f}s")
    now, old = med["now"], med["as shipped"]
    print(f"{'now / as shipped':<12}{now['first_epoch'] / old['first_epoch']:>16.2f}x"
          f"{now['wall'] / old['wall']:>14.2f}x{now['cpu'] / old['cpu']:>13.2f}x")
    print(f"\nmedians of {a.repeat} runs each, alternating; load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
