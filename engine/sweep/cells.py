"""Expand a sweep into cells (setting x seed), validate every cell and plan it.

A *setting* is one combination of axis values (one row of the results table); a *cell*
is a setting with one seed (one run). Everything is checked before anything trains: one
bad cell stops the sweep with the cell and the field named.
"""
from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from engine import config as config_mod
from engine.config import ConfigError
from engine.cost import projection as plan_mod
from engine.cost import wall_time
from engine.run.folder import NAME_MAX, safe_name
from engine.sweep.spec import SweepError, SweepSpec

# Default throughput for time estimates before any cell has finished: executed FLOPs
# (``executed_flops``) per second of the demo preset on a shared 2-core CPU (5.53e12 in
# 105 s, less the start-up below; docs/sweeps.md). Finished cells of the same sweep
# replace it with their own measured rate.
DEFAULT_CPU_FLOPS_PER_S = 5.5e10
# Per-cell start-up (a fresh Python importing torch, building data and model) and evaluation
# time that FLOPs do not capture; measured on the same machine.
CELL_OVERHEAD_S = 5.0


@dataclass
class Cell:
    index: int
    name: str                       # run name and folder prefix: <sweep>-c000
    setting: dict[str, Any]         # varied field -> value (the table row's key)
    seed: int
    config: dict                    # the full, validated run configuration
    projected: dict = field(default_factory=dict)   # {flops_spent, flops_dense, flops_saved, flops_overhead, ...}

    @property
    def setting_key(self) -> str:
        return setting_key(self.setting)

    def label(self) -> str:
        return ", ".join(f"{k}={_short(v)}" for k, v in self.setting.items()) or "base"

    def to_dict(self) -> dict:
        return {"index": self.index, "name": self.name, "setting": self.setting, "seed": self.seed,
                "config": self.config, "projected": self.projected}

    @classmethod
    def from_dict(cls, d: dict) -> Cell:
        name = str(d["name"])
        if safe_name(name) != name:     # a crafted manifest must not name paths outside the sweep folder
            raise SweepError([("cells", f"cell name {name[:80]!r} is not a plain file name (letters, digits, "
                                        f"'.', '_', '-'; no leading dot; at most {NAME_MAX} characters)")])
        return cls(index=int(d["index"]), name=name, setting=dict(d.get("setting") or {}),
                   seed=int(d["seed"]), config=dict(d["config"]), projected=dict(d.get("projected") or {}))


def setting_key(setting: dict) -> str:
    return json.dumps(setting, sort_keys=False, default=str)


def _short(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else "-" if v is None else str(v)


def settings(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every combination: axes in file order, then each linked group as one dimension."""
    dims: list[list[dict]] = []
    for fld, values in spec.axes.items():
        sp = config_mod.FIELD_BY_PATH[fld]
        dims.append([{fld: config_mod._coerce(sp, v)} for v in values])
    for group in spec.linked:
        n = len(next(iter(group.values())))
        dims.append([{f: config_mod._coerce(config_mod.FIELD_BY_PATH[f], vals[i]) for f, vals in group.items()}
                     for i in range(n)])
    out = []
    for combo in itertools.product(*dims):
        s: dict[str, Any] = {}
        for part in combo:
            s.update(part)
        out.append(s)
    return out


def grid_size(spec: SweepSpec) -> int:
    n = len(spec.seeds)
    for values in spec.axes.values():
        n *= len(values)
    for group in spec.linked:
        n *= len(next(iter(group.values())))
    return n


def expand(spec: SweepSpec) -> list[Cell]:
    """The validated cells, seeds innermost; a SweepError names the first bad cell's field."""
    size = grid_size(spec)
    if size > spec.max_cells:
        dims = [f"axes.{f} ({len(v)})" for f, v in spec.axes.items()] + \
               [f"linked[{i}] ({len(next(iter(g.values())))})" for i, g in enumerate(spec.linked)] + \
               [f"seeds ({len(spec.seeds)})"]
        raise SweepError([("max_cells", f"the grid has {size} cells ({' x '.join(dims)}), more than the limit "
                           f"of {spec.max_cells}; shorten an axis or raise max_cells")], spec.source)
    cells: list[Cell] = []
    for setting in settings(spec):
        for seed in spec.seeds:
            d = copy.deepcopy(spec.base)
            for k, v in setting.items():
                config_mod._set_dotted(d, k, v)
            i = len(cells)
            name = cell_name(spec.name, i)
            d["seed"], d["name"] = seed, name
            cell = Cell(index=i, name=name, setting=setting, seed=seed, config=d)
            try:
                cell.config = config_mod.from_dict(d).to_dict()
            except ConfigError as exc:
                raise _cell_error(spec, cell, exc) from None
            cells.append(cell)
    return cells


def cell_name(sweep_name: str, index: int) -> str:
    """The cell's run name, which is also its run folder's prefix: already a safe_name, so
    the run folder keeps it whole and a resume finds the folder (a long sweep name or one
    starting with a dot used to be cut by the folder's rule and the cell restarted)."""
    suffix = f"-c{index:03d}"
    stem = safe_name(sweep_name)[:NAME_MAX - len(suffix)].rstrip("_.-") or "sweep"
    return stem + suffix


def _cell_error(spec: SweepSpec, cell: Cell, exc: ConfigError) -> SweepError:
    where = f"cell {cell.index} ({cell.label()}, seed {cell.seed})"
    return SweepError([(f"{where}: {f}", m) for f, m in exc.errors], spec.source)


def plan_cells(spec: SweepSpec, cells: list[Cell]) -> list[Cell]:
    """Project every cell (engine.cost.projection, pure Python); seeds share their setting's plan."""
    cache: dict[str, dict] = {}
    for cell in cells:
        key = cell.setting_key
        if key not in cache:
            try:
                p = plan_mod.project(config_mod.from_dict(cell.config))
            except ConfigError as exc:
                raise _cell_error(spec, cell, exc) from None
            f = p["flops"]
            spent = f["spent"]
            cache[key] = {"flops_spent": spent, "flops_dense": f["dense"], "flops_saved": dict(f["saved"]),
                          "flops_overhead": dict(f.get("overhead") or {}),
                          "peak_memory_bytes": p["memory"]["peak_bytes"],
                          "freeze_start_epoch": (p.get("freeze_plan") or {}).get("start_epoch"),
                          "freeze_achieved": (p.get("freeze_plan") or {}).get("achieved"),
                          # SNIP/GraSP: layer densities come from the data, the FLOPs are an estimate
                          "exact": bool(p.get("method", {}).get("exact", True))}
        cell.projected = dict(cache[key])
    return cells


def build(spec: SweepSpec) -> list[Cell]:
    """Expand, validate and plan: what ``spfde-train sweep`` checks before training."""
    return plan_cells(spec, expand(spec))


def executed_flops(projected: dict) -> float:
    """The work a run really executes (engine.cost.wall_time.executed_flops, the one rule for
    every estimate) for a cell's projection."""
    return wall_time.executed_flops({"dense": projected.get("flops_dense"), "spent": projected.get("flops_spent"),
                                     "saved": projected.get("flops_saved"), "overhead": projected.get("flops_overhead")})


def cached_entry(cells: list[Cell]) -> dict | None:
    """This machine's measured speed for the first cell's model, batch and device
    (engine.cost.wall_time: recorded by earlier runs or ``plan --calibrate``), or None."""
    for c in cells[:1]:
        try:
            return wall_time.lookup(config_mod.from_dict(c.config))
        except ConfigError:
            return None
    return None


def cached_rate(cells: list[Cell]) -> float | None:
    hit = cached_entry(cells)
    return float(hit["flops_per_s"]) if hit else None


def cached_startup(cells: list[Cell]) -> float | None:
    """The start-up a run of the first cell's model measured here (a fresh process importing
    torch, building data and model), or None."""
    hit = cached_entry(cells) or {}
    v = hit.get("startup_s")
    return float(v) if isinstance(v, (int, float)) and v > 0 else None


def estimate_seconds(cell: Cell, flops_per_s: float, startup_s: float = CELL_OVERHEAD_S) -> float:
    return startup_s + executed_flops(cell.projected) / max(flops_per_s, 1.0)


def flops_text(projected: dict) -> str:
    """A cell's projected FLOPs, marked ~ when the plan can only estimate them (SNIP/GraSP)."""
    return ("" if projected.get("exact", True) else "~") + f"{projected.get('flops_spent', 0):.3g}"


def format_plan(spec: SweepSpec, cells: list[Cell], flops_per_s: float = DEFAULT_CPU_FLOPS_PER_S,
                startup_s: float = CELL_OVERHEAD_S) -> str:
    """The ``--plan`` table: one line per cell with projected FLOPs and an estimated time."""
    cols = spec.varied_fields()
    # the cost model's training memory (weights, optimizer, activations), not a process's RSS
    head = ["cell"] + cols + ["seed", "FLOPs", "of dense", "model train mem", "est. time"]
    rows = []
    total_s = 0.0
    for c in cells:
        s = estimate_seconds(c, flops_per_s, startup_s)
        total_s += s
        pj = c.projected
        dense = pj.get("flops_dense") or 1.0
        rows.append([c.name] + [_short(c.setting.get(f)) for f in cols] + [
            str(c.seed), flops_text(pj), f"{100 * pj.get('flops_spent', 0) / dense:.1f}%",
            f"{pj.get('peak_memory_bytes', 0) / 2**20:.1f} MiB", _duration(s)])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)] if rows else [len(h) for h in head]
    lines = [f"sweep {spec.name}: {len(cells)} cells ({len(cells) // max(1, len(spec.seeds))} settings x "
             f"{len(spec.seeds)} seeds)", "  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    if any(not c.projected.get("exact", True) for c in cells):
        lines.append("~: SNIP/GraSP choose layer densities from the data; their FLOPs are priced at the "
                     "uniform split, an estimate")
    lines.append(f"estimated total: {_duration(total_s)} one cell at a time, at {flops_per_s:.3g} executed FLOPs/s "
                 f"(masked layers run densely) and {startup_s:.3g} s start-up per cell; --flops-per-s sets "
                 "your machine's rate")
    return "\n".join(lines)


def _duration(s: float) -> str:
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
