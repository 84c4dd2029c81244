"""What ``spfde-train sweep`` prints for a person at a terminal, as ``run`` does: a line per
cell started, finished or failed (with its setting and seed), and a line per epoch of the
running cells (epoch n/N, test accuracy, the cell's time so far), instead of the JSON events.
The events still go to ``sweep_events.jsonl`` and each cell's ``events.jsonl``; ``--events``
(or stdout not being a terminal) gives the JSON lines on stdout.
"""
from __future__ import annotations

import time
from typing import IO


def _setting(setting: dict | None, seed) -> str:
    parts = [f"{k}={v}" for k, v in (setting or {}).items()]
    if seed is not None:
        parts.append(f"seed {seed}")
    return ", ".join(parts)


def _pct(x) -> str:
    return f"{100 * x:.2f}%" if isinstance(x, (int, float)) and not isinstance(x, bool) else "–"


def _secs(s: float) -> str:
    s = int(round(max(0.0, s)))
    return f"{s // 60}:{s % 60:02d}" if s < 3600 else f"{s // 3600}:{(s % 3600) // 60:02d}:{s % 60:02d}"


class SweepPrinter:
    """Sweep events (and the running cells' epoch_end events) as human lines on ``out``."""

    def __init__(self, out: IO[str]):
        self.out = out
        self.cells = 0
        self.done = 0
        self._started: dict[str, float] = {}
        self._names: dict[str, str] = {}       # a cell's run folder -> the cell's name

    def _line(self, text: str) -> None:
        try:
            self.out.write(text + "\n")
            self.out.flush()
        except (OSError, ValueError):
            pass                                 # a closed terminal never stops the sweep

    def on_sweep_event(self, ev: dict) -> None:
        kind = ev.get("event")
        if kind == "sweep_started":
            self.cells = int(ev.get("cells") or 0)
            todo = ev.get("todo")
            self._line(f"sweep {ev.get('sweep')}: {self.cells} cells, {todo} to run, in {ev.get('sweep_dir')}")
        elif kind == "cell_started":
            name = str(ev.get("cell"))
            self._started[name] = time.monotonic()
            if ev.get("run_dir"):
                self._names[str(ev["run_dir"])] = name
            how = "resuming" if ev.get("resumed") else "starting"
            again = f", attempt {ev.get('attempt')}" if (ev.get("attempt") or 1) > 1 else ""
            self._line(f"[{self._index(ev)}] {how} {name} ({_setting(ev.get('setting'), ev.get('seed'))}{again})")
        elif kind == "cell_finished":
            self.done += 1
            took = time.monotonic() - self._started.pop(str(ev.get("cell")), time.monotonic())
            self._line(f"[{self._index(ev)}] finished {ev.get('cell')}: final test acc {_pct(ev.get('final_test_acc'))}"
                       f", {_secs(took)}")
        elif kind == "cell_stopped":
            self._line(f"[{self._index(ev)}] stopped {ev.get('cell')} (checkpointed; rerun the sweep to resume it)")
        elif kind == "cell_failed":
            retry = "; it will be retried" if ev.get("will_retry") else ""
            self._line(f"[{self._index(ev)}] FAILED {ev.get('cell')}: {ev.get('error')}{retry}")
        elif kind == "sweep_finished":
            self._line(f"sweep {ev.get('status')}: {ev.get('completed')} completed, {ev.get('failed')} failed, "
                       f"{ev.get('remaining')} remaining")

    def on_cell_event(self, cell: str, ev: dict) -> None:
        if ev.get("event") != "epoch_end":
            return
        took = time.monotonic() - self._started.get(cell, time.monotonic())
        self._line(f"    {cell}: epoch {int(ev.get('epoch', 0)) + 1}/{ev.get('epochs', '?')}, "
                   f"test acc {_pct(ev.get('test_acc'))}, {_secs(took)}")

    def _index(self, ev: dict) -> str:
        i = ev.get("index")
        return f"{int(i) + 1}/{self.cells}" if isinstance(i, int) and self.cells else "?"
