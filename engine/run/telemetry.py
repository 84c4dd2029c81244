"""The event emitter: every event goes to stdout (one JSON line, flushed) and to
``<run_dir>/events.jsonl``. stdout carries events only; logs go to stderr.

A failing events.jsonl (full disk) never stops training or the stdout stream: the emitter
warns once on stderr, keeps the unwritten lines and retries on the next event.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import IO

from engine.run.events import EVENTS_FILE, dumps, make_event
from engine.run.folder import open_nofollow
from engine.run.progress import ProgressBar

log = logging.getLogger("engine")

PROGRESS_MIN_INTERVAL_S = 0.5     # at most 2 progress events per second


def setup_logging(level: int = logging.INFO) -> None:
    """Logs on stderr only, so they can never corrupt the event stream."""
    root = logging.getLogger()
    if not any(getattr(h, "_spfde", False) for h in root.handlers):
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        h._spfde = True  # type: ignore[attr-defined]
        root.addHandler(h)
    root.setLevel(level)


class Emitter:
    def __init__(self, run_dir: str | Path | None, stream: IO[str] | None = None,
                 progress_bar: bool | None = None, stream_events: bool | None = None):
        self.stream = stream if stream is not None else sys.stdout
        self.path = Path(run_dir) / EVENTS_FILE if run_dir is not None else None
        self._lock = threading.Lock()
        self._pending: list[str] = []     # lines not yet written to the file
        self._file_warned = False
        self._fh = None
        self._last_progress = 0.0
        self._stream_ok = True
        tty = _isatty(self.stream)
        # A bar only for a person: it goes to stderr, and only when stderr is a terminal (the
        # GUI reads both pipes; `spfde-train run ... > events.jsonl` at a terminal gets one).
        # stdout carries the events alone, whatever the bar does.
        show = progress_bar if progress_bar is not None else _isatty(sys.stderr)
        self.bar = ProgressBar(sys.stderr) if show else None
        # A person at a terminal gets the bar and epoch lines, not screens of JSON; the events
        # still go to events.jsonl, and --events puts them on the terminal too.
        self.stream_events = (not tty) if stream_events is None else stream_events

    # -- events -----------------------------------------------------------------------------
    def emit(self, name: str, **fields) -> dict:
        ev = make_event(name, **fields)
        line = dumps(ev)
        with self._lock:
            self._write_stream(line)
            self._write_file(line)
        if self.bar is not None:
            self.bar.on_event(ev)
        return ev

    def progress(self, epoch: int, batch: int, batches: int, loss_fn=None, images_per_s=None,
                 force: bool = False) -> bool:
        """Emit a progress event if the last one is at least 0.5 s old; ``loss_fn`` is called
        only then (it may synchronise the device). Returns whether one was emitted."""
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_MIN_INTERVAL_S:
            return False
        self._last_progress = now
        loss = loss_fn() if loss_fn is not None else None
        self.emit("progress", epoch=epoch, batch=batch, batches=batches, loss=loss, images_per_s=images_per_s)
        return True

    def _write_stream(self, line: str) -> None:
        if not self._stream_ok or not self.stream_events:
            return
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (BrokenPipeError, ValueError, OSError) as exc:
            # The reader went away: keep training and keep the file (a GUI may reopen it).
            self._stream_ok = False
            log.warning("stdout closed (%s); events continue in %s only", exc, self.path)

    def _write_file(self, line: str) -> None:
        if self.path is None:
            return
        self._pending.append(line)
        try:
            fh = self._fh = self._fh or _open_append(self.path)
            fh.write("\n".join(self._pending) + "\n")
            fh.flush()
            self._pending.clear()
            if self._file_warned:
                log.info("writing %s again", self.path)
                self._file_warned = False
        except OSError as exc:
            # Reopened on the next event: _open_append ends a torn line a partial write left.
            self._close_file()
            if not self._file_warned:
                log.warning("cannot write %s (%s); training continues and events still stream on stdout; "
                            "retrying with the next event", self.path, exc)
                self._file_warned = True

    def close(self) -> None:
        with self._lock:
            if self._pending and self.path is not None:
                self._write_file_flush_only()
            self._close_file()
        if self.bar is not None:
            self.bar.close()

    def _close_file(self) -> None:
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                pass
            self._fh = None

    def _write_file_flush_only(self) -> None:
        try:
            with _open_append(self.path) as fh:
                fh.write("\n".join(self._pending) + "\n")
            self._pending.clear()
        except OSError:
            pass


def _open_append(path):
    """Open events.jsonl for appending, first ending a torn last line (a kill or a full disk
    mid-write) so that the next event, e.g. a resume's run_started, is not glued onto it."""
    # never appended through a link (a shared folder's events.jsonl may point anywhere)
    fh = os.fdopen(open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "a", encoding="utf-8")
    try:
        if fh.tell() > 0:
            with open(path, "rb") as rb:
                rb.seek(-1, 2)
                torn = rb.read(1) != b"\n"
            if torn:
                fh.write("\n")
    except OSError:
        fh.close()
        raise
    return fh


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
