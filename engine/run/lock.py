"""One engine per run folder: an exclusive advisory lock on ``<run_dir>/.lock``.

Two engines on one folder would interleave events.jsonl and overwrite each other's
checkpoints. The lock is an OS lock (flock / msvcrt), so it dies with its process: a
SIGKILLed engine never leaves a stale lock behind. The file holds the holder's pid, so the
refusal can name it.
"""
from __future__ import annotations

import os
from pathlib import Path

from engine.run.folder import open_nofollow, refuse_links

LOCK_FILE = ".lock"


class RunLockedError(RuntimeError):
    """Another live process holds the run folder."""


class RunLock:
    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        # a linked .lock would be truncated wherever it points: refuse links first
        refuse_links(self.path.parent)
        fd = open_nofollow(self.path, os.O_RDWR | os.O_CREAT)
        try:
            _lock(fd)
        except OSError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"engine pid {holder}" if holder else "another engine"
            raise RunLockedError(f"run folder {self.path.parent} is in use by {who} (lock {self.path}); "
                                 "stop that engine first, or wait for it to finish") from None
        try:                             # the pid only informs a refused engine
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            os.close(self._fd)        # closing drops the lock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


try:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except ImportError:                      # Windows
    import msvcrt

    def _lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]  # Windows only
