"""FLOPs savings: cumulative FLOPs saved by sparsity, freezing and sieving against the
dense equivalent, and each technique's achieved saving against its target."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from engine.run.payloads import SOURCES, cumulative_spent, saving_shares
from spfde_gui.fmt import fmt_flops
from spfde_gui.model.run_model import RunModel
from spfde_gui.palette import SOURCE_COLORS, SOURCE_LABELS
from spfde_gui.report.export_figure import install_save_actions
from spfde_gui.views.base import HoverReadout, RunView, curve, make_plot, set_long_data

GREY_DENSE = "#555555"


def achieved_fractions(m: RunModel) -> dict[str, float]:
    """Each technique's saving in the terms its target is set in (engine.run.payloads.
    saving_shares, the plan's own formula), from the run's latest ledger figures."""
    over = _last(m, "flops_overhead")
    flops = {"spent": _last(m, "flops_spent"), "dense": _last(m, "flops_dense"),
             "saved": {k: _last(m, "saved_" + k) for k in SOURCES},
             "overhead": {"all": over if over == over else 0.0}}
    shares = saving_shares(flops)
    return {k: (float("nan") if v is None else v) for k, v in shares.items()}


def targets(m: RunModel) -> dict[str, float]:
    c = m.config or {}
    g = lambda sec, k: float((c.get(sec) or {}).get(k) or 0.0)
    return {"sparsity": g("sparsity", "target"), "freeze": g("freeze", "target"), "sieve": g("sieve", "ratio")}


class FlopsView(RunView):
    title = "FLOPs savings"

    def __init__(self, parent=None):
        super().__init__(parent)
        box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        self.summary = QLabel()
        self.summary.setObjectName("flops:summary")
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("padding: 4px;")
        self.summary.setTextInteractionFlags(Qt.TextSelectableByMouse)
        lay.addWidget(self.summary)
        self.glw = pg.GraphicsLayoutWidget()
        self.save_figure = install_save_actions(self, self.glw)   # right-click: Save figure…
        self.cum = make_plot(self.glw, 0, 0, "Cumulative training FLOPs", "epoch", "training FLOPs",
                             legend_left=True)
        self.c_dense = curve(self.cum, GREY_DENSE, "dense equivalent", style=Qt.DashLine)
        self.c_spent = curve(self.cum, SOURCE_COLORS["spent"], "spent", width=2)
        self.c_saved = {k: curve(self.cum, SOURCE_COLORS[k], SOURCE_LABELS[k]) for k in SOURCES}
        self.c_proj = curve(self.cum, SOURCE_COLORS["spent"], "projected spent", width=1, style=Qt.DotLine)
        self.hover = HoverReadout(self.cum)
        self.bars = make_plot(self.glw, 0, 1, "Saving achieved vs target", "", "% of the reference cost", legend=True)
        self.glw.ci.layout.setColumnStretchFactor(0, 3)
        self.glw.ci.layout.setColumnStretchFactor(1, 2)
        self.bars.getAxis("bottom").setTicks([[(i, s) for i, s in enumerate(SOURCES)]])
        self.bars.setMouseEnabled(x=False, y=False)
        self.bar_done = pg.BarGraphItem(x=[], height=[], width=0.38, brushes=[], name="achieved")
        self.bar_goal = pg.BarGraphItem(x=[], height=[], width=0.38, brush=pg.mkBrush(0, 0, 0, 0),
                                        pen=pg.mkPen("#333", width=1.5, style=Qt.DashLine), name="target")
        self.bars.addItem(self.bar_done)
        self.bars.addItem(self.bar_goal)
        lay.addWidget(self.glw, 1)
        self.set_content(box)
        self._proj_src = None

    def has_data(self, m: RunModel) -> bool:
        if m.n_epochs == 0:
            return False
        dense = m.column("flops_dense")
        return dense[-1] == dense[-1] or bool(np.isfinite(dense).any())

    def redraw(self, m: RunModel) -> None:
        ep = m.epoch_axis()
        set_long_data(self.c_dense, ep, m.column("flops_dense"))
        set_long_data(self.c_spent, ep, m.column("flops_spent"))
        for k, c in self.c_saved.items():
            set_long_data(c, ep, m.column("saved_" + k))
        if self._proj_src != (id(m), id(m.projected)):   # fixed for a run: not every frame
            self._proj_src = (id(m), id(m.projected))
            proj = _projected_cumulative(m.projected)
            if proj is not None:
                set_long_data(self.c_proj, np.arange(1, len(proj) + 1, dtype=float), proj)
            else:
                set_long_data(self.c_proj, [], [])
        got, goal = achieved_fractions(m), targets(m)
        xs = np.arange(len(SOURCES), dtype=float)
        self.bar_done.setOpts(x=xs - 0.2, height=[100 * np.nan_to_num(got[k]) for k in SOURCES],
                              brushes=[pg.mkBrush(SOURCE_COLORS[k]) for k in SOURCES])
        self.bar_goal.setOpts(x=xs + 0.2, height=[100 * goal[k] for k in SOURCES])
        dense, spent = _last(m, "flops_dense"), _last(m, "flops_spent")
        parts = [f"Spent <b>{fmt_flops(spent)}</b> of a dense-equivalent {fmt_flops(dense)}"
                 + (f" (<b>{100 * spent / dense:.1f}%</b>)" if dense else "") + "."]
        for k in SOURCES:
            parts.append(f"{SOURCE_LABELS[k].capitalize()}: {fmt_flops(_last(m, 'saved_' + k))} "
                         f"({_pct(got[k])} achieved, target {100 * goal[k]:.1f}%).")
        # spent = dense - saved + overhead (RigL's dense gradients, mask scoring, analyses):
        # name the overhead, or the figures above do not add up
        over = spent - dense + sum(np.nan_to_num(_last(m, "saved_" + k)) for k in SOURCES)
        if dense and over > 1e-9 * dense:
            parts.append(f"Overhead on top of the sparse training: {fmt_flops(over)} "
                         f"({100 * over / dense:.1f}% of dense, included in the spent).")
        self.summary.setText(" ".join(parts))


def _last(m: RunModel, name: str) -> float:
    """m.last without scanning the column when the last row has the value (the usual case)."""
    c = m.column(name)
    if len(c) and c[-1] == c[-1]:
        return float(c[-1])
    return m.last(name)


def _pct(x: float) -> str:
    return "–" if x != x else f"{100 * x:.1f}%"


def _projected_cumulative(projected: dict | None) -> np.ndarray | None:
    """Cumulative projected spent FLOPs per epoch (engine.run.payloads.cumulative_spent: the
    segments plus the analyses' probes, ending at the figure the preview and the plan show)."""
    try:
        cum = cumulative_spent(projected)
    except (KeyError, TypeError, ValueError):
        return None
    return np.asarray(cum) if cum else None
