"""``spfde-train sweep``: run a sweep's cells, each as its own engine subprocess
(``python -m engine run|resume``), so a crashing cell cannot take the sweep down.

One cell at a time, or one per GPU when several are visible. Resumable from the folder
alone (engine.sweep.state): finished cells are skipped, interrupted ones resumed from their
checkpoint, failed ones retried once. SIGTERM / Ctrl-C stop the running cells gracefully
(each checkpoints) and end the sweep; run it again to continue. Cells get ``--stop-on-eof``,
so if this process is killed outright its cells still stop with a checkpoint.

Sweep-level events (docs/events.md) go to stdout and to ``sweep_events.jsonl``.
"""
from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from engine.run.events import dumps, make_event
from engine.run.folder import open_nofollow
from engine.run.lock import RunLock
from engine.sweep import results as results_mod
from engine.sweep import state as state_mod
from engine.sweep.cells import Cell
from engine.sweep.manifest import EVENTS, LOGS, RESULTS, Manifest, append_jsonl
from engine.sweep.progress import SweepPrinter
from engine.tracking import groups

log = logging.getLogger("engine.sweep")


def detect_gpus(spec: str = "auto") -> list[str]:
    """GPU ids to spread cells over: ``auto`` (CUDA_VISIBLE_DEVICES, else nvidia-smi -L),
    ``none``, or a list such as ``0,1``. Read without importing torch."""
    if spec == "none":
        return []
    if spec != "auto":
        ids = [s.strip() for s in spec.split(",") if s.strip()]
        if not ids:
            raise ValueError(f"--gpus: expected auto, none or a list such as 0,1; got {spec!r}")
        return ids
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [s.strip() for s in env.split(",") if s.strip() and s.strip() != "-1"]
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(l for l in out.splitlines() if l.startswith("GPU "))]


@dataclass
class _Running:
    cell: Cell
    proc: subprocess.Popen
    slot: str | None
    attempt: int
    resumed: bool
    run_dir: Path | None
    log_file: IO
    error: str = ""
    status: str | None = None
    started_emitted: bool = False
    reader: threading.Thread | None = None


@dataclass
class SweepRunner:
    # End the trackers' parent run (MLflow) when the run ends (a class attribute, not a
    # field); a search runs one runner per batch of trials and ends it itself, at its end.
    ends_parent = True
    manifest: Manifest
    slots: list[str | None] = field(default_factory=lambda: [None])
    out: IO[str] | None = None
    python: str = sys.executable
    # a person at a terminal: human lines (engine.sweep.progress) instead of JSON on stdout
    printer: SweepPrinter | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _q: queue.Queue = field(default_factory=queue.Queue)

    # ---------------------------------------------------------------- events
    def emit(self, event: str, /, **fields) -> dict:
        ev = make_event(event, **fields)
        line = dumps(ev)
        append_jsonl(self.manifest.dir / EVENTS, ev)
        if self.printer is not None:
            self.printer.on_sweep_event(ev)
            return ev
        out = self.out if self.out is not None else sys.stdout
        try:
            out.write(line + "\n")
            out.flush()
        except (OSError, ValueError):
            pass
        return ev

    def request_stop(self) -> None:
        self._stop.set()

    # ---------------------------------------------------------------- the loop
    def run(self) -> int:
        """Run every cell that needs it; 0 all completed (or stopped), 1 some failed."""
        m = self.manifest
        (m.dir / LOGS).mkdir(exist_ok=True)
        states = state_mod.states(m)
        for st in states:       # completed folders whose results line was never written
            if st.finished_in_folder:
                self._record(st.cell, "completed", st.run_dir, st.failures + 1)
        todo = [st for st in states if st.todo]
        self.emit("sweep_started", sweep_dir=str(m.dir.resolve()), sweep=m.name, cells=len(m.cells),
                  todo=len(todo), slots=[s if s is not None else "default" for s in self.slots])
        free = list(self.slots)
        running: list[_Running] = []
        while (todo or running):
            while todo and free and not self._stop.is_set():
                running.append(self._launch(todo.pop(0), free.pop(0)))
            if not running:
                break
            self._pump(running)
            for r in [r for r in running if r.proc.poll() is not None]:
                running.remove(r)
                free.append(r.slot)
                self._finish(r)
            if self._stop.is_set():
                todo = []
                for r in running:
                    self._send_stop(r)
        return self._end()

    def _launch(self, st: state_mod.CellState, slot: str | None) -> _Running:
        m, cell = self.manifest, st.cell
        cmd = [self.python, "-m", "engine"]
        if st.resume and st.run_dir is not None:
            cmd += ["resume", str(st.run_dir)]
        else:
            cmd += ["run", "--config", str(m.config_path(cell)), "--run-dir", str(m.dir)]
            # the sweep's cells as one group in the trackers (a resumed cell keeps its config's)
            for override in groups.cell_overrides(cell.config, m.dir, m.name):
                cmd += ["--set", override]
        cmd.append("--stop-on-eof")
        env = dict(os.environ)
        if slot is not None:
            env["CUDA_VISIBLE_DEVICES"] = slot
        log_file = os.fdopen(open_nofollow(m.dir / LOGS / f"{cell.name}.log",   # open while the cell runs
                                           os.O_WRONLY | os.O_APPEND | os.O_CREAT), "a", encoding="utf-8")
        log_file.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n")
        log_file.flush()
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file,
                                text=True, env=env, bufsize=1)
        r = _Running(cell, proc, slot, st.failures + 1, st.resume, st.run_dir if st.resume else None, log_file)
        r.reader = threading.Thread(target=self._read, args=(r,), daemon=True, name=f"cell-{cell.name}")
        r.reader.start()
        return r

    def _read(self, r: _Running) -> None:
        """The cell's stdout events: its run folder (run_started), error, final status."""
        try:
            for line in r.proc.stdout or ():
                if not line.startswith("{"):
                    continue
                try:
                    ev = json.loads(line)
                except json.JSONDecodeError:
                    continue
                self._q.put((r, ev))
        except (OSError, ValueError):
            pass

    def _pump(self, running: list[_Running]) -> None:
        try:
            r, ev = self._q.get(timeout=0.2)
        except queue.Empty:
            return
        self._on_event(r, ev)
        while True:
            try:
                r, ev = self._q.get_nowait()
            except queue.Empty:
                return
            self._on_event(r, ev)

    def _on_event(self, r: _Running, ev: dict) -> None:
        kind = ev.get("event")
        if self.printer is not None:
            self.printer.on_cell_event(r.cell.name, ev)
        if kind == "run_started":
            r.run_dir = Path(ev.get("run_dir") or r.run_dir or "")
            if not r.started_emitted:
                r.started_emitted = True
                self.emit("cell_started", cell=r.cell.name, index=r.cell.index, run_dir=str(r.run_dir),
                          resumed=r.resumed, attempt=r.attempt, slot=r.slot or "default",
                          setting=r.cell.setting, seed=r.cell.seed)
        elif kind == "error" and ev.get("fatal", True) is not False:
            r.error = str(ev.get("message", ""))
        elif kind == "run_finished":
            r.status = ev.get("status")

    def _send_stop(self, r: _Running) -> None:
        try:
            if r.proc.stdin and not r.proc.stdin.closed:
                r.proc.stdin.write('{"cmd": "stop"}\n')
                r.proc.stdin.flush()
        except (OSError, ValueError):
            pass

    def _finish(self, r: _Running) -> None:
        if r.reader is not None:
            r.reader.join(timeout=30)
        while not self._q.empty():     # events read after the last pump
            rr, ev = self._q.get_nowait()
            self._on_event(rr, ev)
        r.log_file.close()
        try:
            if r.proc.stdin:
                r.proc.stdin.close()
        except OSError:
            pass
        rc = r.proc.returncode
        if r.run_dir is not None and r.run_dir.is_dir():
            status, err = state_mod.run_outcome(r.run_dir)
            r.status, r.error = status or r.status, r.error or err
        cell = r.cell
        if rc == 0 and r.status in state_mod.FINISHED:
            note = results_mod.UNSAVED_NOTE if r.status == "finished_unsaved" else ""
            line = self._record(cell, "completed", r.run_dir, r.attempt, note=note)
            self.emit("cell_finished", cell=cell.name, index=cell.index, run_dir=str(r.run_dir), status="completed",
                      final_test_acc=line.get("final_test_acc"), flops_spent=line.get("flops_spent"))
        elif rc == 0 and r.status == "stopped":
            self.emit("cell_stopped", cell=cell.name, index=cell.index, run_dir=str(r.run_dir))
        else:
            error = r.error or self._log_tail(cell) or f"the engine exited with status {rc}"
            self._record(cell, "failed", r.run_dir, r.attempt, error)
            self.emit("cell_failed", cell=cell.name, index=cell.index,
                      run_dir=str(r.run_dir) if r.run_dir else None, error=error, attempt=r.attempt,
                      exit_code=rc, will_retry=r.attempt < state_mod.MAX_ATTEMPTS)

    def _log_tail(self, cell: Cell) -> str:
        p = self.manifest.dir / LOGS / f"{cell.name}.log"
        try:
            lines = [l for l in p.read_text(encoding="utf-8", errors="replace").splitlines() if l.strip()]
        except OSError:
            return ""
        return lines[-1][-500:] if lines else ""

    def _record(self, cell: Cell, status: str, run_dir: Path | None, attempt: int, error: str = "",
                note: str = "") -> dict:
        rd = Path(run_dir) if run_dir else None
        line = results_mod.result_line(cell, status, rd if rd is not None and rd.is_dir() else None, attempt, error,
                                       note)
        append_jsonl(self.manifest.dir / RESULTS, line)
        return line

    def _end(self) -> int:
        states = state_mod.states(self.manifest)
        done = sum(1 for s in states if s.action == "done")
        failed = sum(1 for s in states if s.status == "failed")
        remaining = sum(1 for s in states if s.todo)
        status = "stopped" if self._stop.is_set() and remaining else "completed"
        if self.ends_parent and self.manifest.cells:      # the trackers' parent run ends with the sweep
            groups.end_parent(self.manifest.dir, self.manifest.cells[0].config,
                              "KILLED" if status == "stopped" else "FAILED" if failed else "FINISHED")
        self.emit("sweep_finished", status=status, completed=done, failed=failed, remaining=remaining,
                  sweep_dir=str(self.manifest.dir.resolve()))
        return 1 if failed and status == "completed" else 0


def run(m: Manifest, gpus: str = "auto", out: IO[str] | None = None, human: IO[str] | None = None) -> int:
    """Run the sweep's remaining cells holding the sweep folder's lock (two sweep processes
    on one folder would both run every cell). Raises RunLockedError when it is held.
    ``human``: a terminal to print progress lines on instead of the JSON events."""
    with RunLock(m.dir):
        return _run_locked(m, gpus, out, human)


def _run_locked(m: Manifest, gpus: str, out: IO[str] | None, human: IO[str] | None = None) -> int:
    ids = detect_gpus(gpus)
    slots: list[str | None] = list(ids) if len(ids) > 1 else [None]
    runner = SweepRunner(m, slots=slots, out=out, printer=SweepPrinter(human) if human is not None else None)
    old = {}

    def handler(signum, frame):
        log.info("%s: stopping the running cell(s) with a checkpoint; run the sweep again to continue",
                 signal.Signals(signum).name)
        runner.request_stop()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            old[sig] = signal.signal(sig, handler)
    try:
        return runner.run()
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
