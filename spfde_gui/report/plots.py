"""The report's figures, drawn with pyqtgraph off screen and returned as SVG bytes.

Each figure is laid out at its printed size, the width of a double LaTeX column (7.1 in),
with fonts in points (``export_figure``), and written as SVG by Qt's SVG generator: vectors
and text, which the HTML embeds, the PDF draws as vectors and ``figures/`` holds as SVG,
PDF and PNG. pyqtgraph needs a QApplication (``ensure_app`` provides one, offscreen is
fine). Each figure is a function of the run model only; a figure with no data is left out
(the caller says why).
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from spfde_gui.report import export_figure as EF

# The report's figures are double-column figures; sizes in scene pixels (EF.DPI per inch).
PAPER = EF.DOUBLE
FIG_W, FIG_H = round(PAPER.width_in * EF.DPI), round(PAPER.height_in * EF.DPI)
MAX_H = round(8.5 * EF.DPI)        # a tall timeline or heat map still fits a page
# The window's palette (spfde_gui.palette): a source or series has one colour in both.
from spfde_gui.fmt import shown_epoch  # noqa: E402
from spfde_gui.palette import ACTIVE_BLOCK, BLUE, FROZEN, GREY, ORANGE, SIEVE_COLORS, TEST, TRAIN  # noqa: E402  # noqa: E402
from spfde_gui.palette import SOURCE_COLORS as SOURCE_COLOURS  # noqa: E402


def ensure_app():
    """The running QApplication, or a new one (widgets need one; offscreen is fine)."""
    from PySide6.QtWidgets import QApplication
    app = QApplication.instance()
    if app is None:
        app = QApplication(["spfde-gui-report"])
    elif not isinstance(app, QApplication):
        raise RuntimeError("report plots need a QApplication, but a QGuiApplication/QCoreApplication is running")
    return app


# pyqtgraph's options are global: set for the figures and restored afterwards, so an export
# from the window never changes the look of its live plots.
REPORT_OPTIONS = {"antialias": True, "background": "w", "foreground": "#333333"}


@contextmanager
def _report_options():
    import pyqtgraph as pg
    old = {k: pg.getConfigOption(k) for k in REPORT_OPTIONS}
    pg.setConfigOptions(**REPORT_OPTIONS)
    try:
        yield
    finally:
        pg.setConfigOptions(**old)


def _pg():
    import pyqtgraph as pg
    return pg


def _layout(pg):
    from PySide6.QtGui import QFont
    win = pg.GraphicsLayoutWidget()
    win.resize(FIG_W, FIG_H)
    win.ci.setContentsMargins(4, 4, 10, 4)
    win.ci.setSpacing(6)
    font = QFont()
    font.setPixelSize(round(EF.px(PAPER.tick_pt)))
    return win, font


def _style(plot, font, title: str, xlabel: str, ylabel: str):
    if len(title) > 60 and " (" in title:
        # the title's width is the plot's minimum width: a long explanation goes below it
        title = title.replace(" (", "<br>(", 1)
    plot.setTitle(f"<span style='font-size:{EF.px(PAPER.title_pt):.1f}px; color:#222'>{title}</span>")
    for side, label in (("bottom", xlabel), ("left", ylabel)):
        ax = plot.getAxis(side)
        ax.setTickFont(font)
        ax.setPen("#888888")
        ax.setTextPen("#444444")
        ax.setLabel(f"<span style='font-size:{EF.px(PAPER.label_pt):.1f}px'>{label}</span>")
    plot.showGrid(x=True, y=True, alpha=0.15)


def _legend(plot, left: bool = False):
    leg = plot.addLegend(offset=(6 if left else -6, 6), labelTextSize=f"{EF.px(PAPER.legend_pt):.1f}px",
                         labelTextColor="#333333", verSpacing=-4)
    leg.setBrush((255, 255, 255, 220))
    leg.setPen("#cccccc")
    return leg


def _export(win, title: str = "") -> bytes:
    """The figure as SVG bytes (the widget is never shown: its layout is sized by hand)."""
    size = win.size()
    try:
        return EF.render_svg(win.ci, size.width(), size.height(), title)
    finally:
        win.close()
        win.deleteLater()


def _headroom(plot, *series, top: float = 0.32):
    """Room above the data for the legend, so it never hides a curve."""
    vals = np.concatenate([np.asarray(v, float).ravel() for v in series]) if series else np.array([])
    vals = vals[np.isfinite(vals)]
    if not vals.size:
        return
    lo, hi = float(vals.min()), float(vals.max())
    span = hi - lo or abs(hi) or 1.0
    plot.setYRange(lo - 0.04 * span, hi + top * span, padding=0)


def _finite(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def _line(pg, plot, x, y, colour, name, dash=False, symbol=True):
    x, y = _finite(np.asarray(x, float), np.asarray(y, float))
    if not len(x):
        return False
    from PySide6.QtCore import Qt
    pen = pg.mkPen(colour, width=1.5, style=Qt.DashLine if dash else Qt.SolidLine)
    few = len(x) <= 60 and symbol
    plot.plot(x, y, pen=pen, name=name, symbol="o" if few else None, symbolSize=4,
              symbolBrush=colour, symbolPen=None)
    return True


def percent(values: np.ndarray) -> np.ndarray:
    """Accuracies as percentages (the engine records fractions)."""
    v = np.asarray(values, float)
    fin = v[np.isfinite(v)]
    return v * 100.0 if fin.size and fin.max() <= 1.0 + 1e-9 else v


def accuracy_loss(model) -> bytes | None:
    """Accuracy and loss against epoch, train and test, side by side."""
    if model.n_epochs == 0:
        return None
    pg = _pg()
    win, font = _layout(pg)
    ep = model.epoch_axis()       # epochs counted from 1, as everywhere
    acc = win.addPlot()
    _style(acc, font, "Accuracy", "epoch", "accuracy (%)")
    _legend(acc)
    tr_acc, te_acc = percent(model.column("train_acc")), percent(model.column("test_acc"))
    _line(pg, acc, ep, tr_acc, TRAIN, "train", dash=True)
    _line(pg, acc, ep, te_acc, TEST, "test")
    _headroom(acc, tr_acc, te_acc)
    loss = win.addPlot()
    _style(loss, font, "Loss", "epoch", "cross-entropy")
    _legend(loss)
    _line(pg, loss, ep, model.column("train_loss"), TRAIN, "train", dash=True)
    _line(pg, loss, ep, model.column("test_loss"), TEST, "test")
    _headroom(loss, model.column("train_loss"), model.column("test_loss"))
    return _export(win)


def accuracy_vs_flops(model) -> bytes | None:
    """Test (or train) accuracy against cumulative training FLOPs, with the dense-equivalent budget."""
    if model.n_epochs == 0:
        return None
    spent = model.column("flops_spent")
    test = percent(model.column("test_acc"))
    use_test = np.isfinite(test).any()
    acc = test if use_test else percent(model.column("train_acc"))
    if not (np.isfinite(spent) & np.isfinite(acc)).any():
        return None
    pg = _pg()
    win, font = _layout(pg)
    plot = win.addPlot()
    _style(plot, font, f"{'Test' if use_test else 'Train'} accuracy against cumulative training FLOPs",
           "training FLOPs", "accuracy (%)")
    _legend(plot, left=True)
    _line(pg, plot, spent, acc, BLUE, "this run (FLOPs spent)")
    _headroom(plot, acc)
    dense = model.column("flops_dense")
    _line(pg, plot, dense, acc, GREY, "same epochs at dense cost", dash=True)
    plot.getAxis("bottom").enableAutoSIPrefix(True)
    return _export(win)


def flops_by_source(model) -> bytes | None:
    """Per-epoch training FLOPs, stacked: spent, then saved by sparsity, freezing and sieving."""
    if model.n_epochs == 0:
        return None
    ep = model.epoch_axis().astype(float)
    parts = {}
    for key, col in (("spent", "flops_spent"), ("sparsity", "saved_sparsity"),
                     ("freeze", "saved_freeze"), ("sieve", "saved_sieve")):
        cum = np.nan_to_num(model.column(col).astype(float))
        parts[key] = np.diff(np.concatenate([[0.0], cum]))
    if not any(np.abs(v).sum() > 0 for v in parts.values()):
        return None
    pg = _pg()
    win, font = _layout(pg)
    plot = win.addPlot()
    _style(plot, font, "Training FLOPs per epoch by source (bar height = dense equivalent)", "epoch", "FLOPs")
    _legend(plot)
    labels = {"spent": "spent", "sparsity": "saved by sparsity", "freeze": "saved by freezing",
              "sieve": "saved by sieving"}
    base = np.zeros_like(ep)
    width = 0.7
    for key, vals in parts.items():
        if not np.any(vals > 0):
            continue
        colour = SOURCE_COLOURS[key]
        bars = pg.BarGraphItem(x=ep, y0=base, height=vals, width=width, brush=colour,
                               pen=pg.mkPen("w", width=0.5), name=labels[key])
        plot.addItem(bars)
        base = base + vals
    plot.getAxis("left").enableAutoSIPrefix(True)
    plot.setYRange(0, float(base.max()) * 1.32 if base.max() > 0 else 1, padding=0)
    return _export(win)


def freeze_timeline(model, planned: dict[str, int] | None) -> bytes | None:
    """Blocks x epochs: frozen (filled) against the plan (outlined start)."""
    frozen = _frozen_matrix(model)
    names = list(model.block_names)
    if frozen is None or not names or not frozen.any() and not planned:
        return None
    pg = _pg()
    win, font = _layout(pg)
    h = max(FIG_H, 48 + 15 * len(names))
    win.resize(FIG_W, min(h, MAX_H))
    plot = win.addPlot()
    _style(plot, font, "Freeze timeline (filled: frozen; marker: planned freeze epoch)", "epoch", "")
    epochs = model.epoch_axis().astype(float)
    n_blocks = len(names)
    # Row 0 (top) is the first block; y runs downwards in the drawing order.
    for b in range(n_blocks):
        y = n_blocks - 1 - b
        plot.addItem(pg.BarGraphItem(x0=[epochs.min() - 0.5 if len(epochs) else 0], y0=[y - 0.35],
                                     width=[len(epochs)], height=[0.7], brush=ACTIVE_BLOCK, pen=None))
        row = frozen[b]
        xs = epochs[row[: len(epochs)]] if len(epochs) else np.array([])
        if xs.size:
            plot.addItem(pg.BarGraphItem(x=xs, y0=np.full(xs.size, y - 0.35), width=1.0, height=0.7,
                                         brush=FROZEN, pen=None))
        if planned and names[b] in planned and planned[names[b]] is not None:
            plot.plot([planned[names[b]] + 1], [y], pen=None, symbol="t", symbolSize=8,
                      symbolBrush=None, symbolPen=pg.mkPen(ORANGE, width=1.5))
    ax = plot.getAxis("left")
    ax.setTicks([[(n_blocks - 1 - b, names[b]) for b in range(n_blocks)]])
    ax.setStyle(tickLength=0)
    plot.showGrid(x=True, y=False, alpha=0.15)
    plot.setYRange(-0.6, n_blocks - 0.4, padding=0)
    plot.getViewBox().setMouseEnabled(False, False)
    return _export(win)


def _frozen_matrix(model) -> np.ndarray | None:
    """frozen_matrix() as bool [block, epoch] (accepts either orientation)."""
    try:
        m = np.asarray(model.frozen_matrix())
    except Exception:
        return None
    if m.ndim != 2 or m.size == 0:
        return None
    nb = len(model.block_names)
    if m.shape[0] != nb and m.shape[1] == nb:
        m = m.T
    return m.astype(bool)


def sieve_sizes(model) -> bytes | None:
    """Active and removed set sizes at each sieve update."""
    ups = list(model.sieve_updates)
    if not ups:
        return None
    pg = _pg()
    win, font = _layout(pg)
    plot = win.addPlot()
    _style(plot, font, "Data sieve: active, removed, still waiting", "epoch", "samples")
    _legend(plot)
    ep = np.array([u.get("epoch", np.nan) for u in ups], float) + 1   # the epoch it starts
    series = []
    for key, colour, name in (("active_size", SIEVE_COLORS["active_size"], "active"),
                              ("removed_size", SIEVE_COLORS["removed_size"], "removed"),
                              ("initial_waiting", SIEVE_COLORS["initial_waiting"], "still waiting")):
        vals = np.array([u.get(key, np.nan) if u.get(key) is not None else np.nan for u in ups], float)
        _line(pg, plot, ep, vals, colour, name, dash=key == "initial_waiting")
        series.append(vals)
    _headroom(plot, *series, top=0.45)
    hist = ups[-1].get("histogram") or {}
    edges, counts = hist.get("edges"), hist.get("counts")
    if edges and counts and len(edges) == len(counts) + 1:
        hp = win.addPlot()
        _style(hp, font, f"Forgetting counts, active set (epoch {shown_epoch(ups[-1].get('epoch'))})",
               "forgetting count", "samples")
        e = np.asarray(edges, float)
        if np.allclose(np.diff(e), 1) and len(e) <= 31:
            # integer counts: one labelled tick per bar, never half steps
            hp.getAxis("bottom").setTicks([[(float(v) + 0.45, str(int(v))) for v in e[:-1]], []])
        hp.addItem(pg.BarGraphItem(x0=e[:-1], width=np.diff(e) * 0.9, y0=0, height=np.asarray(counts, float),
                                   brush=SIEVE_COLORS["histogram"], pen=None))
    return _export(win)
