"""Fixtures shared by the studio's test modules."""
from __future__ import annotations

import os
import tempfile

import pytest
import suite_time  # tests/ is on sys.path (rootdir conftest)

# One thread per test process, before any test module imports torch (tests/suite_time.py).
_THREADS = suite_time.pin_threads()
# Runs record their speed for wall-time estimates (engine.cost.wall_time): into a folder of
# this session, never the user's cache, and no test reads a rate measured outside it.
# (xdist workers inherit the controller's folder.)
if not os.path.basename(os.environ.get("SPFDE_CACHE_DIR", "")).startswith("spfde-test-cache-"):
    os.environ["SPFDE_CACHE_DIR"] = tempfile.mkdtemp(prefix="spfde-test-cache-")
_CLOCK = suite_time.Clock()


def pytest_xdist_auto_num_workers(config):
    return suite_time.auto_workers()


@pytest.hookimpl(trylast=True)        # after deselection (-m, -k) and xdist's own suffixing
def pytest_collection_modifyitems(config, items):
    suite_time.join_serial_group(config, items)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return                   # only the controller reports the session's time
    workers = getattr(config.option, "numprocesses", None)    # set by xdist's -n (resolved from auto)
    terminalreporter.write_line(_CLOCK.summary(workers or None, _THREADS))


@pytest.fixture(scope="session")
def slurm_cluster():
    """The one-node Slurm of scripts/slurm-local, started once per session (joined when it
    already runs, and left running for the next session: ``scripts/slurm-local stop``);
    the test skips, saying why, where Slurm is not installed or this is not root."""
    import slurm_local
    reason = slurm_local.missing_reason()
    if reason:
        pytest.skip(reason)
    try:
        conf = slurm_local.start()
    except RuntimeError as exc:
        if os.environ.get("SPFDE_REQUIRE_SLURM"):     # .ci/run installed Slurm: it must come up
            raise
        pytest.skip(f"the local Slurm did not start: {exc}")
    os.environ["SLURM_CONF"] = conf
    return conf


@pytest.fixture
def studio(qtbot, tmp_path):
    """A shown MainWindow on an empty runs folder that never asks on close and leaves no
    engine behind (the window fixtures of the studio tests build on it)."""
    from spfde_gui.window.main_window import MainWindow
    w = MainWindow(runs_dir=tmp_path / "runs")
    w.close_policy = "kill"       # never a modal question, never an orphan engine
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    yield w
    if w.controller.is_running():
        w.controller.kill()
        w.controller.wait_finished(5000)
    w.close()
