"""Background work for the studio: one helper for every task that must not hold the window.

Modelled on Orange3's ``widgets/utils/concurrent.py`` (``TaskState`` + ``ConcurrentMixin``):
a task is a plain function ``fn(state, *args)`` run on a worker thread; ``state`` lets it
report progress and status and ask whether it was cancelled; its result or exception comes
back on the GUI thread through Qt signals (queued, since the runner lives on the GUI thread).

``TaskRunner.start`` with ``supersede=True`` (the default) cancels the task the runner is
running and starts the new one at once on its own thread, so a stale task never delays a
newer one, and its late result is dropped. Cancelling a task that is running raises
``TaskCancelled`` inside it: at its next ``state.check()``, or, for pure-Python work that
never polls (the planner), asynchronously at its next bytecode (``interrupt=True``).
``shutdown`` cancels everything and joins the threads when the window closes.
"""
from __future__ import annotations

import ctypes
import itertools
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal


class TaskCancelled(BaseException):
    """Raised inside a task that was cancelled (superseded, or the window closing). A
    BaseException, like KeyboardInterrupt, so that the task's own ``except Exception``
    clauses (the planner's, say) do not swallow it and compute on."""


class TaskState:
    """What a running task sees: its progress/status reporting and its cancel flag."""

    def __init__(self, runner: TaskRunner, tid: int):
        self._runner = runner
        self.id = tid
        self._cancelled = threading.Event()
        self.thread: _Worker | None = None
        self.running = False        # fn is executing on self.thread (what an interrupt may hit)

    def is_cancelled(self) -> bool:
        return self._cancelled.is_set()

    def check(self) -> None:
        """Raise TaskCancelled if the task was cancelled: call between steps of long work."""
        if self._cancelled.is_set():
            raise TaskCancelled()

    def set_progress(self, fraction: float, status: str = "") -> None:
        if not self._cancelled.is_set():
            self._runner._signals.progress.emit(self.id, float(fraction), status)

    def cancel(self, interrupt: bool = False) -> None:
        self._cancelled.set()
        t = self.thread
        if interrupt and self.running and t is not None and t.is_alive() and t.ident is not None:
            # Raise TaskCancelled in that thread at its next bytecode: pure-Python work stops
            # within microseconds instead of running its stale course (and holding the GIL).
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(t.ident), ctypes.py_object(TaskCancelled))


class _Worker(QThread):
    """A QThread (so Qt code in a task, e.g. QTextDocument laying out the PDF, finds an event
    dispatcher) with the little of threading.Thread's interface the runner uses."""

    def __init__(self, target, args, name: str):
        super().__init__()
        self.setObjectName(name)
        self._target, self._args = target, args
        self.ident: int | None = None

    def run(self) -> None:
        self.ident = threading.get_ident()
        self._target(*self._args)

    def is_alive(self) -> bool:
        try:
            return self.isRunning()
        except RuntimeError:        # the C++ object is gone: the thread ended long ago
            return False

    def join(self, timeout_s: float) -> None:
        # Polled with time.sleep, which releases the GIL: QThread.wait() may keep it, and a
        # task thread waiting for the GIL (e.g. inside json.loads) then never finishes, so
        # the wait ran past its timeout (a hang seen once in the suite).
        import time
        end = time.monotonic() + max(0.0, timeout_s)
        while self.is_alive() and time.monotonic() < end:
            time.sleep(0.002)


class _Signals(QObject):
    progress = Signal(int, float, str)   # task id, fraction 0..1, status text
    finished = Signal(int, object)       # task id, result
    failed = Signal(int, object)         # task id, exception
    cancelled = Signal(int)              # task id


class TaskRunner(QObject):
    """Runs tasks on worker threads and reports them on the GUI thread.

    Signals carry the outcome of the tasks not superseded or cancelled (a superseded task
    is silent): ``progress(fraction, status)``, ``done(result)``, ``failed(exception)``.
    ``start(..., supersede=False)`` runs tasks side by side (each reports its result)."""

    progress = Signal(float, str)
    done = Signal(object)
    failed = Signal(object)
    busy_changed = Signal(bool)

    _ids = itertools.count(1)

    def __init__(self, parent: QObject | None = None, name: str = "task", interrupt: bool = False,
                 max_threads: int | None = None):
        super().__init__(parent)
        self.name = name
        # side-by-side tasks beyond max_threads wait their turn (a folder of 200 runs to load);
        # a superseding task never waits: its predecessors are cancelled
        self.max_threads = max_threads
        self._pending: deque = deque()
        self._workers = 0
        self._threads: set[_Worker] = set()   # alive workers, owned here until they end
        self.interrupt = interrupt          # cancel running tasks by raising TaskCancelled in them
        self._signals = _Signals()
        self._signals.progress.connect(self._on_progress)
        self._signals.finished.connect(self._on_finished)
        self._signals.failed.connect(self._on_failed)
        self._signals.cancelled.connect(self._on_cancelled)
        self._live: dict[int, TaskState] = {}      # tasks whose outcome will be reported
        self._states: dict[int, TaskState] = {}     # every task whose thread has not ended
        self._lock = threading.Lock()
        self._closed = False

    # ---------------------------------------------------------------- control
    def start(self, fn: Callable[..., Any], *args, supersede: bool = True) -> TaskState:
        """Run ``fn(state, *args)`` on a new worker thread; the previous task is cancelled
        first when ``supersede`` (its result, if it still comes, is dropped)."""
        if self._closed:
            raise RuntimeError(f"{self.name} runner is shut down")
        if supersede:
            for old in list(self._live.values()):
                old.cancel(self.interrupt)
            self._live.clear()
        state = TaskState(self, next(self._ids))
        was_busy = bool(self._live)
        self._live[state.id] = state
        with self._lock:
            self._states[state.id] = state
            if supersede:
                self._pending.clear()          # their states are cancelled above
            if self.max_threads is not None and self._workers >= self.max_threads:
                self._pending.append((state, fn, args))
                t = None
            else:
                self._workers += 1
                t = _Worker(self._work, (state, fn, args), f"spfde-{self.name}-{state.id}")
                state.thread = t
                self._threads.add(t)
                t.finished.connect(self._reap)     # queued: runs on the GUI thread
        if t is not None:
            t.start()
        if not was_busy:
            self.busy_changed.emit(True)
        return state

    def cancel(self) -> None:
        """Cancel the running tasks: nothing they return will be reported."""
        live, self._live = list(self._live.values()), {}
        for s in live:
            s.cancel(self.interrupt)
        if live:
            self.busy_changed.emit(False)

    def is_busy(self) -> bool:
        return bool(self._live)

    def running_threads(self) -> int:
        with self._lock:
            return sum(1 for s in self._states.values() if s.thread is not None and s.thread.is_alive())

    def wait(self, timeout_s: float = 5.0) -> bool:
        """Join every worker thread (at most ``timeout_s`` in all); True if none is left."""
        import time
        end = time.monotonic() + timeout_s
        while True:
            with self._lock:
                threads = [s.thread for s in self._states.values() if s.thread is not None and s.thread.is_alive()]
            if not threads:
                return True
            for t in threads:
                t.join(max(0.0, end - time.monotonic()))
            if time.monotonic() >= end:
                with self._lock:
                    return not any(s.thread is not None and s.thread.is_alive() for s in self._states.values())

    def shutdown(self, timeout_s: float = 2.0) -> bool:
        """Cancel everything and join the workers; the runner accepts no new task."""
        self._closed = True
        with self._lock:
            states = list(self._states.values())
            self._pending.clear()
        for s in states:
            s.cancel(self.interrupt)
        self._live.clear()
        return self.wait(timeout_s)

    # ---------------------------------------------------------------- worker side
    def _work(self, state: TaskState, fn, args) -> None:
        """One worker thread: its task, then queued ones while there are any."""
        me = state.thread
        while True:
            self._run(state, fn, args)
            with self._lock:
                if not self._pending:
                    self._workers -= 1
                    return
                state, fn, args = self._pending.popleft()
                state.thread = me

    def _run(self, state: TaskState, fn, args) -> None:
        sig = self._signals
        try:
            try:
                state.running = True
                state.check()
                result = fn(state, *args)
                state.running = False
            except TaskCancelled:
                sig.cancelled.emit(state.id)
            except BaseException as exc:      # noqa: BLE001 - reported on the GUI thread
                if state.is_cancelled():
                    sig.cancelled.emit(state.id)
                else:
                    sig.failed.emit(state.id, exc)
            else:
                if state.is_cancelled():
                    sig.cancelled.emit(state.id)
                else:
                    sig.finished.emit(state.id, result)
        except TaskCancelled:
            # an asynchronous cancel that landed after fn returned: nothing to report
            pass
        finally:
            state.running = False
            with self._lock:
                self._states.pop(state.id, None)

    # ---------------------------------------------------------------- GUI side
    def _reap(self) -> None:
        # drop the references of ended workers here, never from inside the thread itself
        self._threads = {t for t in self._threads if not t.isFinished()}

    def _take(self, tid: int) -> bool:
        """True (and forget it) if task ``tid`` is still to be reported."""
        if self._live.pop(tid, None) is None:
            return False
        if not self._live:
            self.busy_changed.emit(False)
        return True

    def _on_progress(self, tid: int, fraction: float, status: str) -> None:
        if tid in self._live:
            self.progress.emit(fraction, status)

    def _on_finished(self, tid: int, result) -> None:
        if self._take(tid):
            self.done.emit(result)

    def _on_failed(self, tid: int, exc) -> None:
        if self._take(tid):
            self.failed.emit(exc)

    def _on_cancelled(self, tid: int) -> None:
        self._take(tid)       # cancelled from inside (the task's own state.cancel)
