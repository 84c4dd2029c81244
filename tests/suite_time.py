"""The test suite's own time (issue 26): how many workers, how many threads each, and the
wall time and load average printed at the end. Loaded by tests/conftest.py.

- Workers: ``pytest -n auto`` asks ``auto_workers`` (one per usable core of this process's
  affinity mask; SPFDE_TEST_WORKERS overrides).
- One intra-op thread per worker (SPFDE_TEST_THREADS overrides): a worker with as many
  threads as cores collapses when its neighbours hold the cores (docs/benchmarks.md), and
  workers already use the cores in parallel. Set before torch loads, so OpenMP sees it;
  the engines the tests start in a subprocess inherit it (``threads: auto`` keeps an
  exported OMP_NUM_THREADS).
- Serial-only tests: every test that needs Qt (the ``qtbot`` fixture or the ``gui`` mark)
  joins one xdist group, so under ``--dist loadgroup`` they run one after another on one
  worker (one offscreen display, one event loop, no two windows competing for focus).
- Slurm tests (the ``slurm`` mark) join their own group: one worker submits to the one
  local Slurm (scripts/slurm-local), and its 2 CPU slots are not shared between workers.
"""
from __future__ import annotations

import os
import time

SERIAL_GROUP = "serial-gui"
SLURM_GROUP = "slurm"


def auto_workers() -> int:
    """Worker count for ``-n auto``: SPFDE_TEST_WORKERS, else one per usable core."""
    from engine.training.threads import usable_cores
    override = os.environ.get("SPFDE_TEST_WORKERS", "")
    if override:
        if not override.isdigit() or int(override) < 1:
            raise ValueError(f"SPFDE_TEST_WORKERS: expected a positive number of workers, got {override!r}")
        return int(override)
    return usable_cores()


def pin_threads() -> int:
    """One thread per worker (SPFDE_TEST_THREADS overrides), set before torch loads."""
    n = os.environ.get("SPFDE_TEST_THREADS", "1")
    if not n.isdigit() or int(n) < 1:
        raise ValueError(f"SPFDE_TEST_THREADS: expected a positive number of threads, got {n!r}")
    os.environ["OMP_NUM_THREADS"] = n
    os.environ["MKL_NUM_THREADS"] = n
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import sys
    torch = sys.modules.get("torch")
    if torch is not None:        # already loaded (a plugin imported it): only the count can change
        torch.set_num_threads(int(n))
    return int(n)


def needs_serial(item) -> bool:
    """A test that drives Qt: it runs in the one serial group."""
    return "qtbot" in getattr(item, "fixturenames", ()) or item.get_closest_marker("gui") is not None


def load_text() -> str:
    try:
        return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:              # not available on this platform
        return "load average unknown"


class Clock:
    """Wall time of the session and the load average at its start."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.load_at_start = load_text()

    def summary(self, workers: int | None, threads: int) -> str:
        wall = time.monotonic() - self.start
        who = f"{workers} workers" if workers else "1 process (serial)"
        return (f"suite wall time {wall:.1f} s ({wall / 60:.1f} min), {who}, {threads} thread(s) each, "
                f"{os.cpu_count()} cores; at start {self.load_at_start}, at end {load_text()}")


def group_of(item) -> str | None:
    """The xdist group of a test: Qt, Slurm, or an explicit ``xdist_group`` mark (tests that
    share a module-scoped server, e.g. tests/test_trackers.py's MLflow server)."""
    if needs_serial(item):
        return SERIAL_GROUP
    if item.get_closest_marker("slurm") is not None:
        return SLURM_GROUP
    mark = item.get_closest_marker("xdist_group")
    if mark is not None:
        return (mark.args[0] if mark.args else mark.kwargs.get("name")) or None
    return None


def join_serial_group(config, items) -> None:
    """Mark the Qt tests (and the Slurm tests) with their xdist group and, under ``--dist
    loadgroup``, give their node ids the ``@group`` suffix the controller schedules by.
    pytest-xdist 3.8 writes that suffix to ``item._nodeid``, which pytest 9 no longer reads
    (node ids live in ``item._id``), so without this the group would be silently ignored."""
    loadgroup = getattr(config.option, "loadgroup", False)
    for item in items:
        group = group_of(item)
        if group is None:
            continue
        item.add_marker(_group_mark(group))
        if loadgroup and "@" not in item.nodeid:
            from _pytest.nodeid import coerce_node_id  # pytest >= 9
            item._id = coerce_node_id(f"{item.nodeid}@{group}")


def _group_mark(group: str = SERIAL_GROUP):
    import pytest
    return pytest.mark.xdist_group(group)
