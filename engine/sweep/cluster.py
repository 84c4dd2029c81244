"""A sweep's cells on a cluster (``executor: slurm``): one job array per submission, the job
ids kept in the sweep folder, their state read from the scheduler while it lists them and
from the run folders once it does not (accounting, sacct, is not needed).

* ``submit`` sends every cell that needs it (engine.sweep.state) and has no pending or
  running job: the run folder is made here (or the stopped one is reused), and the job runs
  ``python -m engine.executor.job RUN_DIR``, which resumes it if it holds a checkpoint;
* ``settle`` turns each ended job into a results line: completed, or failed with the
  engine's error or the Slurm log's tail; a stopped or cancelled job writes nothing, so
  the next ``submit`` resumes it; a failed cell is submitted again once (MAX_ATTEMPTS);
* ``follow`` settles until no job is left, emitting the sweep events as the local runner does;
* ``status_rows`` and ``cancel`` serve ``spfde-train sweep --status | --cancel``.

Pure Python (subprocess through the executor): the studio's queue view reads it too.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine import config as config_mod
from engine.executor.base import Executor, JobInfo
from engine.executor.job import MARKER
from engine.executor.slurm import log_file, log_tail
from engine.run import folder as run_dir_mod
from engine.sweep import results as results_mod
from engine.sweep import state as state_mod
from engine.sweep.manifest import RESULTS, Manifest, append_jsonl, read_jsonl
from engine.tracking import groups

JOBS = "slurm_jobs.jsonl"          # one line per submitted cell, and one per cancel
LOGS = "logs"


@dataclass
class CellJob:
    cell: str
    job_id: str
    run_dir: str
    attempt: int
    submitted: float
    cancelled: bool = False


def jobs(m: Manifest) -> dict[str, CellJob]:
    """Each cell's latest job (a cancel line marks it cancelled)."""
    out: dict[str, CellJob] = {}
    for line in read_jsonl(m.dir / JOBS):
        cell, jid = str(line.get("cell", "")), str(line.get("job_id", ""))
        if not cell or not jid:
            continue
        if line.get("cancelled"):
            if cell in out and out[cell].job_id == jid:
                out[cell].cancelled = True
            continue
        out[cell] = CellJob(cell, jid, str(line.get("run_dir", "")), int(line.get("attempt", 1)),
                            float(line.get("submitted", 0)))
    return out


def _settled(lines: list[dict], job_id: str) -> bool:
    return any(str(l.get("job_id", "")) == job_id for l in lines)


def node_lines(run_dir: Path) -> list[dict]:
    """The lines each started job wrote into the run folder (engine.executor.job)."""
    return read_jsonl(run_dir / MARKER)


def settle(m: Manifest, ex: Executor, on_event: Callable[..., object] | None = None,
           reported: set[str] | None = None) -> dict[str, JobInfo]:
    """Write the results line of every cell whose job ended; the jobs' current state by cell.
    ``reported``: job ids whose stop was already announced (a stop writes no line)."""
    reported = reported if reported is not None else set()
    cj = jobs(m)
    info = ex.query([j.job_id for j in cj.values()])
    by_cell = state_mod.results_by_cell(m.dir)
    out: dict[str, JobInfo] = {}
    for cell in m.cells:
        j = cj.get(cell.name)
        if j is None:
            continue
        ji = info.get(j.job_id, JobInfo(j.job_id, "ENDED"))
        out[cell.name] = ji
        if ji.active or _settled(by_cell.get(cell.name, []), j.job_id):
            continue
        rd = Path(j.run_dir)
        status, error = state_mod.run_outcome(rd) if rd.is_dir() else (None, "")
        if status == "completed":
            line = _record(m, cell, "completed", rd, j)
            if on_event:
                on_event("cell_finished", cell=cell.name, index=cell.index, run_dir=str(rd), status="completed",
                         final_test_acc=line.get("final_test_acc"), flops_spent=line.get("flops_spent"),
                         job_id=j.job_id)
        elif status == "stopped" or j.cancelled:
            if on_event and j.job_id not in reported:
                reported.add(j.job_id)
                on_event("cell_stopped", cell=cell.name, index=cell.index, run_dir=str(rd), job_id=j.job_id)
        else:
            tail = log_tail(log_file(m.dir / LOGS, j.job_id))
            error = error or (f"Slurm job {j.job_id} ended without finishing the run" + (f"; its log ends:\n{tail}" if tail else
                                                                                          " and left no log"))
            line = _record(m, cell, "failed", rd, j, error, tail)
            if on_event:
                on_event("cell_failed", cell=cell.name, index=cell.index, run_dir=str(rd) if rd.is_dir() else None,
                         error=error, attempt=j.attempt, will_retry=j.attempt < state_mod.MAX_ATTEMPTS,
                         job_id=j.job_id)
    return out


def _record(m: Manifest, cell, status: str, rd: Path, j: CellJob, error: str = "", tail: str = "") -> dict:
    line = results_mod.result_line(cell, status, rd if rd.is_dir() else None, j.attempt, error)
    line["job_id"] = j.job_id
    if tail:
        line["slurm_log_tail"] = tail
    append_jsonl(m.dir / RESULTS, line)
    return line


def _run_folder(m: Manifest, st: state_mod.CellState) -> Path:
    """The stopped folder to resume, an unstarted one to reuse, else a fresh one."""
    rd = st.run_dir
    if rd is not None and (st.resume or not (rd / "events.jsonl").is_file()):
        return rd.resolve()
    cfg = config_mod.load(m.config_path(st.cell))
    # the sweep's cells as one group in the trackers, as the local runner does (a stopped
    # cell resumes with the config its folder already holds)
    sets = groups.cell_overrides(st.cell.config, m.dir, m.name)
    if sets:
        cfg = config_mod.from_dict(config_mod.apply_overrides(cfg.to_dict(), sets))
    return run_dir_mod.create(cfg, m.dir.resolve()).resolve()


def submit(m: Manifest, ex: Executor, python: str = sys.executable,
           on_event: Callable[..., object] | None = None) -> list[CellJob]:
    """Submit (one array) every cell that needs running and has no pending/running job."""
    active = settle(m, ex, on_event)
    todo = [st for st in state_mod.states(m) if st.todo and not (st.cell.name in active and active[st.cell.name].active)]
    if not todo:
        return []
    (m.dir / LOGS).mkdir(exist_ok=True)
    dirs = [_run_folder(m, st) for st in todo]
    commands = [[python, "-m", "engine.executor.job", str(d)] for d in dirs]
    ids = ex.submit(commands, job_name=f"spfde-{m.name}", log_dir=str((m.dir / LOGS).resolve()))
    now = time.time()
    out = []
    for st, d, jid in zip(todo, dirs, ids, strict=True):
        cj = CellJob(st.cell.name, jid, str(d), st.failures + 1, now)
        append_jsonl(m.dir / JOBS, {"cell": cj.cell, "job_id": jid, "run_dir": cj.run_dir, "attempt": cj.attempt,
                                    "submitted": now, "resume": st.resume})
        out.append(cj)
    return out


def cancel(m: Manifest, ex: Executor) -> list[str]:
    """Cancel the sweep's pending and running jobs (each running cell checkpoints on the
    SIGTERM scancel sends); the cells resume on the next ``spfde-train sweep``."""
    cj = jobs(m)
    info = ex.query([j.job_id for j in cj.values()])
    ids = [j.job_id for j in cj.values() if info.get(j.job_id, JobInfo(j.job_id, "ENDED")).active]
    ex.cancel(ids)
    for j in cj.values():
        if j.job_id in ids:
            append_jsonl(m.dir / JOBS, {"cell": j.cell, "job_id": j.job_id, "cancelled": True, "time": time.time()})
    return ids


@dataclass
class StatusRow:
    cell: str
    job_id: str
    state: str
    node: str
    elapsed: str
    reason: str


def status_rows(m: Manifest, ex: Executor | None) -> list[StatusRow]:
    """One row per cell: its job's Slurm state while the scheduler lists it, else the cell's
    state from its folder (completed, failed, stopped, waiting)."""
    cj = jobs(m)
    info = ex.query([j.job_id for j in cj.values()]) if ex is not None and cj else {}
    rows = []
    for st in state_mod.states(m):
        j = cj.get(st.cell.name)
        ji = info.get(j.job_id) if j else None
        if j is not None and ji is not None and ji.active:
            rows.append(StatusRow(st.cell.name, j.job_id, ji.state, ji.node, ji.elapsed, ji.reason))
            continue
        node = ""
        if j is not None and j.run_dir:
            seen = node_lines(Path(j.run_dir))
            node = str(seen[-1].get("node", "")) if seen else ""
        state = {"done": "COMPLETED", "failed": "FAILED"}.get(st.action, st.status.upper())
        if j is not None and j.cancelled and st.todo:
            state = "CANCELLED"
        reason = st.error.splitlines()[0][:80] if st.error else ""
        rows.append(StatusRow(st.cell.name, j.job_id if j else "", state, node, "", reason))
    return rows


def format_status(rows: list[StatusRow]) -> str:
    head = ("cell", "job id", "state", "node", "elapsed", "reason")
    table = [head] + [(r.cell, r.job_id or "-", r.state, r.node or "-", r.elapsed or "-", r.reason or "") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in table) + "\n"


def follow(m: Manifest, ex: Executor, emit: Callable[..., object], poll_s: float = 2.0,
           should_stop: Callable[[], bool] = lambda: False) -> int:
    """Poll until no job of the sweep is pending or running, emitting cell_started (when a
    job's node line appears in its run folder), cell_finished / cell_failed / cell_stopped.
    Returns 0, or 1 when a cell failed for good."""
    by_cell = state_mod.results_by_cell(m.dir)     # jobs settled before this call are not news
    started = {(n, j.job_id) for n, j in jobs(m).items() if _settled(by_cell.get(n, []), j.job_id)}
    reported: set[str] = set()
    while True:
        info = settle(m, ex, emit, reported)
        for name, j in jobs(m).items():
            if (name, j.job_id) in started or not j.run_dir:
                continue
            seen = node_lines(Path(j.run_dir))
            if any(str(l.get("job_id")) == j.job_id for l in seen):
                started.add((name, j.job_id))
                cell = m.cell(name)
                emit("cell_started", cell=name, index=cell.index, run_dir=j.run_dir, resumed=len(seen) > 1,
                     attempt=j.attempt, slot=str(seen[-1].get("node", "")), setting=cell.setting, seed=cell.seed,
                     job_id=j.job_id)
        if not any(ji.active for ji in info.values()) or should_stop():
            break
        time.sleep(poll_s)
    states = state_mod.states(m)
    return 1 if any(s.action == "failed" for s in states) else 0
