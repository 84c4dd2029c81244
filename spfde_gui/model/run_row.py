"""What the Runs table shows of a run beyond its results (date, duration, method and the three
SpFDE settings), and the filter that matches a row. No Qt: the panel and tests share it."""
from __future__ import annotations

import time

from engine.cost import wall_time
from spfde_gui.model.run_model import RunModel

# Off by default (the panel is narrow); the table header's menu shows them.
EXTRA_COLUMNS = ("date", "duration", "method", "sparsity", "freeze", "sieve")


def _section(cfg: dict, name: str) -> dict:
    v = cfg.get(name)
    return v if isinstance(v, dict) else {}


def _pct(v) -> str:
    return f"{100 * v:g}%" if isinstance(v, (int, float)) and not isinstance(v, bool) else "–"


def _duration(seconds) -> str:
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds != seconds or seconds < 0:
        return "–"
    return wall_time.duration(seconds)


def started(m: RunModel) -> float | None:
    """When the run's first session started (its run_started event), else None."""
    times = [s.get("time") for s in m.sessions if isinstance(s.get("time"), (int, float))]
    return float(times[0]) if times else None


def extra_cells(m: RunModel | None) -> list[str]:
    """The EXTRA_COLUMNS texts of a run (dashes while it loads)."""
    if m is None:
        return ["–"] * len(EXTRA_COLUMNS)
    cfg = m.config if isinstance(m.config, dict) else {}
    sp, fr, sv = _section(cfg, "sparsity"), _section(cfg, "freeze"), _section(cfg, "sieve")
    t0 = started(m)
    wall = m.summary().get("wall_time")
    return [time.strftime("%Y-%m-%d %H:%M", time.localtime(t0)) if t0 is not None else "–",
            _duration(wall),
            str(sp.get("algorithm") or "–"),
            _pct(sp.get("target")), _pct(fr.get("target")), _pct(sv.get("ratio"))]


def matches(query: str, texts: list[str]) -> bool:
    """Every whitespace-separated word of ``query`` occurs (case-insensitively) in one of
    ``texts``: "mest 90%" finds MEST runs at 90% sparsity."""
    hay = " ".join(texts).lower()
    return all(word in hay for word in query.lower().split())
