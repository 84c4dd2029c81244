"""The studio's background-task helper (spfde_gui.system.tasks): results on the GUI thread,
progress, a superseding task neither waits for nor is overwritten by a stale one, a
pure-Python task that never polls is interrupted, and shutdown leaves no thread behind."""
import os
import threading

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from spfde_gui.system.tasks import TaskCancelled, TaskRunner


def _spin(state, stop: threading.Event, started: threading.Event):
    """Pure-Python busy work that never checks its state (like a slow planner)."""
    started.set()
    n = 0
    while not stop.is_set():
        n += 1
    return ("stale", n)


@pytest.fixture
def runner(qapp):
    r = TaskRunner(None, "test", interrupt=True)
    yield r
    r.shutdown(5.0)


def test_result_and_progress_arrive_on_the_gui_thread(runner, qtbot):
    seen, progress = [], []
    gui = threading.get_ident()
    runner.done.connect(lambda res: seen.append((res, threading.get_ident())))
    runner.progress.connect(lambda f, s: progress.append((f, s)))

    def work(state, x):
        state.set_progress(0.5, "half")
        return x * 2, threading.get_ident()

    runner.start(work, 21)
    qtbot.waitUntil(lambda: bool(seen), timeout=10000)
    (value, worker), where = seen[0]
    assert value == 42 and worker != gui and where == gui
    assert progress == [(0.5, "half")]
    assert not runner.is_busy()


def test_a_newer_task_supersedes_a_stale_one_that_never_polls(runner, qtbot):
    results = []
    runner.done.connect(results.append)
    stop, started = threading.Event(), threading.Event()
    stale = runner.start(_spin, stop, started)
    assert started.wait(10)
    fresh = runner.start(lambda state: "fresh")     # does not wait for the stale one
    qtbot.waitUntil(lambda: results == ["fresh"], timeout=10000)
    assert stale.is_cancelled() and not fresh.is_cancelled()
    # the stale task was interrupted where it was: its thread ends without the stop flag
    assert runner.wait(10.0)
    assert not stop.is_set() and results == ["fresh"]


def test_failures_are_reported_and_cancel_drops_the_result(runner, qtbot):
    failures, results = [], []
    runner.failed.connect(failures.append)
    runner.done.connect(results.append)
    runner.start(lambda state: 1 / 0)
    qtbot.waitUntil(lambda: bool(failures), timeout=10000)
    assert isinstance(failures[0], ZeroDivisionError)
    gate = threading.Event()

    def polls(state):
        gate.wait(10)
        state.check()
        return "too late"
    st = runner.start(polls)
    runner.cancel()
    gate.set()
    assert runner.wait(10.0)
    qtbot.wait(50)
    assert st.is_cancelled() and results == [] and not runner.is_busy()
    with pytest.raises(TaskCancelled):
        st.check()


def test_side_by_side_tasks_are_queued_beyond_the_thread_limit(qapp, qtbot):
    r = TaskRunner(None, "queue", max_threads=2)
    results = []
    r.done.connect(results.append)
    gate = threading.Event()
    for i in range(5):
        r.start(lambda state, i=i: (gate.wait(10), i)[1], supersede=False)
    assert r.running_threads() <= 2
    gate.set()
    qtbot.waitUntil(lambda: len(results) == 5, timeout=10000)
    assert sorted(results) == [0, 1, 2, 3, 4]
    assert r.shutdown(5.0) and r.running_threads() == 0
    with pytest.raises(RuntimeError):
        r.start(lambda state: None)


def test_a_task_that_catches_every_exception_is_still_interrupted(runner, qtbot):
    started = threading.Event()
    finished = threading.Event()

    def stubborn(state):
        started.set()
        try:
            while True:
                try:
                    sum(range(100))
                except Exception:       # what planner code may do: must not swallow the cancel
                    pass
        finally:
            finished.set()

    runner.start(stubborn)
    assert started.wait(10)
    runner.cancel()
    assert finished.wait(10) and runner.wait(10.0)
