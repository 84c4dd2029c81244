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


# ----------------------------------------------------------------------------- torchrun
# A distributed run's launcher locks the folder and starts torchrun; its workers are
# grandchildren and cannot share its lock, so the launcher names itself in the environment.
# A worker trusts that only while the named process is alive and is the lock file's holder;
# otherwise (torchrun started by hand, a stale variable) rank 0 takes the lock itself before
# any rank writes: the other ranks wait for it at the process group's rendezvous.
LOCK_HELD_ENV = "SPFDE_RUN_LOCK_HELD"


def held_for_children(run_dir: str | Path) -> dict[str, str]:
    """The environment entry a launcher holding ``run_dir``'s lock passes to its workers."""
    return {LOCK_HELD_ENV: f"{os.getpid()}:{Path(run_dir).resolve()}"}


def held_by_launcher(run_dir: str | Path) -> bool:
    pid_text, _, path = os.environ.get(LOCK_HELD_ENV, "").partition(":")
    if not pid_text.isdigit() or path != str(Path(run_dir).resolve()):
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
        with open(Path(run_dir) / LOCK_FILE, "rb") as fh:     # read only: never truncates
            return fh.read(32).decode("ascii", "replace").strip() == pid_text
    except (OSError, ValueError):
        return False


def lock_for_worker(run_dir: str | Path, rank: int) -> RunLock | None:
    """The lock a distributed worker must hold: rank 0 takes it unless its launcher holds it;
    other ranks take none. Raises RunLockedError (or LinkedFileError) when it is held elsewhere."""
    if rank != 0 or held_by_launcher(run_dir):
        return None
    return RunLock(run_dir).acquire()
