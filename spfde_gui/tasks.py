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
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal


class TaskCancelled(Exception):
    """Raised inside a task that was cancelled (superseded, or the window closing)."""


class TaskState:
    """What a running task sees: its progress/status reporting and its cancel flag."""

    def __init__(self, runner: "TaskRunner", tid: int):
        self._runner = runner
        self.id = tid
        self._cancelled = threading.Event()
        self.thread: threading.Thread | None = None

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
        if interrupt and t is not None and t.is_alive() and t.ident is not None:
            # Raise TaskCancelled in that thread at its next bytecode: pure-Python work stops
            # within microseconds instead of running its stale course (and holding the GIL).
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(t.ident), ctypes.py_object(TaskCancelled))


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

    def __init__(self, parent: QObject | None = None, name: str = "task", interrupt: bool = False):
        super().__init__(parent)
        self.name = name
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
        t = threading.Thread(target=self._run, args=(state, fn, args), name=f"spfde-{self.name}-{state.id}",
                             daemon=True)
        state.thread = t
        with self._lock:
            self._states[state.id] = state
        was_busy = bool(self._live)
        self._live[state.id] = state
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
        with self._lock:
            threads = [s.thread for s in self._states.values() if s.thread is not None]
        for t in threads:
            t.join(max(0.0, end - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def shutdown(self, timeout_s: float = 2.0) -> bool:
        """Cancel everything and join the workers; the runner accepts no new task."""
        self._closed = True
        with self._lock:
            states = list(self._states.values())
        for s in states:
            s.cancel(self.interrupt)
        self._live.clear()
        return self.wait(timeout_s)

    # ---------------------------------------------------------------- worker side
    def _run(self, state: TaskState, fn, args) -> None:
        sig = self._signals
        try:
            try:
                state.check()
                result = fn(state, *args)
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
            with self._lock:
                self._states.pop(state.id, None)

    # ---------------------------------------------------------------- GUI side
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
