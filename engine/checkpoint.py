"""Atomic checkpoints of a whole training state.

``<run_dir>/checkpoints/last.pt`` always holds the newest state; periodic checkpoints are
also kept as ``epoch_XXXX.pt`` (the newest ``checkpoint.keep`` of them). Writes go to a
temporary file that is fsync'ed and renamed over the target, so a crash or a full disk
mid-write leaves the previous checkpoint intact.
"""
from __future__ import annotations

import logging
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger("engine.checkpoint")

FORMAT = 1
LAST = "last.pt"
_PERIODIC_RE = re.compile(r"^epoch_(\d{4,})\.pt$")


class CheckpointError(RuntimeError):
    pass


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def rng_state() -> dict[str, Any]:
    st = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    if not st:
        return
    torch.set_rng_state(st["torch"])
    np.random.set_state(st["numpy"])
    random.setstate(st["python"])
    if "cuda" in st and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(st["cuda"])
        except (RuntimeError, IndexError):
            log.warning("CUDA RNG state not restored (different number of devices)")


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save(obj: Any, path: Path) -> int:
    """torch.save to ``path`` atomically; returns the file size. Raises CheckpointError."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        size = tmp.stat().st_size
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        return size
    except Exception as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise CheckpointError(f"could not write checkpoint {path}: {exc}") from exc


def save(run_dir: str | Path, state: dict[str, Any], epoch_tag: int | None = None, keep: int = 2) -> tuple[Path, int]:
    """Write ``state`` as last.pt; with ``epoch_tag`` also as epoch_XXXX.pt (pruned to ``keep``).
    Returns (path written, bytes)."""
    d = checkpoint_dir(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    state = dict(state, format=FORMAT)
    if epoch_tag is None:
        path = d / LAST
        return path, atomic_save(state, path)
    path = d / f"epoch_{epoch_tag:04d}.pt"
    size = atomic_save(state, path)
    _link_last(path, d / LAST, state)
    _prune(d, keep)
    return path, size


def _link_last(src: Path, last: Path, state: dict) -> None:
    # A hard link renamed over last.pt is atomic and costs no second write.
    tmp = last.with_name(last.name + ".tmp")
    try:
        if tmp.exists():
            tmp.unlink()
        os.link(src, tmp)
        os.replace(tmp, last)
    except OSError:
        atomic_save(state, last)


def _prune(d: Path, keep: int) -> None:
    periodic = sorted((int(m.group(1)), p) for p in d.iterdir() if (m := _PERIODIC_RE.match(p.name)))
    for _, p in periodic[:max(0, len(periodic) - keep)]:
        try:
            p.unlink()
        except OSError as exc:
            log.warning("could not remove old checkpoint %s: %s", p, exc)


def load(run_dir_or_file: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    p = Path(run_dir_or_file)
    if p.is_dir():
        p = checkpoint_dir(p) / LAST
    if not p.is_file():
        raise CheckpointError(f"no checkpoint at {p} (the run stopped before its first checkpoint?)")
    try:
        state = torch.load(p, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"checkpoint {p} cannot be read: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {p} has an unknown format (expected format {FORMAT})")
    return state
