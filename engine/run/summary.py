"""The end-of-run lines a terminal user reads: accuracy, time, FLOPs saved by technique,
where the run folder is, and for a stopped run the exact resume command.

Built from the ``run_finished`` event (and ``run_started`` for the folder), so it says
what the event log says.
"""
from __future__ import annotations

SOURCES = ("sparsity", "freeze", "sieve")


def _pct(x: object) -> str:
    return f"{100 * x:.2f}%" if isinstance(x, (int, float)) else "–"


def _time(s: object) -> str:
    if not isinstance(s, (int, float)):
        return "–"
    m, sec = divmod(int(round(s)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else f"{m}m{sec:02d}s"


def summary_lines(finished: dict, run_dir: str | None) -> list[str]:
    """Lines for the end of a run on a terminal (from its run_finished event)."""
    st = finished.get("status", "?")
    final = finished.get("final") or {}
    fl = finished.get("flops") or {}
    dense = fl.get("dense") or 0.0
    saved = fl.get("saved") or {}
    lines = [f"run {st}: {finished.get('epochs_completed', '?')} epochs in {_time(finished.get('wall_time'))}, "
             f"test accuracy {_pct(final.get('test_acc'))}"]
    if dense:
        parts = [f"{k} {100 * float(saved.get(k) or 0.0) / dense:.1f}%" for k in SOURCES]
        lines.append(f"training FLOPs saved vs dense: {', '.join(parts)}; "
                     f"spent {100 * float(fl.get('spent') or 0.0) / dense:.1f}% of dense")
    if run_dir:
        lines.append(f"run folder: {run_dir} (report: spfde-gui report {run_dir})")
        if st == "stopped":
            lines.append(f"resume with: spfde-train resume {run_dir}")
    return lines
