"""The rows of the Runs table: the runs of the runs folder and, each under its sweep, the
cells of the sweeps beside it (``<runs>/../sweeps/<sweep>/<cell run>``, where the studio and
``spfde-train sweep`` put them). Newest first: a sweep sits where its newest cell would.
No Qt: the panel and tests share it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.sweep.manifest import is_sweep_dir
from spfde_gui.model.run_model import EVENTS_FILE, scan_runs


@dataclass(frozen=True)
class Row:
    path: Path                   # the run folder, or the sweep folder of a header row
    sweep: Path | None = None    # the sweep a cell belongs to (a header row: its own folder)
    header: bool = False         # a sweep's own row, above its cells

    @property
    def is_cell(self) -> bool:
        return self.sweep is not None and not self.header


def sweeps_dir_for(runs_dir: Path) -> Path:
    """Where sweeps of this runs folder live (the studio's and the CLI's default)."""
    return Path(runs_dir).parent / "sweeps"


def _mtime(p: Path) -> float:
    try:
        return (p / EVENTS_FILE).stat().st_mtime
    except OSError:
        return 0.0


def rows(runs_dir: Path, sweeps_dir: Path | None = None) -> list[Row]:
    """Every row in table order (resolved paths); a sweep without a started cell is left out."""
    groups: list[tuple[float, list[Row]]] = []
    for p in scan_runs(runs_dir):
        groups.append((_mtime(p), [Row(p.resolve())]))
    root = sweeps_dir if sweeps_dir is not None else sweeps_dir_for(runs_dir)
    if root.is_dir():
        for s in (d for d in root.iterdir() if d.is_dir() and is_sweep_dir(d)):
            cells = sorted(scan_runs(s), key=lambda p: p.name)
            if not cells:
                continue
            s = s.resolve()
            groups.append((max(_mtime(c) for c in cells),
                           [Row(s, s, header=True)] + [Row(c.resolve(), s) for c in cells]))
    groups.sort(key=lambda g: g[0], reverse=True)
    return [r for _, g in groups for r in g]
