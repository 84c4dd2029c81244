"""The sweep folder on disk: ``sweep.yaml`` (the expanded cells), ``configs/<cell>.yaml``,
``results.jsonl`` and ``sweep_events.jsonl``. Pure Python; the runner and the studio share it."""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import yaml

from engine import config as config_mod
from engine.config import safe_yaml
from engine.run.folder import LinkedFileError, open_nofollow, refuse_links
from engine.sweep.cells import Cell
from engine.sweep.spec import SweepError, SweepSpec

MANIFEST = "sweep.yaml"
RESULTS = "results.jsonl"
EVENTS = "sweep_events.jsonl"
CONFIGS = "configs"
LOGS = "logs"
FORMAT = 1
# A sweep folder may come from someone else, as a run folder may: none of these may be a
# link (the runner would append to, or write through, whatever it points at)
SPECIAL_FILES = (MANIFEST, RESULTS, EVENTS, CONFIGS, LOGS, ".lock")
MAX_MANIFEST_BYTES = 64 * 2**20      # a manifest of the 100,000-cell limit is far below this
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class Manifest:
    def __init__(self, path: Path, data: dict):
        self.dir = Path(path)
        self.data = data
        self.cells = [Cell.from_dict(c) for c in data.get("cells", [])]

    @property
    def name(self) -> str:
        return str(self.data.get("name", self.dir.name))

    @property
    def varied(self) -> list[str]:
        return list(self.data.get("varied", []))

    @property
    def seeds(self) -> list[int]:
        return list(self.data.get("seeds", []))

    def config_path(self, cell: Cell) -> Path:
        return self.dir / CONFIGS / f"{cell.name}.yaml"

    def cell(self, name: str) -> Cell:
        for c in self.cells:
            if c.name == name:
                return c
        raise KeyError(name)

    def save(self) -> None:
        self.data["cells"] = [c.to_dict() for c in self.cells]
        _atomic_write(self.dir / MANIFEST, yaml.safe_dump(self.data, sort_keys=False))

    def reorder(self, names: list[str]) -> None:
        """Put cells in this order (the studio's queue); unnamed cells keep their order after."""
        rank = {n: i for i, n in enumerate(names)}
        self.cells.sort(key=lambda c: (rank.get(c.name, len(rank)), c.index))
        self.save()

    def drop(self, name: str) -> None:
        self.cells = [c for c in self.cells if c.name != name]
        self.save()


def _atomic_write(p: Path, text: str) -> None:
    tmp = p.with_name(p.name + ".tmp")
    try:
        tmp.unlink()                  # a leftover, or a link planted in its place
    except FileNotFoundError:
        pass
    with os.fdopen(open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "w", encoding="utf-8") as f:
        f.write(text)
    tmp.replace(p)                    # replaces a link at p itself, never its target


def create(spec: SweepSpec, cells: list[Cell], parent: str | Path | None = None) -> Manifest:
    """A fresh ``<parent>/<name>-<ts>/`` with the manifest and every cell's config."""
    base = Path(parent if parent is not None else spec.sweep_dir).expanduser()
    base.mkdir(parents=True, exist_ok=True)
    stem = f"{_SAFE.sub('_', spec.name).strip('_') or 'sweep'}-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1000):
        d = base / (stem if n == 0 else f"{stem}-{n}")
        try:
            d.mkdir()
            break
        except FileExistsError:
            continue
    else:
        raise RuntimeError(f"could not create a sweep folder under {base}")
    (d / CONFIGS).mkdir()
    data = {"format": FORMAT, "name": spec.name, "description": spec.description, "created": time.time(),
            "source": spec.source, "spec": spec.raw, "varied": spec.varied_fields(), "seeds": spec.seeds,
            "max_cells": spec.max_cells, "cells": []}
    m = Manifest(d, data)
    m.cells = list(cells)
    for c in cells:
        config_mod.save(config_mod.from_dict(c.config), m.config_path(c))
    m.save()
    return m


def read(sweep_dir: str | Path) -> Manifest:
    d = Path(sweep_dir)
    p = d / MANIFEST
    if not p.is_file():
        raise SweepError([("SWEEP_DIR", f"{d} holds no {MANIFEST}; is it a sweep folder?")])
    try:
        refuse_links(d, SPECIAL_FILES)
    except LinkedFileError as exc:
        raise SweepError([(str(d), str(exc).replace("run folder", "sweep folder"))]) from None
    if p.stat().st_size > MAX_MANIFEST_BYTES:
        raise SweepError([(str(p), f"{p.stat().st_size:,} bytes; a sweep manifest is at most {MAX_MANIFEST_BYTES:,}")])
    try:
        data = safe_yaml.load(p.read_text(encoding="utf-8", errors="replace"))
    except yaml.YAMLError as exc:
        raise SweepError([(str(p), f"not valid YAML: {exc}")]) from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise SweepError([(str(p), "expected a sweep manifest (a mapping with a cells list)")])
    return Manifest(d, data)


def is_sweep_dir(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def find_matching(parent: str | Path, spec: SweepSpec, cells: list[Cell]) -> Path | None:
    """The newest sweep folder under ``parent`` holding exactly these cells (so running the
    same file again resumes it), or None."""
    base = Path(parent).expanduser()
    if not base.is_dir():
        return None
    stem = _SAFE.sub("_", spec.name).strip("_") or "sweep"
    want = sorted(json.dumps(c.config, sort_keys=True) for c in cells)
    for d in sorted(base.glob(f"{stem}-*"), key=lambda p: p.stat().st_mtime, reverse=True):
        if not is_sweep_dir(d):
            continue
        try:
            m = read(d)
        except SweepError:
            continue
        if sorted(json.dumps(c.config, sort_keys=True) for c in m.cells) == want:
            return d
    return None


def append_jsonl(path: Path, obj: dict) -> None:
    """Append one line; a torn last line left by a killed writer is ended first."""
    torn = False
    if path.is_file() and path.stat().st_size > 0:
        with open(path, "rb") as f:
            f.seek(-1, 2)
            torn = f.read(1) != b"\n"
    with os.fdopen(open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "a", encoding="utf-8") as f:
        if torn:
            f.write("\n")
        f.write(json.dumps(obj, default=str) + "\n")
        f.flush()


def read_jsonl(path: Path) -> list[dict]:
    """The lines of a JSON Lines file; a torn last line (a killed writer) is skipped."""
    out: list[dict] = []
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out
