"""What each cell of a sweep needs next, read from the folder alone (so a sweep killed at
any moment resumes correctly): its results lines and its run folder(s).

* done: its last results line says completed (or its run folder finished and the line
  was not written yet: ``record`` writes it), or it failed twice;
* resume: a run folder with a checkpoint that did not complete (stopped or killed);
* retry: failed once; resumed from its checkpoint if it has one, else started afresh;
* start: nothing yet (or a folder that died before its first checkpoint).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.sweep.cells import Cell
from engine.sweep.manifest import RESULTS, Manifest, read_jsonl

MAX_ATTEMPTS = 2            # a failed cell is retried once


@dataclass
class CellState:
    cell: Cell
    action: str             # done | start | resume | retry_start | retry_resume | failed
    run_dir: Path | None    # the cell's newest run folder, if any
    status: str             # waiting | running | completed | failed | stopped
    failures: int = 0
    error: str = ""
    finished_in_folder: bool = False    # run folder completed but no results line yet

    @property
    def todo(self) -> bool:
        return self.action not in ("done", "failed")

    @property
    def resume(self) -> bool:
        return self.action in ("resume", "retry_resume")


def run_dirs(sweep_dir: Path, cell: Cell) -> list[Path]:
    """The cell's run folders, oldest first (``<cell>-<YYYYmmdd-HHMMSS>[-N]``)."""
    out = [d for d in sweep_dir.glob(f"{cell.name}-2*") if (d / "config.yaml").is_file()]
    return sorted(out, key=lambda d: (d.stat().st_mtime, d.name))


# a run that trained every epoch: finished_unsaved only lacks its final checkpoint, its
# metrics are complete, so the sweep counts it done (its results line carries a note)
FINISHED = ("completed", "finished_unsaved")


def run_outcome(run_dir: Path) -> tuple[str | None, str]:
    """(last run_finished status or None, last error message) from a run's events."""
    status, error = None, ""
    for ev in read_jsonl(run_dir / "events.jsonl"):
        if ev.get("event") == "run_finished":
            status = ev.get("status")
        elif ev.get("event") == "error" and ev.get("fatal", True) is not False:
            error = str(ev.get("message", ""))
        elif ev.get("event") == "run_started":
            status, error = None, ""      # a resumed session starts afresh
    return status, error


def has_checkpoint(run_dir: Path) -> bool:
    return (run_dir / "checkpoints" / "last.pt").is_file()


def results_by_cell(sweep_dir: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for line in read_jsonl(Path(sweep_dir) / RESULTS):
        if "cell" in line:
            out.setdefault(str(line["cell"]), []).append(line)
    return out


def cell_state(m: Manifest, cell: Cell, lines: list[dict] | None = None) -> CellState:
    lines = lines if lines is not None else results_by_cell(m.dir).get(cell.name, [])
    dirs = run_dirs(m.dir, cell)
    rd = dirs[-1] if dirs else None
    # a Slurm job settled twice (two followers of one folder) is one failure, not two
    failures = len({r.get("job_id") or f"#{i}" for i, r in enumerate(lines) if r.get("status") == "failed"})
    if lines and lines[-1].get("status") == "completed":
        return CellState(cell, "done", rd, "completed", failures)
    if rd is not None:
        status, error = run_outcome(rd)
        # a completed run folder whose line was not written (killed in between)
        if status in FINISHED and not (lines and lines[-1].get("run_dir") == rd.name
                                          and lines[-1].get("status") == "failed"):
            return CellState(cell, "done", rd, "completed", failures, finished_in_folder=True)
    if failures >= MAX_ATTEMPTS:
        return CellState(cell, "failed", rd, "failed", failures, error=str(lines[-1].get("error", "")))
    resumable = rd is not None and has_checkpoint(rd)
    if failures:
        return CellState(cell, "retry_resume" if resumable else "retry_start", rd, "failed", failures,
                         error=str(lines[-1].get("error", "")))
    if resumable:
        return CellState(cell, "resume", rd, "stopped", failures)
    return CellState(cell, "start", rd, "waiting", failures)


def states(m: Manifest) -> list[CellState]:
    by = results_by_cell(m.dir)
    return [cell_state(m, c, by.get(c.name, [])) for c in m.cells]
