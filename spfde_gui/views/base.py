"""What every live view shares: the model it watches, version-gated redraws, an empty
state, and the pyqtgraph conventions (growing buffers, clip to view, peak downsampling,
hover read-outs)."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QStackedWidget, QVBoxLayout, QWidget

from spfde_gui.run_model import RunModel

pg.setConfigOptions(antialias=False, background="w", foreground="#333", imageAxisOrder="row-major")

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22"]


def curve(plot: pg.PlotItem, color: str, name: str | None = None, width: float = 1.6,
          style=Qt.SolidLine) -> pg.PlotDataItem:
    """A long-run curve: no symbols, clipped to view, peak-downsampled (spikes survive)."""
    item = plot.plot([], [], pen=pg.mkPen(color, width=width, style=style), name=name)
    item.setClipToView(True)
    item.setDownsampling(auto=True, method="peak")
    item.setSkipFiniteCheck(True)
    return item


def finite_xy(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop points where either coordinate is NaN (e.g. epochs without a test pass)."""
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.all():
        return x, y
    return x[ok], y[ok]


def make_plot(layout: pg.GraphicsLayoutWidget, row: int, col: int, title: str, xlabel: str,
              ylabel: str, legend: bool = True, legend_bottom: bool = False) -> pg.PlotItem:
    p = layout.addPlot(row=row, col=col, title=title)
    # FLOPs axes keep SI prefixes (GFLOPs, TFLOPs); epochs, %, samples read better plain
    for side, text in (("bottom", xlabel), ("left", ylabel)):
        if text.endswith("FLOPs"):
            p.setLabel(side, text[:-5].strip() or None, units="FLOPs")
        else:
            p.setLabel(side, text)
            p.getAxis(side).enableAutoSIPrefix(False)
    p.showGrid(x=True, y=True, alpha=0.2)
    p.setMenuEnabled(True)
    if legend:
        # rising curves (accuracy) leave the bottom right free, falling ones the top right
        p.addLegend(offset=(-8, -8) if legend_bottom else (-8, 8), labelTextSize="8pt",
                    brush=pg.mkBrush(255, 255, 255, 200))
    return p


class HoverReadout:
    """A vertical crosshair and the nearest values of every curve under the mouse."""

    def __init__(self, plot: pg.PlotItem, xfmt=lambda x: f"{x:.4g}"):
        self.plot = plot
        self.xfmt = xfmt
        self.line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#999", style=Qt.DashLine))
        self.label = pg.TextItem(anchor=(0, 0), color="#222", fill=pg.mkBrush(255, 255, 255, 210))
        self.line.hide()
        self.label.hide()
        plot.addItem(self.line, ignoreBounds=True)
        plot.addItem(self.label, ignoreBounds=True)
        self._proxy = pg.SignalProxy(plot.scene().sigMouseMoved, rateLimit=30, slot=self._moved)

    def _moved(self, args) -> None:
        pos = args[0]
        vb = self.plot.vb
        if not self.plot.sceneBoundingRect().contains(pos):
            self.line.hide()
            self.label.hide()
            return
        x = vb.mapSceneToView(pos).x()
        lines = []
        for item in self.plot.listDataItems():
            xs, ys = item.xData, item.yData
            if xs is None or len(xs) == 0 or item.name() is None:
                continue
            i = int(np.clip(np.searchsorted(xs, x), 0, len(xs) - 1))
            if i > 0 and abs(xs[i - 1] - x) < abs(xs[i] - x):
                i -= 1
            lines.append(f"{item.name()}: {ys[i]:.4g} @ {self.xfmt(xs[i])}")
        if not lines:
            self.label.hide()
            return
        self.line.setPos(x)
        self.line.show()
        (x0, x1), (y0, y1) = vb.viewRange()
        self.label.setText("\n".join(lines))
        self.label.setPos(x0, y1)
        self.label.show()


class RunView(QWidget):
    """Base: a stacked widget holding an empty-state message and the content."""

    title = "View"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model: RunModel | None = None
        self._drawn_version = -1
        self._stack = QStackedWidget()
        self.empty_label = QLabel()
        self.empty_label.setAlignment(Qt.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setStyleSheet("color: #777; font-size: 14px; padding: 24px;")
        self._stack.addWidget(self.empty_label)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self._stack)
        self.set_empty(self.empty_text(None))

    def set_content(self, w: QWidget) -> None:
        self._stack.addWidget(w)

    def set_model(self, model: RunModel | None) -> None:
        self.model = model
        self._drawn_version = -1
        self.refresh()

    def refresh(self, force: bool = False) -> bool:
        """Redraw if the model changed since the last draw; True when it drew."""
        m = self.model
        version = m.version if m is not None else -2
        if not force and version == self._drawn_version:
            return False
        self._drawn_version = version
        if m is None or not self.has_data(m):
            self.set_empty(self.empty_text(m))
        else:
            self._stack.setCurrentIndex(1)
            self.redraw(m)
        return True

    def is_empty(self) -> bool:
        return self._stack.currentIndex() == 0

    def set_empty(self, text: str) -> None:
        self.empty_label.setText(text)
        self._stack.setCurrentIndex(0)

    # subclasses ---------------------------------------------------------------
    def has_data(self, m: RunModel) -> bool:
        return m.n_epochs > 0

    def empty_text(self, m: RunModel | None) -> str:
        if m is None:
            return "No run yet.\nLaunch one from the configuration, or open a past run."
        return "Waiting for the first epoch…" if m.status == "running" else "This run recorded no epochs."

    def redraw(self, m: RunModel) -> None:
        raise NotImplementedError
