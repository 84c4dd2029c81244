"""The test suite's wall time, serial and in parallel, side by side in one run (issue 26).

    PYTHONPATH=$PWD python benchmarks/bench_test_suite.py [pytest args...]

Default: the whole suite. Prints each wall time, the ratio and the load average before and
after, since on a shared machine the load decides the figure as much as the code.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(extra: list[str], args: list[str]) -> tuple[float, int]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    t0 = time.monotonic()
    rc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, *args],
                        cwd=ROOT, env=env, stdout=subprocess.DEVNULL).returncode
    return time.monotonic() - t0, rc


def main(argv: list[str]) -> int:
    args = argv or ["tests"]
    print(f"cores {os.cpu_count()}, load before {os.getloadavg()}")
    serial, rc1 = timed([], args)
    parallel, rc2 = timed(["-n", "auto", "--dist", "loadgroup"], args)
    print(f"serial   {serial:7.1f} s (exit {rc1})")
    print(f"parallel {parallel:7.1f} s (exit {rc2})  -> {serial / parallel:.2f}x faster")
    print(f"load after {os.getloadavg()}")
    return rc1 or rc2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
