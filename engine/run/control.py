"""Commands to a running engine: JSON lines on stdin ({"cmd": "stop"}, {"cmd": "checkpoint"},
or the bare words) and SIGTERM/SIGINT (a graceful stop).

A daemon thread reads stdin and raises thread-safe flags; the trainer polls them after each
batch, so a command costs nothing on the hot path. EOF on stdin does not stop the run (a
launcher that closes its end of the pipe, or ``< /dev/null``, must not end training).
"""
from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from typing import IO

from engine.run.events import COMMANDS

log = logging.getLogger("engine.run.control")

# A command is a short flat object: longer lines are dropped unread, deeper JSON is not parsed
# (json.loads recurses, and a deep enough line would kill the reader with RecursionError).
MAX_LINE = 4096
MAX_DEPTH = 4


def _depth(text: str) -> int:
    """Nesting depth of brackets, an upper bound of the JSON depth (strings not excluded)."""
    depth = top = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            top = max(top, depth)
        elif ch in "]}":
            depth -= 1
    return top


def parse_command(line: str | bytes) -> str | None:
    """The command named by one stdin line, or None (blank, unknown, overlong, too deeply
    nested or undecodable lines are ignored)."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    text = line.strip()
    if not text or len(text) > MAX_LINE:
        return None
    if text.startswith("{"):
        if _depth(text) > MAX_DEPTH:
            return None
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):
            return None
        cmd = obj.get("cmd") if isinstance(obj, dict) else None
    else:
        cmd = text.lower()
    return cmd if isinstance(cmd, str) and cmd in COMMANDS else None


def _lines(stream, limit: int = MAX_LINE):
    """Lines of a text or binary stream, each at most ``limit`` + 1 characters: the rest of
    an overlong line is read and dropped in bounded pieces, never held whole in memory."""
    src = getattr(stream, "buffer", stream)      # sys.stdin: read bytes, decode per line
    while True:
        piece = src.readline(limit + 1)
        if not piece:
            return
        if len(piece) > limit and not piece.endswith(b"\n" if isinstance(piece, bytes) else "\n"):
            while piece and not piece.endswith(b"\n" if isinstance(piece, bytes) else "\n"):
                piece = src.readline(limit + 1)
            log.warning("ignoring an overlong line on stdin (more than %d characters)", limit)
            continue
        yield piece


class CommandChannel:
    def __init__(self):
        self.stop_requested = threading.Event()
        self._checkpoint = threading.Event()
        self.stop_reason = ""
        self._thread: threading.Thread | None = None
        self._old_handlers: dict[int, object] = {}

    def wait_stdin_closed(self, timeout: float | None = None) -> bool:
        """Wait until the stdin reader has seen the end of its stream; False on timeout."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    # -- producers -----------------------------------------------------------------------
    def request(self, cmd: str, source: str = "stdin") -> None:
        if cmd == "stop":
            if not self.stop_requested.is_set():
                log.info("stop requested (%s): finishing the current batch, then checkpointing", source)
            self.stop_reason = source
            self.stop_requested.set()
        elif cmd == "checkpoint":
            log.info("checkpoint requested (%s)", source)
            self._checkpoint.set()

    def start_stdin(self, stream: IO[str] | None = None, stop_on_eof: bool = False) -> None:
        """Read commands from ``stream`` (stdin) in a daemon thread. With ``stop_on_eof``, the end
        of the stream is a graceful stop: a supervisor (the studio) that dies closes the pipe,
        and the engine checkpoints and exits instead of training on unwatched."""
        stream = stream if stream is not None else sys.stdin
        if stream is None:
            return

        def reader():
            try:
                for line in _lines(stream):
                    try:                 # one bad line must never end the reader
                        cmd = parse_command(line)
                        if cmd is None:
                            if line.strip():
                                log.warning("ignoring unknown command on stdin: %r (expected %s)",
                                            line.strip()[:80], ", ".join(f'{{"cmd": "{c}"}}' for c in COMMANDS))
                            continue
                        self.request(cmd)
                    except Exception:  # noqa: BLE001
                        log.warning("ignoring an unreadable line on stdin", exc_info=True)
            except Exception:  # noqa: BLE001 - the stream itself failed: treat as its end
                pass
            if stop_on_eof:
                log.warning("stdin closed (the supervising process is gone): stopping with a checkpoint")
                self.request("stop", source="eof")
            # Otherwise EOF keeps training (e.g. started with </dev/null); signals still stop it.

        self._thread = threading.Thread(target=reader, name="stdin-commands", daemon=True)
        self._thread.start()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT become a graceful stop; a second SIGINT interrupts at once."""
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum, frame):
            name = signal.Signals(signum).name
            if signum == signal.SIGINT and self.stop_requested.is_set():
                raise KeyboardInterrupt
            self.request("stop", source=name)

        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old_handlers[sig] = signal.signal(sig, handler)
            except (ValueError, OSError):
                pass

    def restore_signal_handlers(self) -> None:
        for sig, old in self._old_handlers.items():
            try:
                signal.signal(sig, old)  # type: ignore[arg-type]  # what signal.getsignal gave
            except (ValueError, OSError, TypeError):
                pass
        self._old_handlers.clear()

    # -- consumer ------------------------------------------------------------------------
    @property
    def should_stop(self) -> bool:
        return self.stop_requested.is_set()

    def take_checkpoint_request(self) -> bool:
        """True once per checkpoint command (the flag is cleared)."""
        if self._checkpoint.is_set():
            self._checkpoint.clear()
            return True
        return False
