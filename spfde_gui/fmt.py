"""Number formatting shared by the studio and the report (pure Python, no Qt).

One definition per quantity: FLOPs (SI prefixes in the window, the paper's 1.757e15
notation in report tables), bytes (binary units), durations, rates, percentages.
Missing values (None, NaN, inf, non-numbers) read as an en dash everywhere.
"""
from __future__ import annotations

import math
from typing import Any

MISSING = "–"


def finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def shown_epoch(e: Any) -> str:
    """An event's epoch as people read it. Events count epochs from 0; the CLI, the studio
    and the report count from 1 (the first epoch is epoch 1 and plots put an epoch's
    results at x = epochs trained), one numbering everywhere."""
    if isinstance(e, bool) or not isinstance(e, (int, float)) or not math.isfinite(e):
        return MISSING
    return str(int(e) + 1)


def fmt_flops(x: Any) -> str:
    """FLOPs with an SI prefix: 3.2 GFLOPs."""
    if not finite(x):
        return MISSING
    for unit, scale in (("EFLOPs", 1e18), ("PFLOPs", 1e15), ("TFLOPs", 1e12), ("GFLOPs", 1e9), ("MFLOPs", 1e6)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.3g} FLOPs"


def fmt_flops_sci(x: Any) -> str:
    """1.757e15 style: the paper's notation, fixed mantissa width so table columns align."""
    if not finite(x):
        return MISSING
    if x == 0:
        return "0"
    mant, exp = f"{x:.3e}".split("e")
    return f"{mant}e{int(exp)}"


def fmt_bytes(x: Any) -> str:
    """Binary units: 54.4 MiB."""
    if not finite(x):
        return MISSING
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    v, i = float(x), 0
    while abs(v) >= 1024 and i < len(units) - 1:
        v, i = v / 1024, i + 1
    return f"{v:.0f} {units[i]}" if i == 0 else f"{v:.1f} {units[i]}"


def fmt_seconds(x: Any) -> str:
    """12.3 s, 4:05 min, 1:02:03."""
    if not finite(x):
        return MISSING
    s = round(x)
    if s < 60:
        return f"{x:.1f} s"
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d} min"


def fmt_eta(x: Any) -> str:
    """A remaining time, coarse: 40 s, 3 min, 1 h 20 min."""
    if not finite(x) or x < 0:
        return MISSING
    s = round(x)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{round(s / 60)} min"
    h, m = divmod(round(s / 60), 60)
    return f"{h} h {m:02d} min"


def fmt_rate(x: Any, unit: str = "images/s") -> str:
    if not finite(x):
        return MISSING
    return f"{x:,.0f} {unit}" if x >= 100 else f"{x:.3g} {unit}"


def fmt_pct(x: Any, digits: int = 1) -> str:
    return f"{x:.{digits}f} %" if finite(x) else MISSING
