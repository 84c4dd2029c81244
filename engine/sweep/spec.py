"""The sweep file: a base configuration, axes, linked axes and seeds (docs/sweeps.md).

    name: demo-grid
    base: {preset: demo}            # or {config: path/to/run.yaml}, relative to this file
    overrides: {epochs: 10}         # dotted or nested fields applied to the base
    axes:                           # every combination of these values
      sparsity.target: [0.9, 0.95]
    linked:                         # fields that change together (one table row each)
      - freeze.target: [0, 0.2]
        sieve.ratio: [0, 0.2]
    seeds: 3                        # or a list of seeds
    max_cells: 500                  # refuse larger grids

Pure Python: parsing and checking the shape; ``engine.sweep.cells`` expands and validates.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine import assets
from engine import config as config_mod
from engine.config import ConfigError, safe_yaml
from engine.executor.base import EXECUTORS
from engine.executor.slurm import options_from

DEFAULT_MAX_CELLS = 500
MAX_SEEDS = 10_000               # seeds a sweep may name (each one is a cell per setting)
# The shipped sweeps: the checkout's assets/ or the wheel's spfde_assets package.
SWEEPS_DIR = assets.path("sweeps")
SWEEP_KEYS = ("name", "base", "overrides", "axes", "linked", "seeds", "max_cells", "sweep_dir", "description",
              "executor", "slurm")
# Fields a sweep may not vary: the seed has its own key, and these name the run folder.
NOT_AN_AXIS = {"seed": "use the sweep's `seeds` key", "name": "cells are named by the sweep",
               "run_dir": "cells run inside the sweep folder"}


class SweepError(ConfigError):
    """A bad sweep file or cell; ``errors`` lists (where, message)."""

    def __init__(self, errors: list[tuple[str, str]], source: str | None = None):
        super().__init__(errors, source)
        n = len(self.errors)
        head = f"invalid sweep{f' {source}' if source else ''} ({n} error{'s' if n != 1 else ''}):\n"
        self.args = (head + "\n".join(f"  {f}: {m}" for f, m in self.errors),)


@dataclass
class SweepSpec:
    name: str
    base: dict                               # the base run configuration as a plain dict
    axes: dict[str, list] = field(default_factory=dict)
    linked: list[dict[str, list]] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    max_cells: int = DEFAULT_MAX_CELLS
    sweep_dir: str = "sweeps"
    description: str = ""
    source: str | None = None
    raw: dict = field(default_factory=dict)  # the file as read (stored in the manifest)
    executor: str | None = None              # local | slurm; None: the command line's choice (local)
    slurm: dict = field(default_factory=dict)  # Slurm options (engine.executor.slurm.SlurmOptions fields)

    def varied_fields(self) -> list[str]:
        """The fields that differ between settings, in file order (the table's columns)."""
        out = list(self.axes)
        for group in self.linked:
            out += [f for f in group if f not in out]
        return out


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """{"freeze": {"target": 0.2}, "epochs": 3} -> {"freeze.target": 0.2, "epochs": 3}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and f"{key}" not in config_mod.FIELD_BY_PATH:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _base_config(raw: Any, here: Path, errors: list) -> dict:
    if raw is None:
        return {}
    if isinstance(raw, str):
        raw = {"preset": raw} if not raw.endswith((".yaml", ".yml", ".json")) else {"config": raw}
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in ("preset", "config"):
        errors.append(("base", f"expected {{preset: NAME}} or {{config: PATH}}, got {raw!r}"))
        return {}
    kind, value = next(iter(raw.items()))
    try:
        if kind == "preset":
            return config_mod.read_file(config_mod.preset_path(str(value)))
        p = Path(str(value)).expanduser()
        return config_mod.read_file(p if p.is_absolute() else here / p)
    except ConfigError as exc:
        errors.append((f"base.{kind}", "; ".join(m for _, m in exc.errors)))
        return {}


def parse(data: Any, source: str | None = None, here: Path | None = None) -> SweepSpec:
    """A SweepSpec from the sweep file's mapping; every shape problem is a SweepError."""
    if not isinstance(data, dict):
        raise SweepError([("<root>", f"expected a mapping (name, base, axes, seeds, ...), got {type(data).__name__}")], source)
    here = here or Path.cwd()
    errors: list[tuple[str, str]] = []
    for k in data:
        if k not in SWEEP_KEYS:
            errors.append((str(k), f"unknown key; expected one of {', '.join(SWEEP_KEYS)}"))
    name = data.get("name", Path(source).stem if source else "sweep")
    if not isinstance(name, str) or not name.strip():
        errors.append(("name", f"expected a non-empty string, got {name!r}"))
        name = "sweep"
    base = _base_config(data.get("base"), here, errors)
    overrides = data.get("overrides") or {}
    if not isinstance(overrides, dict):
        errors.append(("overrides", f"expected a mapping of fields, got {overrides!r}"))
        overrides = {}
    for k, v in _flatten(overrides).items():
        config_mod._set_dotted(base, k, v)

    axes_raw = data.get("axes") or {}
    if not isinstance(axes_raw, dict):
        errors.append(("axes", f"expected a mapping of field: [values], got {axes_raw!r}"))
        axes_raw = {}
    axes = {str(k): v for k, v in axes_raw.items()}
    for k, v in axes.items():
        _check_axis(f"axes.{k}", k, v, errors)

    linked = _linked(data.get("linked") or [], set(axes), errors)

    seeds = _seeds(data.get("seeds", 1), base, errors)
    max_cells, sweep_dir = _limits(data, errors)
    executor, slurm = _executor(data, errors)
    if errors:
        raise SweepError(errors, source)
    return SweepSpec(name=name.strip(), base=base, axes=axes, linked=linked, seeds=seeds, max_cells=max_cells,
                     sweep_dir=sweep_dir, description=str(data.get("description", "") or ""), source=source,
                     raw=copy.deepcopy(data), executor=executor, slurm=slurm)


def _executor(data: dict, errors: list) -> tuple[str | None, dict]:
    """(executor, slurm options) of the file; the options are checked by their own parser."""
    executor = data.get("executor")
    if executor is not None and executor not in EXECUTORS:
        errors.append(("executor", f"expected one of {', '.join(EXECUTORS)}; got {executor!r}"))
        executor = None
    slurm = data.get("slurm") or {}
    try:
        options_from(slurm, "slurm")
    except ValueError as exc:
        errors.append(("slurm", str(exc)))
        slurm = {}
    return executor, dict(slurm) if isinstance(slurm, dict) else {}


def _linked(linked_raw: Any, seen: set, errors: list) -> list[dict[str, list]]:
    """The ``linked`` groups: fields that change together, none already an axis (``seen``)."""
    if isinstance(linked_raw, dict):
        linked_raw = [linked_raw]
    linked: list[dict[str, list]] = []
    if not isinstance(linked_raw, list):
        errors.append(("linked", f"expected a list of groups (field: [values] mappings), got {linked_raw!r}"))
        return linked
    for i, group in enumerate(linked_raw):
        where = f"linked[{i}]"
        if not isinstance(group, dict) or not group:
            errors.append((where, f"expected a mapping of field: [values] with equal lengths, got {group!r}"))
            continue
        group = {str(k): v for k, v in group.items()}
        for k, v in group.items():
            _check_axis(f"{where}.{k}", k, v, errors, unique=False)
            if k in seen:
                errors.append((f"{where}.{k}", "this field is already varied by another axis"))
            seen.add(k)
        _check_linked_lengths(where, group, errors)
        linked.append(group)
    return linked


def _check_linked_lengths(where: str, group: dict, errors: list) -> None:
    lengths = {k: len(v) for k, v in group.items() if isinstance(v, list)}
    if len(set(lengths.values())) > 1:
        errors.append((where, "linked fields change together, so their lists need the same length; got "
                       + ", ".join(f"{k}: {n}" for k, n in lengths.items())))
    elif lengths and len(lengths) == len(group):
        rows = [repr([group[k][i] for k in group]) for i in range(next(iter(lengths.values())))]
        if len(set(rows)) != len(rows):
            errors.append((where, "two positions give the same values for every linked field"))


def _limits(data: dict, errors: list) -> tuple[int, str]:
    """(max_cells, sweep_dir), their defaults where a value is unusable (and an error)."""
    max_cells = data.get("max_cells", DEFAULT_MAX_CELLS)
    if isinstance(max_cells, bool) or not isinstance(max_cells, int) or max_cells < 1:
        errors.append(("max_cells", f"expected a positive integer, got {max_cells!r}"))
        max_cells = DEFAULT_MAX_CELLS
    sweep_dir = data.get("sweep_dir", "sweeps")
    if not isinstance(sweep_dir, str) or not sweep_dir.strip():
        errors.append(("sweep_dir", f"expected a folder path, got {sweep_dir!r}"))
        sweep_dir = "sweeps"
    return max_cells, sweep_dir


def _check_axis(where: str, fld: str, values: Any, errors: list, unique: bool = True) -> None:
    if fld in NOT_AN_AXIS:
        errors.append((where, f"{fld} cannot be an axis: {NOT_AN_AXIS[fld]}"))
    elif fld not in config_mod.FIELD_BY_PATH:
        errors.append((where, f"unknown field {fld!r}; expected a dotted configuration field such as "
                              "sparsity.target, freeze.target, sieve.ratio"))
    if not isinstance(values, list):
        errors.append((where, f"expected a list of values, got {values!r}"))
    elif not values:
        errors.append((where, "empty axis: give at least one value"))
    elif fld in config_mod.FIELD_BY_PATH:
        spec = config_mod.FIELD_BY_PATH[fld]
        for v in values:
            msg = config_mod._check_field(spec, config_mod._coerce(spec, v))
            if msg:
                errors.append((where, f"value {v!r}: {msg}"))
        if unique and len({repr(config_mod._coerce(spec, v)) for v in values}) != len(values):
            errors.append((where, f"repeated values in {values!r}"))


def _short(v: Any, limit: int = 80) -> str:
    """``repr(v)`` cut to ``limit`` characters: a message never holds a rejected value whole."""
    try:
        text = repr(v) if not isinstance(v, (list, dict)) or len(v) <= 20 else f"<{type(v).__name__} of {len(v)}>"
    except ValueError:                  # an int over Python's digit limit
        text = "<a very large integer>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _seeds(raw: Any, base: dict, errors: list) -> list[int]:
    start = base.get("seed", 0) if isinstance(base.get("seed", 0), int) else 0
    if isinstance(raw, bool) or raw is None:
        errors.append(("seeds", f"expected a count (3) or a list of seeds ([0, 1, 2]), got {raw!r}"))
        return [0]
    if isinstance(raw, int):
        if raw < 1:
            errors.append(("seeds", f"expected at least 1 seed, got {_short(raw)}"))
            return [0]
        if raw > MAX_SEEDS:           # checked before the list is built (a billion seeds is 4 GB)
            errors.append(("seeds", f"{_short(raw)} seeds; at most {MAX_SEEDS} (each seed is a cell)"))
            return [0]
        return [start + i for i in range(raw)]
    if isinstance(raw, list) and raw and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in raw):
        if len(set(raw)) != len(raw):
            errors.append(("seeds", f"repeated seeds in {_short(raw)}"))
        return list(raw)
    errors.append(("seeds", f"expected a count (3) or a list of non-negative integers, got {_short(raw)}"))
    return [0]


def load(path: str | Path) -> SweepSpec:
    p = Path(path)
    if not p.is_file():
        raise SweepError([("FILE", f"sweep file not found: {p}")], str(p))
    try:
        data = safe_yaml.load(p.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SweepError([("<file>", f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})")],
                         str(p)) from None
    except OSError as exc:
        raise SweepError([("<file>", f"cannot be read: {exc}")], str(p)) from None
    except (yaml.YAMLError, ValueError) as exc:   # ValueError: an integer over Python's digit limit
        raise SweepError([("<file>", f"not valid YAML: {str(exc)[:300]}")], str(p)) from None
    return parse(data, source=str(p), here=p.resolve().parent)
