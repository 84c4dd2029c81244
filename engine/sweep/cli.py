"""The ``spfde-train sweep`` command: plan, run or resume a sweep, print its table."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from engine.run.lock import RunLockedError
from engine.sweep import cells as cells_mod
from engine.sweep import export as export_mod
from engine.sweep import manifest as manifest_mod
from engine.sweep import results as results_mod
from engine.sweep import runner
from engine.sweep import spec as spec_mod

log = logging.getLogger("engine.sweep")


def measured_rate(m: manifest_mod.Manifest) -> float | None:
    """Executed FLOPs per second of the sweep's finished cells (None before any)."""
    flops = wall = 0.0
    for line in results_mod.latest_lines(manifest_mod.read_jsonl(m.dir / manifest_mod.RESULTS)).values():
        if line.get("status") == "completed" and line.get("flops_dense") and line.get("wall_time"):
            flops += cells_mod.executed_flops(line)
            wall += float(line["wall_time"])
    return flops / wall if wall > 0 else None


def resolve(args) -> tuple[spec_mod.SweepSpec | None, list[cells_mod.Cell], manifest_mod.Manifest | None]:
    """(spec, planned cells, existing manifest or None) for a sweep file or folder."""
    src = Path(args.source)
    shipped = spec_mod.SWEEPS_DIR / f"{args.source}.yaml"
    if not src.exists() and shipped.is_file():     # a shipped sweep by name: demo_grid
        src = shipped
    if src.is_dir():
        m = manifest_mod.read(src)
        return None, m.cells, m
    spec = spec_mod.load(src)
    cells = cells_mod.build(spec)
    parent = args.sweep_dir or spec.sweep_dir
    found = None if args.new else manifest_mod.find_matching(parent, spec, cells)
    return spec, cells, manifest_mod.read(found) if found else None


def main(args) -> int:
    spec, cells, m = resolve(args)
    if args.table:
        if m is None:
            print(f"no sweep folder for {args.source} yet (run it first)", file=sys.stderr)
            return 2
        rows = results_mod.load(m)
        print(export_mod.FORMATS[args.table](rows, m.varied), end="")
        return 0
    if args.plan:
        rate = args.flops_per_s or (measured_rate(m) if m else None) or cells_mod.DEFAULT_CPU_FLOPS_PER_S
        if spec is None:
            assert m is not None, "resolve() gives a spec or a sweep folder"
            spec = spec_mod.SweepSpec(name=m.name, base={}, seeds=m.seeds or [0])
            spec.axes = {f: [] for f in m.varied}
        print(cells_mod.format_plan(spec, cells, rate))
        return 0
    if m is None:
        assert spec is not None, "resolve() gives a spec or a sweep folder"
        m = manifest_mod.create(spec, cells, args.sweep_dir)
        log.info("sweep folder %s (%d cells)", m.dir, len(m.cells))
    else:
        log.info("resuming sweep folder %s", m.dir)
    try:
        return runner.run(m, gpus=args.gpus)
    except (ValueError, RunLockedError, OSError) as exc:   # the lock: another sweep runs this folder
        print(str(exc), file=sys.stderr)
        return 2
