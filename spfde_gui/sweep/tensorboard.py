"""Runs as TensorBoard scalars: ``spfde-gui export --tensorboard OUT RUN_OR_SWEEP``.

A minimal event-file writer (TFRecord framing with masked CRC-32C, and the few protobuf
fields a scalar ``Event`` needs, encoded by hand), so neither TensorFlow nor the
``tensorboard`` package is needed to write; ``pip install 'spfde-studio[tensorboard]'``
installs TensorBoard to view them. One folder per run under OUT (a sweep: one per cell,
named by the cell's run folder), tags ``train/loss``, ``test/acc``, ``flops/spent``...,
step = epoch.
"""
from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

from engine.sweep.manifest import is_sweep_dir, read, read_jsonl

# ---------------------------------------------------------------- CRC-32C (Castagnoli)
_POLY = 0x82F63B78
_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ _POLY if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# ---------------------------------------------------------------- protobuf, by hand
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field_bytes(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def scalar_event(tag: str, value: float, step: int, wall_time: float) -> bytes:
    """Event{wall_time=1 (double), step=2 (int64), summary=5: Summary{value=1: {tag=1, simple_value=2 (float)}}}."""
    val = _field_bytes(1, tag.encode("utf-8")) + _varint(2 << 3 | 5) + struct.pack("<f", float(value))
    summary = _field_bytes(1, val)
    return _varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _varint(2 << 3 | 0) + _varint(int(step)) \
        + _field_bytes(5, summary)


def version_event(wall_time: float) -> bytes:
    return _varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _field_bytes(3, b"brain.Event:2")


def record(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc(header)) + data + struct.pack("<I", masked_crc(data))


class EventWriter:
    def __init__(self, logdir: str | Path):
        self.dir = Path(logdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        self.path = self.dir / f"events.out.tfevents.{int(now)}.{socket.gethostname()}.spfde"
        self._f = open(self.path, "wb")  # noqa: SIM115 (closed by close())
        self._f.write(record(version_event(now)))

    def scalar(self, tag: str, value: float, step: int, wall_time: float | None = None) -> None:
        self._f.write(record(scalar_event(tag, value, step, time.time() if wall_time is None else wall_time)))

    def close(self) -> None:
        self._f.close()


def read_scalars(path: str | Path) -> list[tuple[str, int, float]]:
    """(tag, step, value) of an event file written here, checking every CRC (for tests)."""
    data = Path(path).read_bytes()
    out, i = [], 0
    while i < len(data):
        (n,) = struct.unpack_from("<Q", data, i)
        if struct.unpack_from("<I", data, i + 8)[0] != masked_crc(data[i:i + 8]):
            raise ValueError(f"{path}: bad length CRC at byte {i}")
        body = data[i + 12:i + 12 + n]
        if struct.unpack_from("<I", data, i + 12 + n)[0] != masked_crc(body):
            raise ValueError(f"{path}: bad data CRC at byte {i}")
        i += 16 + n
        ev = _parse(body)
        if 5 in ev:
            val = _parse(_parse(ev[5])[1])
            out.append((val[1].decode("utf-8"), int(ev.get(2, 0)), float(struct.unpack("<f", val[2])[0])))
    return out


def _parse(buf: bytes) -> dict:
    out, i = {}, 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            out[num], i = _read_varint(buf, i)
        elif wt == 1:
            out[num], i = buf[i:i + 8], i + 8
        elif wt == 5:
            out[num], i = buf[i:i + 4], i + 4
        elif wt == 2:
            n, i = _read_varint(buf, i)
            out[num], i = buf[i:i + n], i + n
        else:
            raise ValueError(f"unsupported wire type {wt}")
    return out


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


# ---------------------------------------------------------------- runs -> scalars
def _epoch_scalars(ev: dict) -> dict[str, float]:
    out = {}
    for key, tag in (("train_loss", "train/loss"), ("train_acc", "train/acc"), ("test_loss", "test/loss"),
                     ("test_acc", "test/acc"), ("lr", "lr"), ("density", "density"), ("epoch_time", "time/epoch_s")):
        v = ev.get(key)
        if isinstance(v, (int, float)):
            out[tag] = float(v)
    fl = ev.get("flops") or {}
    if isinstance(fl.get("spent"), (int, float)):
        out["flops/spent"] = float(fl["spent"])
    for src, v in (fl.get("saved") or {}).items():
        if isinstance(v, (int, float)):
            out[f"flops/saved_{src}"] = float(v)
    mem = (ev.get("memory") or {}).get("peak_bytes")
    if isinstance(mem, (int, float)):
        out["memory/peak_bytes"] = float(mem)
    return out


def export_run(run_dir: str | Path, logdir: str | Path) -> Path | None:
    """One run's epoch_end events as scalars (step = epoch); None when it has no epochs."""
    events = [e for e in read_jsonl(Path(run_dir) / "events.jsonl") if e.get("event") == "epoch_end"]
    if not events:
        return None
    w = EventWriter(logdir)
    try:
        for ev in events:
            for tag, v in _epoch_scalars(ev).items():
                w.scalar(tag, v, int(ev.get("epoch", 0)), float(ev.get("time") or time.time()))
    finally:
        w.close()
    return w.path


def export(source: str | Path, out: str | Path) -> list[Path]:
    """A run folder or a sweep folder (every cell's runs) as TensorBoard event files."""
    src, out = Path(source), Path(out)
    if is_sweep_dir(src):
        m = read(src)
        dirs = sorted(d for c in m.cells for d in src.glob(f"{c.name}-2*") if (d / "events.jsonl").is_file())
    elif (src / "events.jsonl").is_file():
        dirs = [src]
    else:
        raise ValueError(f"{src}: neither a run folder (events.jsonl) nor a sweep folder (sweep.yaml)")
    written = []
    for d in dirs:
        p = export_run(d, out / d.name)
        if p is not None:
            written.append(p)
    return written
