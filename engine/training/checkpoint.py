"""Atomic, verified checkpoints of a whole training state.

``<run_dir>/checkpoints/last.pt`` always holds the newest state; periodic checkpoints are
also kept as ``epoch_XXXX.pt`` (the newest ``checkpoint.keep`` of them). Every name is its
own file (no hard links), so one corrupted file never damages another.

A file is a one-line header ``SPFDE-CKPT <format> <sha256> <length>`` followed by the
``torch.save`` payload. The checksum is verified before anything is unpickled, and the
payload is read with ``torch.load(weights_only=True)``: a checkpoint can hold tensors,
numbers, strings, bools, None, lists, tuples and dicts only, never code. Writes go to a
uniquely named temporary file that is fsync'ed and renamed over the target, so a crash or a
full disk mid-write leaves the previous checkpoint intact.
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import random
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.run.folder import LinkedFileError, open_nofollow

log = logging.getLogger("engine.training.checkpoint")

FORMAT = 2
MAGIC = b"SPFDE-CKPT"
LAST = "last.pt"
_PERIODIC_RE = re.compile(r"^epoch_(\d{4,})\.pt$")
_HEADER_MAX = 200
# Leaf types a checkpoint may hold (what weights_only loading accepts).
_PLAIN = (str, bytes, int, float, bool, type(None), torch.Tensor, torch.dtype, torch.device, torch.Size)


class CheckpointError(RuntimeError):
    pass


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


# ----------------------------------------------------------------------------- RNG states
# Stored as tensors and plain lists so that weights-only loading can read them back.

def rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    st = {"torch": torch.get_rng_state(),
          "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                    "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
          "python": {"version": int(version), "internal": list(internal), "gauss": gauss}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        st["cuda"] = list(torch.cuda.get_rng_state_all())
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    if not st:
        return
    torch.set_rng_state(st["torch"])
    n = st["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), int(n["pos"]),
                         int(n["has_gauss"]), float(n["cached_gaussian"])))
    p = st["python"]
    random.setstate((int(p["version"]), tuple(int(x) for x in p["internal"]), p["gauss"]))
    if "cuda" in st and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(st["cuda"])
        except (RuntimeError, IndexError):
            log.warning("CUDA RNG state not restored (different number of devices)")


# ----------------------------------------------------------------------------- writing

def check_plain(obj: Any, where: str = "state") -> None:
    """Raise CheckpointError naming the first value a weights-only load could not read back
    (component state must be tensors, numbers, strings, bools, None, lists, tuples, dicts)."""
    stack = [(obj, where)]
    while stack:
        o, w = stack.pop()
        if isinstance(o, dict):
            for k, v in o.items():
                if not isinstance(k, (str, int)):
                    raise CheckpointError(f"checkpoint {w} has a key of type {type(k).__name__} ({k!r}); "
                                          "keys must be strings or integers")
                stack.append((v, f"{w}[{k!r}]"))
        elif isinstance(o, (list, tuple)):
            stack.extend((v, f"{w}[{i}]") for i, v in enumerate(o))
        elif not isinstance(o, _PLAIN):
            raise CheckpointError(
                f"checkpoint {w} holds a {type(o).__module__}.{type(o).__name__}; checkpoints (and component "
                "state_dict()s) may hold only tensors, numbers, strings, bools, None, lists, tuples and dicts, "
                "so that they load with weights_only=True")


def serialize(state: dict[str, Any]) -> list:
    """One checkpoint file as [header line, torch.save payload] (not joined: no extra copy)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getbuffer()
    digest = hashlib.sha256(payload).hexdigest()
    return [b"%s %d %s %d\n" % (MAGIC, FORMAT, digest.encode(), len(payload)), payload]


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


def remove_temp_files(run_dir: str | Path) -> int:
    """Remove this engine's leftover temporary checkpoint files (``.<name>.*.tmp`` from a write
    that failed or was killed) to free space; returns how many were removed."""
    n = 0
    for p in checkpoint_dir(run_dir).glob(".*.tmp"):
        try:
            if p.is_file() and not p.is_symlink():
                p.unlink()
                n += 1
        except OSError:
            pass
    return n


def atomic_write(data, path: Path) -> int:
    """Write ``data`` (bytes, or a list of byte chunks) to ``path`` atomically through a
    uniquely named temporary file (two writers never share one); returns the size. Raises
    CheckpointError."""
    parts = data if isinstance(data, list) else [data]
    tmp = None
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        tmp = Path(tmp_name)
        with os.fdopen(fd, "wb") as fh:
            for part in parts:
                fh.write(part)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        return sum(len(p) for p in parts)
    except Exception as exc:
        if tmp is not None:
            try:
                tmp.unlink()
            except OSError:
                pass
        raise CheckpointError(f"could not write checkpoint {path}: {exc}") from exc


def atomic_save(obj: Any, path: Path) -> int:
    """Serialise ``obj`` to ``path`` atomically; returns the file size. Raises CheckpointError."""
    return atomic_write(_checked_bytes(obj, str(path)), path)


def _checked_bytes(obj: Any, where: str):
    """``obj`` checked for plain data and serialised; any failure is a CheckpointError naming ``where``."""
    try:
        check_plain(obj)
        return serialize(obj)
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"could not write checkpoint {where}: {exc}") from exc


def save(run_dir: str | Path, state: dict[str, Any], epoch_tag: int | None = None, keep: int = 2) -> tuple[Path, int]:
    """Write ``state`` as last.pt; with ``epoch_tag`` also as epoch_XXXX.pt (pruned to ``keep``).
    Returns (path written, bytes)."""
    d = checkpoint_dir(run_dir)
    if d.is_symlink():       # a linked checkpoints/ would be written through
        raise CheckpointError(f"refusing to write checkpoints: {d} is a symbolic link (replace it with a real folder)")
    d.mkdir(parents=True, exist_ok=True)
    state = dict(state, format=FORMAT)
    data = _checked_bytes(state, f"in {d}")
    if epoch_tag is None:
        path = d / LAST
        return path, atomic_write(data, path)
    path = d / f"epoch_{epoch_tag:04d}.pt"
    size = atomic_write(data, path)
    _prune(d, keep)        # before the second write: on a nearly full disk it frees the room
    # A second, separate file rather than a hard link: one corruption must not hit both.
    try:
        atomic_write(data, d / LAST)
    except CheckpointError:
        # last.pt is now older than the epoch file just written: remove it, so that resume
        # takes the newest state (the epoch file) instead of a stale one.
        try:
            (d / LAST).unlink()
        except OSError:
            pass
        raise
    return path, size


def _prune(d: Path, keep: int) -> None:
    for p in periodic_files(d)[keep:]:
        try:
            p.unlink()
        except OSError as exc:
            log.warning("could not remove old checkpoint %s: %s", p, exc)


def periodic_files(d: Path) -> list[Path]:
    """The epoch_XXXX.pt files of a checkpoint folder, newest first."""
    if not d.is_dir():
        return []
    found = sorted(((int(m.group(1)), p) for p in d.iterdir() if (m := _PERIODIC_RE.match(p.name))), reverse=True)
    return [p for _, p in found]


def remove_stale_temps(run_dir: str | Path) -> int:
    """Delete temporary files a killed writer left (call with the run folder locked)."""
    n = 0
    d = checkpoint_dir(run_dir)
    if d.is_dir():
        for p in d.glob(".*.tmp"):
            try:
                p.unlink()
                n += 1
            except OSError:
                pass
    return n


# ----------------------------------------------------------------------------- reading

def _read_payload(path: Path) -> tuple[str, bytes]:
    """The payload of one checkpoint file, checked before it is read: a regular file (never a
    link, device or FIFO, which would hang or never end) whose size matches its header."""
    try:   # O_NONBLOCK: opening a FIFO must not wait for a writer
        fd = open_nofollow(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except LinkedFileError:
        raise CheckpointError(f"checkpoint {path} refused: it is a symbolic link") from None
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc}") from exc
    size = os.fstat(fd)
    if not stat.S_ISREG(size.st_mode):
        os.close(fd)
        raise CheckpointError(f"checkpoint {path} refused: not a regular file (a device, FIFO or folder)")
    with os.fdopen(fd, "rb") as fh:
        try:
            header = fh.readline(_HEADER_MAX)
            digest, length = _parse_header(path, header)
            if length != size.st_size - len(header):
                raise CheckpointError(f"checkpoint {path} is corrupt: {size.st_size - len(header)} bytes of payload, "
                                      f"the header says {length} (truncated?)")
            return digest, fh.read(length)
        except OSError as exc:
            raise CheckpointError(f"checkpoint {path} cannot be read: {exc}") from exc


def _parse_header(path: Path, header: bytes) -> tuple[str, int]:
    parts = header.split()
    if len(parts) != 4 or parts[0] != MAGIC:
        what = "is empty" if not header else "has no SpFDE checkpoint header (an older engine's file, or not a checkpoint)"
        raise CheckpointError(f"checkpoint {path} {what}")
    try:
        fmt, digest, length = int(parts[1]), parts[2].decode("ascii"), int(parts[3])
    except (ValueError, UnicodeDecodeError):
        raise CheckpointError(f"checkpoint {path} is corrupt: unreadable header") from None
    if fmt != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {fmt}; this engine reads format {FORMAT}")
    return digest, length


def read_verified(path: Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Load one checkpoint file: header, checksum, then a weights-only unpickle."""
    digest, payload = _read_payload(Path(path))
    if hashlib.sha256(payload).hexdigest() != digest:
        raise CheckpointError(f"checkpoint {path} is corrupt: its SHA-256 checksum does not match")
    try:
        state = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"checkpoint {path} refused: it holds something other than tensors, numbers, "
                              f"strings, lists and dicts, which weights-only loading does not run ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} has an unknown format (expected format {FORMAT})")
    return state


def candidates(run_dir: str | Path) -> list[Path]:
    """The checkpoints a resume may use, best first: last.pt, then epoch files newest first."""
    d = checkpoint_dir(run_dir)
    return [d / LAST] + periodic_files(d)


def load_newest(run_dir: str | Path, map_location: Any = "cpu") -> tuple[dict[str, Any], Path, list[str]]:
    """The newest checkpoint that verifies: (state, its path, why each newer one was skipped).
    Raises CheckpointError listing every failure when none does."""
    problems: list[str] = []
    for p in candidates(run_dir):
        if not p.exists():
            if p.name == LAST:
                problems.append(f"{p} is missing")
            continue
        try:
            return read_verified(p, map_location), p, problems
        except CheckpointError as exc:
            problems.append(str(exc))
            log.warning("%s", exc)
    raise CheckpointError(f"no usable checkpoint in {checkpoint_dir(run_dir)}: " + "; ".join(problems or ["none written"]))


def has_any(run_dir: str | Path) -> bool:
    """Whether any checkpoint file (valid or not) exists in the run folder."""
    return any(p.exists() for p in candidates(run_dir))


def load(run_dir_or_file: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """A verified checkpoint: a file as given, or a run folder's newest one that verifies."""
    p = Path(run_dir_or_file)
    if p.is_dir():
        if not has_any(p):
            raise CheckpointError(f"no checkpoint in {checkpoint_dir(p)} (the run stopped before its first checkpoint?)")
        return load_newest(p, map_location)[0]
    if not p.is_file():
        raise CheckpointError(f"no checkpoint at {p} (the run stopped before its first checkpoint?)")
    return read_verified(p, map_location)
