"""A tracker behind a bounded queue and its own worker thread, so that a slow or dead
tracking server never stalls the training loop.

``put`` only appends under a lock (when the queue is full the oldest record is dropped and
counted); the worker starts the tracker, then logs record after record. The first
exception disables the tracker for the rest of the run: its queue is emptied and one
warning (``warning()``) says why. ``close`` enqueues nothing more and waits for the worker
at most until a deadline; a worker still busy then (a server that does not answer) is
abandoned, a daemon thread that cannot keep the process alive.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from engine.tracking.records import Record
from engine.tracking.secrets import scrub
from engine.tracking.trackers import Tracker

CAPACITY = 10_000        # records; an epoch makes a few, so only a stuck tracker fills it


class BackgroundTracker:
    def __init__(self, tracker: Tracker, resume: dict | None = None,
                 on_started: Callable[[str, dict], None] | None = None, capacity: int = CAPACITY):
        self.tracker = tracker
        self.name = tracker.name
        self.capacity = capacity
        self.dropped = 0
        self.failure: str | None = None
        self._resume = resume
        self._on_started = on_started
        self._q: deque[Record] = deque()
        self._cv = threading.Condition()
        self._closing = False
        self._reported = False
        self._timed_out = False
        self._thread = threading.Thread(target=self._work, daemon=True, name=f"tracker-{self.name}")
        self._thread.start()

    # -- the training thread ---------------------------------------------------------------
    def put(self, rec: Record) -> None:
        with self._cv:
            if self.failure is not None or self._closing:
                return
            if len(self._q) >= self.capacity:
                self._q.popleft()
                self.dropped += 1
            self._q.append(rec)
            self._cv.notify()

    def close(self, deadline: float) -> bool:
        """No more records; wait for the queue to drain until ``deadline`` (time.monotonic).
        True when the worker finished."""
        with self._cv:
            self._closing = True
            self._cv.notify()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._timed_out = self._thread.is_alive()
        return not self._timed_out

    def warning(self, timeout_s: float | None = None) -> str | None:
        """What went wrong, once (None when all is well or already said)."""
        if self._reported:
            return None
        msg = None
        if self.failure is not None:
            msg = f"{self.name} tracker failed and is off for the rest of the run (training goes on): {self.failure}"
        elif self._timed_out:
            with self._cv:
                left = len(self._q)
            msg = (f"{self.name} tracker did not finish sending within {timeout_s or 0:g} s at the end of the run "
                   f"(server unreachable or slow?); {left} record(s) not sent")
        elif self.dropped and self._closing:
            msg = f"{self.name} tracker could not keep up: {self.dropped} record(s) dropped (queue full)"
        if msg is not None:
            self._reported = True
        return msg

    # -- the worker ------------------------------------------------------------------------
    def _work(self) -> None:
        try:
            ids = self.tracker.start(self._resume)
            if self._on_started is not None:
                self._on_started(self.name, ids)
        except BaseException as exc:  # noqa: BLE001 - any failure turns the tracker off, never the run
            self._fail(exc)
            return
        while True:
            with self._cv:
                while not self._q and not self._closing:
                    self._cv.wait()
                if not self._q:
                    return
                rec = self._q.popleft()
            try:
                self.tracker.log(rec)
            except BaseException as exc:  # noqa: BLE001
                self._fail(exc)
                return

    def _fail(self, exc: BaseException) -> None:
        text = str(exc).strip().splitlines()
        detail = f"{type(exc).__name__}: {text[0] if text else ''}"[:400]
        with self._cv:
            self.failure = scrub(detail)
            self._q.clear()


def wait_all(trackers: list[BackgroundTracker], timeout_s: float) -> None:
    """Close every tracker against one shared deadline (they drain in parallel)."""
    deadline = time.monotonic() + timeout_s
    for t in trackers:
        t.close(deadline)
