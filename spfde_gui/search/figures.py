"""The search's figures as SVG text (no Qt, no numpy): the optimisation history, accuracy vs
training FLOPs with the budget line and the Pareto front, and the parameter importances.

One drawing for both places: the Search tab shows them with QSvgWidget and the search
report embeds them in its HTML (vector) and, rasterised, in its PDF. Input is the rows of
``trials.json`` (engine.search.advice).
"""
from __future__ import annotations

import html
import math

from engine.sweep.results import pareto_front

W, H = 560, 300
LEFT, RIGHT, TOP, BOTTOM = 62, 16, 30, 44
BLUE, ORANGE, GREY, RED, GREEN = "#2b6cb0", "#dd6b20", "#a0aec0", "#c53030", "#2f855a"
FONT = "font-family='DejaVu Sans, sans-serif'"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About n round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    out, v = [], start
    while v <= hi + 1e-9 * step:
        out.append(round(v, 12))
        v += step
    return out


def _fmt(v: float) -> str:
    a = abs(v)
    if a and (a >= 1e5 or a < 1e-2):
        return f"{v:.2g}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")
    return f"{v:g}"


class Axes:
    """Data-to-pixel mapping and the frame, ticks and labels of one plot."""

    def __init__(self, title: str, xlabel: str, ylabel: str, x: tuple[float, float], y: tuple[float, float]):
        self.parts: list[str] = []
        self.x0, self.x1 = self._pad(*x)
        self.y0, self.y1 = self._pad(*y)
        self.title, self.xlabel, self.ylabel = title, xlabel, ylabel

    @staticmethod
    def _pad(lo: float, hi: float) -> tuple[float, float]:
        if hi <= lo:
            d = abs(lo) * 0.1 or 1.0
            return lo - d, hi + d
        d = (hi - lo) * 0.06
        return lo - d, hi + d

    def px(self, x: float) -> float:
        return LEFT + (x - self.x0) / (self.x1 - self.x0) * (W - LEFT - RIGHT)

    def py(self, y: float) -> float:
        return H - BOTTOM - (y - self.y0) / (self.y1 - self.y0) * (H - TOP - BOTTOM)

    def add(self, svg: str) -> None:
        self.parts.append(svg)

    def points(self, xs: list[float], ys: list[float], color: str, r: float = 4.0, hollow: bool = False,
               tip: list[str] | None = None) -> None:
        fill = "none" if hollow else color
        for i, (x, y) in enumerate(zip(xs, ys)):
            t = f"<title>{html.escape(tip[i])}</title>" if tip else ""
            self.add(f"<circle cx='{self.px(x):.1f}' cy='{self.py(y):.1f}' r='{r}' fill='{fill}' "
                     f"stroke='{color}' stroke-width='1.5'>{t}</circle>")

    def line(self, xs: list[float], ys: list[float], color: str, width: float = 2, dash: str = "",
             step: bool = False) -> None:
        if not xs:
            return
        pts = []
        for i, (x, y) in enumerate(zip(xs, ys)):
            if step and i:
                pts.append(f"{self.px(x):.1f},{self.py(ys[i - 1]):.1f}")
            pts.append(f"{self.px(x):.1f},{self.py(y):.1f}")
        d = f" stroke-dasharray='{dash}'" if dash else ""
        self.add(f"<polyline points='{' '.join(pts)}' fill='none' stroke='{color}' stroke-width='{width}'{d}/>")

    def vline(self, x: float, color: str, label: str) -> None:
        X = self.px(x)
        self.add(f"<line x1='{X:.1f}' y1='{TOP}' x2='{X:.1f}' y2='{H - BOTTOM}' stroke='{color}' "
                 f"stroke-width='1.5' stroke-dasharray='6,4'/>")
        anchor = "end" if X > W / 2 else "start"
        dx = -4 if anchor == "end" else 4
        self.add(f"<text x='{X + dx:.1f}' y='{TOP + 12}' fill='{color}' font-size='11' {FONT} "
                 f"text-anchor='{anchor}'>{html.escape(label)}</text>")

    def legend(self, items: list[tuple[str, str]]) -> None:
        x = LEFT + 8
        for color, text in items:
            self.add(f"<circle cx='{x}' cy='{TOP + 10}' r='4' fill='{color}'/>"
                     f"<text x='{x + 8}' y='{TOP + 14}' font-size='11' {FONT} fill='#333'>{html.escape(text)}</text>")
            x += 16 + 6.5 * len(text)

    def svg(self) -> str:
        g = []
        for t in nice_ticks(self.x0, self.x1):
            X = self.px(t)
            g.append(f"<line x1='{X:.1f}' y1='{H - BOTTOM}' x2='{X:.1f}' y2='{H - BOTTOM + 4}' stroke='#555'/>"
                     f"<text x='{X:.1f}' y='{H - BOTTOM + 16}' font-size='11' {FONT} text-anchor='middle' "
                     f"fill='#333'>{_fmt(t)}</text>")
        for t in nice_ticks(self.y0, self.y1):
            Y = self.py(t)
            g.append(f"<line x1='{LEFT}' y1='{Y:.1f}' x2='{W - RIGHT}' y2='{Y:.1f}' stroke='#edf0f3'/>"
                     f"<text x='{LEFT - 6}' y='{Y + 4:.1f}' font-size='11' {FONT} text-anchor='end' "
                     f"fill='#333'>{_fmt(t)}</text>")
        frame = (f"<rect x='{LEFT}' y='{TOP}' width='{W - LEFT - RIGHT}' height='{H - TOP - BOTTOM}' "
                 "fill='none' stroke='#555'/>")
        labels = (f"<text x='{W / 2:.0f}' y='18' font-size='13' font-weight='bold' {FONT} text-anchor='middle' "
                  f"fill='#222'>{html.escape(self.title)}</text>"
                  f"<text x='{(LEFT + W - RIGHT) / 2:.0f}' y='{H - 8}' font-size='12' {FONT} "
                  f"text-anchor='middle' fill='#222'>{html.escape(self.xlabel)}</text>"
                  f"<text x='14' y='{(TOP + H - BOTTOM) / 2:.0f}' font-size='12' {FONT} text-anchor='middle' "
                  f"fill='#222' transform='rotate(-90 14 {(TOP + H - BOTTOM) / 2:.0f})'>"
                  f"{html.escape(self.ylabel)}</text>")
        clip = (f"<clipPath id='plot'><rect x='{LEFT}' y='{TOP}' width='{W - LEFT - RIGHT}' "
                f"height='{H - TOP - BOTTOM}'/></clipPath>")
        return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{W}' height='{H}' viewBox='0 0 {W} {H}'>"
                f"<defs>{clip}</defs><rect width='{W}' height='{H}' fill='white'/>{''.join(g)}{frame}"
                f"<g clip-path='url(#plot)'>{''.join(self.parts)}</g>{labels}</svg>")


def empty_svg(title: str, message: str) -> str:
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{W}' height='{H}' viewBox='0 0 {W} {H}'>"
            f"<rect width='{W}' height='{H}' fill='white' stroke='#ccc'/>"
            f"<text x='{W / 2}' y='18' font-size='13' font-weight='bold' {FONT} text-anchor='middle'>"
            f"{html.escape(title)}</text><text x='{W / 2}' y='{H / 2}' font-size='12' {FONT} "
            f"text-anchor='middle' fill='#666'>{html.escape(message)}</text></svg>")


def _done(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("state") == "complete" and r.get("test_acc") is not None]


def history_svg(rows: list[dict]) -> str:
    """Each completed trial's test accuracy by trial number, the best so far as a step line."""
    title = "Optimisation history"
    done = sorted(_done(rows), key=lambda r: r["trial"])
    if not done:
        return empty_svg(title, "no completed trial yet")
    xs = [float(r["trial"]) for r in done]
    ys = [100 * float(r["test_acc"]) for r in done]
    best, run = [], -math.inf
    for y in ys:
        run = max(run, y)
        best.append(run)
    ax = Axes(title, "trial", "test accuracy (%)", (min(xs), max(xs)), (min(ys), max(ys)))
    ax.line(xs + [max(xs)], best + [best[-1]], ORANGE, step=True)
    ax.points(xs, ys, BLUE, tip=[f"#{r['trial']}: {y:.2f}%" for r, y in zip(done, ys)])
    ref = [(x, y) for r, x, y in zip(done, xs, ys) if r.get("reference")]
    if ref:
        ax.points([x for x, _ in ref], [y for _, y in ref], GREEN, r=6, hollow=True)
    ax.legend([(BLUE, "trial"), (ORANGE, "best so far")] + ([(GREEN, "plain-MEST reference")] if ref else []))
    return ax.svg()


def scatter_svg(rows: list[dict], budget_flops: float | None) -> str:
    """Test accuracy vs training FLOPs (planned) of the completed trials, the budget as a
    vertical line, the Pareto front (fewer FLOPs and higher accuracy) as a line."""
    title = "Test accuracy vs training FLOPs"
    done = [r for r in _done(rows) if r.get("flops")]
    if not done:
        return empty_svg(title, "no completed trial yet")
    xs = [float(r["flops"]) for r in done]
    ys = [100 * float(r["test_acc"]) for r in done]
    xr = (min(xs + ([budget_flops] if budget_flops else [])), max(xs + ([budget_flops] if budget_flops else [])))
    ax = Axes(title, "training FLOPs", "test accuracy (%)", xr, (min(ys), max(ys)))
    front = pareto_front(list(zip(xs, ys)))
    ax.line([xs[i] for i in front], [ys[i] for i in front], ORANGE)
    ax.points(xs, ys, BLUE, tip=[f"#{r['trial']}: {y:.2f}% at {x:.3g} FLOPs" for r, x, y in zip(done, xs, ys)])
    ax.points([xs[i] for i in front], [ys[i] for i in front], ORANGE, r=7, hollow=True)
    ref = [(x, y) for r, x, y in zip(done, xs, ys) if r.get("reference")]
    if ref:
        ax.points([x for x, _ in ref], [y for _, y in ref], GREEN, r=6, hollow=True)
    if budget_flops:
        ax.vline(budget_flops, RED, f"budget {budget_flops:.3g}")
    ax.legend([(BLUE, "trial"), (ORANGE, "Pareto front")] + ([(GREEN, "plain MEST")] if ref else []))
    return ax.svg()


def importances_svg(importances: dict[str, float]) -> str:
    """Optuna's parameter importances as horizontal bars (they sum to 1)."""
    title = "Parameter importances (Optuna, fANOVA)"
    if not importances:
        return empty_svg(title, "needs two completed trials that differ")
    items = sorted(importances.items(), key=lambda kv: -kv[1])
    h = TOP + 26 * len(items) + 20
    bar_left, bar_w = 170, W - 170 - 60
    parts = [f"<rect width='{W}' height='{h}' fill='white'/>",
             f"<text x='{W / 2}' y='18' font-size='13' font-weight='bold' {FONT} text-anchor='middle' "
             f"fill='#222'>{html.escape(title)}</text>"]
    for i, (k, v) in enumerate(items):
        y = TOP + 26 * i
        parts.append(f"<text x='{bar_left - 8}' y='{y + 15}' font-size='12' {FONT} text-anchor='end' "
                     f"fill='#222'>{html.escape(k)}</text>"
                     f"<rect x='{bar_left}' y='{y + 3}' width='{max(1.0, bar_w * v):.1f}' height='16' fill='{BLUE}'/>"
                     f"<text x='{bar_left + bar_w * v + 6:.1f}' y='{y + 15}' font-size='11' {FONT} "
                     f"fill='#333'>{v:.2f}</text>")
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{W}' height='{h}' viewBox='0 0 {W} {h}'>"
            + "".join(parts) + "</svg>")
