"""CPU threads: how many intra-op threads torch uses and how its OpenMP workers wait.

Chosen from the ``threads`` config field BEFORE torch is imported (OpenMP reads its
environment once, when the library loads): the CLI calls ``apply`` on the loaded
configuration before it imports the trainer, so every way of starting the engine (the
terminal, the studio, a wheel install) gets the same policy.

Why: with the default policy (as many threads as cores, workers spinning while they wait)
a single busy process beside the run takes a core away from a spinning worker, and every
parallel region then waits for the descheduled thread: on a 2-core machine throughput fell
to a third beside a one-core busy loop and to a tenth at load 4.5 (docs/benchmarks.md).
``auto`` keeps one thread per usable core but makes idle workers sleep at once
(``OMP_WAIT_POLICY=PASSIVE``), so a lost core costs a wake-up instead of a time slice
spent spinning. Measured side by side (benchmarks/bench_cpu_threads.py), that kept or beat
the default's quiet speed and stayed several times faster beside busy processes, while a
short spin (GOMP_SPINCOUNT=10000) degraded almost like the default. A count
(``threads: 1``) pins the number and uses the same wait policy.

Explicit environment settings win: a user who exported OMP_NUM_THREADS, OMP_WAIT_POLICY or
GOMP_SPINCOUNT keeps them. Pure Python, no torch import.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping

WAIT_POLICY = "PASSIVE"   # idle OpenMP workers sleep instead of spinning


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. under taskset or a cgroup)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):     # macOS, Windows
        return max(1, os.cpu_count() or 1)


def environment(setting: str | int, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment variables that put ``setting`` ("auto" or a count) into effect,
    leaving out those the environment ``environ`` already sets."""
    env = os.environ if environ is None else environ
    setting = str(setting)
    if setting == "auto":
        n = usable_cores()
    elif setting.isdigit() and int(setting) > 0:
        n = int(setting)
    else:
        raise ValueError(f"threads: expected auto or a positive number of threads, got {setting!r}")
    out: dict[str, str] = {}
    if setting != "auto" or "OMP_NUM_THREADS" not in env:
        out["OMP_NUM_THREADS"] = str(n)
        out["MKL_NUM_THREADS"] = str(n)
    if "OMP_WAIT_POLICY" not in env and "GOMP_SPINCOUNT" not in env:
        out["OMP_WAIT_POLICY"] = WAIT_POLICY
    return out


def apply(setting: str | int) -> int:
    """Set the policy in this process's environment (before torch loads); returns the
    thread count in effect. If torch is already loaded (a test, a notebook) only the count
    can still change, through torch.set_num_threads."""
    os.environ.update(environment(setting))
    try:
        n = int(os.environ.get("OMP_NUM_THREADS", "")) or usable_cores()
    except ValueError:                    # "4,2" (nested levels) or junk: torch decides
        n = usable_cores()
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        torch.set_num_threads(n)
    return n
