"""Peak memory of an in-memory dataset against the memory preflight's estimate.

Each measurement runs in a fresh process (peak RSS, ``ru_maxrss``): the interpreter with
torch loaded, then the engine's ``Data`` for a synthetic split of N samples. The dataset's
share is the peak minus the same process's peak before ``Data`` (torch and the rest). Printed
beside it: ``engine.cost.preflight.estimate``'s dataset figure for the same configuration,
and the error. Usage: python benchmarks/bench_dataset_memory.py [N ...] (default 100000 300000).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

CHILD = r"""
import json, resource, sys
import torch
torch.set_num_threads(1)
from engine.config import from_dict
from engine.cost.preflight import estimate
from engine.data.sizes import dataset_sizes
from engine.data.loaders import Data
n = int(sys.argv[1])
cfg = from_dict({"device": "cpu", "data": {"name": "synthetic", "train_size": n, "test_size": 1000,
                                           "image_size": 32, "num_classes": 10}})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
data = Data(cfg, torch.device("cpu"))
x, _ = data.train.ds.batch(torch.arange(8), augment=False)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
est = estimate(cfg, dataset_sizes(cfg), 0, 0)
print(json.dumps({"n": n, "measured": peak - before, "estimate": est["dataset"]}))
"""


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [100_000, 300_000]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    print(f"load average {os.getloadavg()}, {os.cpu_count()} cores")
    print(f"{'samples':>10} {'measured GiB':>13} {'estimate GiB':>13} {'error':>8}")
    for n in sizes:
        out = subprocess.run([sys.executable, "-c", CHILD, str(n)], capture_output=True, text=True, env=env,
                             check=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        m, e = r["measured"] / 2**30, r["estimate"] / 2**30
        print(f"{n:>10,} {m:>13.2f} {e:>13.2f} {(e - m) / m:>+8.0%}")
    print(f"load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
