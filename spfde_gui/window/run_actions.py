"""Renaming and deleting a run folder from the Runs table. No Qt: the panel asks the user
first and shows the message of a refusal.

A run an engine is writing must not move or vanish under it: the engine holds the folder's
``.lock`` for as long as it runs (engine.run.lock, an OS lock that dies with its process),
so trying that lock tells a running run from a finished one, whichever process runs it.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from engine.run.folder import LinkedFileError
from engine.run.lock import RunLock, RunLockedError

_BAD_NAME = re.compile(r"[/\\\x00]")


class RunActionError(ValueError):
    """The rename or delete was refused; the message says why."""


def _check_folder(run_dir: Path, runs_dir: Path) -> Path:
    p = Path(run_dir)
    if p.is_symlink():
        raise RunActionError(f"{p} is a symbolic link; remove the link by hand if you mean to")
    p = p.resolve()
    if p.parent != Path(runs_dir).resolve():
        raise RunActionError(f"{p} is not a run folder of {runs_dir}")
    if not ((p / "events.jsonl").is_file() or (p / "config.yaml").is_file()):
        raise RunActionError(f"{p} holds neither events.jsonl nor config.yaml: not a run folder")
    return p


def check_not_running(run_dir: Path) -> None:
    """RunActionError when an engine holds the run folder's lock."""
    try:
        with RunLock(run_dir):
            pass
    except RunLockedError as exc:
        raise RunActionError(f"the run is still running: {exc}") from None
    except (LinkedFileError, OSError) as exc:
        raise RunActionError(f"cannot check whether {run_dir} is running: {exc}") from None


def rename_run(run_dir: Path, runs_dir: Path, new_name: str) -> Path:
    """Rename the folder to ``new_name`` in the same runs folder; the new path."""
    p = _check_folder(run_dir, runs_dir)
    name = new_name.strip()
    if not name or name in (".", "..") or name.startswith(".") or _BAD_NAME.search(name):
        raise RunActionError(f"{new_name!r} is not a usable folder name (no slash, no leading dot, not empty)")
    if len(name.encode()) > 200:
        raise RunActionError(f"{name[:40]}... is too long for a folder name (at most 200 bytes)")
    target = p.parent / name
    if target.exists() or target.is_symlink():
        raise RunActionError(f"{target} already exists")
    check_not_running(p)
    p.rename(target)
    return target


def delete_run(run_dir: Path, runs_dir: Path) -> None:
    """Delete the run folder with its events and checkpoints."""
    p = _check_folder(run_dir, runs_dir)
    check_not_running(p)
    shutil.rmtree(p)
