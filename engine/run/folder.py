"""Run directories: ``<runs>/<name>-<YYYYmmdd-HHMMSS>[-N]/`` holding config.yaml,
events.jsonl, checkpoints/ and (written by the GUI) report/."""
from __future__ import annotations

import errno
import os
import re
import shutil
import time
from pathlib import Path

from engine import config as config_mod

CONFIG_FILE = "config.yaml"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
NAME_MAX = 80


class RunDirError(RuntimeError):
    """The run directory could not be created (nothing is left behind)."""


def safe_name(name: str) -> str:
    """A run name as a file-name part: letters, digits, '.', '_' and '-' only (no '/', no
    leading dot), at most NAME_MAX characters. The one rule for the engine and the studio."""
    return _SAFE.sub("_", str(name)).strip("_.")[:NAME_MAX].strip("_.") or "run"


def create(cfg, runs_dir: str | Path | None = None) -> Path:
    """A fresh run directory with the configuration saved in it. Raises RunDirError (with
    nothing half-made left behind) when the folder or its config cannot be written."""
    base = Path(runs_dir if runs_dir is not None else cfg.run_dir).expanduser()
    if "\0" in str(base):
        raise RunDirError(f"run_dir {str(base)[:80]!r} holds a NUL character; name a folder without one")
    try:
        base.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as exc:
        raise RunDirError(f"cannot create the runs folder {base}: {exc}") from None
    stem = f"{safe_name(cfg.name)}-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1000):
        d = base / (stem if n == 0 else f"{stem}-{n}")
        try:
            d.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise RunDirError(f"cannot create run directory {d}: {exc}") from None
        try:
            config_mod.save(cfg, d / CONFIG_FILE)
        except OSError as exc:
            shutil.rmtree(d, ignore_errors=True)
            raise RunDirError(f"cannot write {d / CONFIG_FILE}: {exc} (nothing was left behind)") from None
        return d
    raise RunDirError(f"could not create a run directory under {base}")


def read_config(run_dir: str | Path):
    """The configuration a run directory was started with (validated)."""
    d = Path(run_dir)
    p = d / CONFIG_FILE
    if not d.is_dir():
        raise config_mod.ConfigError([("RUN_DIR", f"not a directory: {d}")])
    if not p.is_file():
        raise config_mod.ConfigError([("RUN_DIR", f"{d} holds no {CONFIG_FILE}; is it a run directory?")])
    return config_mod.load(p)


def run_id(run_dir: str | Path) -> str:
    return Path(run_dir).name


# ----------------------------------------------------------------------------- links
# A run folder may come from someone else (an archive, a shared filesystem): its special
# files must never be links, or the engine would truncate, append to or write through to
# whatever they point at.
SPECIAL_FILES = (".lock", "events.jsonl", "checkpoints", CONFIG_FILE, "stderr.log")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class LinkedFileError(OSError):
    """A run or sweep folder's special file is a symbolic link; the message names it."""


def refuse_links(folder: str | Path, names: tuple[str, ...] = SPECIAL_FILES) -> None:
    """Raise LinkedFileError naming every one of ``names`` in ``folder`` that is a link."""
    d = Path(folder)
    links = [n for n in names if (d / n).is_symlink()]
    if links:
        raise LinkedFileError(
            f"refusing run folder {d}: {', '.join(links)} {'is a' if len(links) == 1 else 'are'} symbolic "
            f"link{'' if len(links) == 1 else 's'}; the engine never writes through a link (replace "
            f"{'it' if len(links) == 1 else 'them'} with a real file or folder, or remove {'it' if len(links) == 1 else 'them'})")


def open_nofollow(path: str | Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` that refuses a symbolic link at ``path`` (O_NOFOLLOW where the OS has
    it, a check before opening elsewhere) with a LinkedFileError naming it."""
    p = Path(path)
    if not _NOFOLLOW and p.is_symlink():
        raise LinkedFileError(f"refusing {p}: it is a symbolic link")
    try:
        return os.open(p, flags | _NOFOLLOW, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (p.is_symlink() and not p.exists()):
            raise LinkedFileError(f"refusing {p}: it is a symbolic link") from None
        raise
