"""A sweep's results: one summary per cell (from its run's events) and the paper's table
shape (one row per setting: mean and sample std over seeds, with the count of seeds that
finished, so a crashed cell shows as a gap, never as a silently smaller mean).

Pure Python; the runner, the studio's results view, the report and the exports read it.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.sweep.cells import Cell, setting_key
from engine.sweep.manifest import RESULTS, Manifest, read_jsonl

# The table's metrics: key in a results line -> column title.
METRICS = {
    "flops_spent": "training FLOPs",
    "final_test_acc": "final test acc",
    "best_test_acc": "best test acc",
    "peak_memory_bytes": "measured peak memory (bytes)",
    "wall_time": "wall time (s)",
}


def summarize_run(run_dir: str | Path) -> dict:
    """The numbers a cell contributes to the table, from its run's events.jsonl: final and
    best test accuracy, training FLOPs spent (ledger), peak memory, wall time."""
    events = read_jsonl(Path(run_dir) / "events.jsonl")
    accs, peak, finished, epochs = [], 0, None, 0
    by_epoch: dict[int, float] = {}
    for ev in events:
        kind = ev.get("event")
        if kind == "epoch_end":
            acc = ev.get("test_acc")
            if isinstance(acc, (int, float)):
                by_epoch[int(ev.get("epoch", len(by_epoch)))] = float(acc)
            mem = (ev.get("memory") or {}).get("peak_bytes")
            if isinstance(mem, (int, float)):
                peak = max(peak, int(mem))
            epochs = max(epochs, int(ev.get("epoch", 0)) + 1)
        elif kind == "run_finished":
            finished = ev
    accs = [by_epoch[e] for e in sorted(by_epoch)]
    out: dict[str, Any] = {"final_test_acc": accs[-1] if accs else None,
                           "best_test_acc": max(accs) if accs else None,
                           "peak_memory_bytes": peak or None, "epochs_completed": epochs}
    if finished is not None:
        fl = finished.get("flops") or {}
        out.update(flops_spent=fl.get("spent"), flops_dense=fl.get("dense"), flops_saved=fl.get("saved"),
                   wall_time=finished.get("wall_time"), run_status=finished.get("status"))
        fin = (finished.get("final") or {}).get("test_acc")
        if isinstance(fin, (int, float)):
            out["final_test_acc"] = float(fin)
    return out


UNSAVED_NOTE = ("every epoch finished but the final checkpoint could not be written (finished_unsaved): "
                "free disk space and resume the run folder to save it")


def result_line(cell: Cell, status: str, run_dir: Path | None, attempt: int, error: str = "",
                note: str = "") -> dict:
    """One results.jsonl line (run_dir relative to the sweep folder)."""
    line: dict[str, Any] = {"cell": cell.name, "index": cell.index, "setting": cell.setting, "seed": cell.seed,
                            "status": status, "attempt": attempt, "run_dir": run_dir.name if run_dir else None,
                            "time": round(time.time(), 3)}
    if run_dir is not None:
        line.update(summarize_run(run_dir))
    if error:
        line["error"] = error
    if note:
        line["note"] = note
    return line


@dataclass
class Stat:
    mean: float | None
    std: float | None          # sample std (n - 1); None with fewer than 2 values
    n: int

    def fmt(self, scale: float = 1.0, digits: int = 2) -> str:
        if self.mean is None:
            return "-"
        s = f"{self.mean * scale:.{digits}f}"
        return s + (f" ± {self.std * scale:.{digits}f}" if self.std is not None else "")


def stat(values: list) -> Stat:
    vals = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    n = len(vals)
    if not n:
        return Stat(None, None, 0)
    mean = sum(vals) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else None
    return Stat(mean, std, n)


@dataclass
class Row:
    setting: dict
    cells: list[str]                    # the setting's cell names (one per seed)
    seeds_total: int
    completed: int
    failed: int
    stats: dict[str, Stat] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)   # run folders (relative) of completed cells
    errors: list[str] = field(default_factory=list)
    projected_flops: float | None = None

    @property
    def complete(self) -> bool:
        return self.completed == self.seeds_total

    def label(self) -> str:
        return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.setting.items()) or "base"


def latest_lines(lines: list[dict]) -> dict[str, dict]:
    """The last results line of each cell (a retried cell's second line wins)."""
    out: dict[str, dict] = {}
    for line in lines:
        if "cell" in line:
            out[str(line["cell"])] = line
    return out


def aggregate(cells: list[Cell], lines: list[dict]) -> list[Row]:
    """One row per setting, in the cells' order; statistics over the completed cells only,
    with the counts alongside (2/3 seeds finished is shown, never hidden)."""
    last = latest_lines(lines)
    rows: dict[str, Row] = {}
    for c in sorted(cells, key=lambda c: c.index):
        key = setting_key(c.setting)
        row = rows.get(key)
        if row is None:
            row = rows[key] = Row(setting=dict(c.setting), cells=[], seeds_total=0, completed=0, failed=0,
                                  projected_flops=(c.projected or {}).get("flops_spent"))
        row.cells.append(c.name)
        row.seeds_total += 1
        line = last.get(c.name)
        if line is None:
            continue
        if line.get("status") == "completed":
            row.completed += 1
            if line.get("run_dir"):
                row.runs.append(str(line["run_dir"]))
        elif line.get("status") == "failed":
            row.failed += 1
            if line.get("error"):
                row.errors.append(f"{c.name}: {line['error']}")
    for row in rows.values():
        done = [last[n] for n in row.cells if n in last and last[n].get("status") == "completed"]
        row.stats = {k: stat([d.get(k) for d in done]) for k in METRICS}
    return list(rows.values())


def load(m: Manifest) -> list[Row]:
    return aggregate(m.cells, read_jsonl(m.dir / RESULTS))


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats (fewer or equal FLOPs and higher or equal
    accuracy, one of them strictly), sorted by FLOPs."""
    idx = [i for i, (x, y) in enumerate(points) if x is not None and y is not None]
    front = []
    for i in idx:
        xi, yi = points[i]
        if not any((points[j][0] <= xi and points[j][1] >= yi) and (points[j][0] < xi or points[j][1] > yi)
                   for j in idx if j != i):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def base_fields(m) -> list[tuple[str, Any]]:
    """The configuration every cell of the sweep shares (dotted field, value), sorted: what
    the sweep held fixed, for its report (the varied fields and the seed left out)."""
    from engine.config import flatten
    flats = [flatten(c.config or {}) for c in m.cells]
    if not flats:
        return []
    skip = {"name", "run_dir", "seed", *m.varied}
    first = flats[0]
    return sorted((k, v) for k, v in first.items()
                  if k not in skip and all(repr(f.get(k)) == repr(v) for f in flats[1:]))
