"""What every live view shares: the model it watches, version-gated redraws, an empty
state, and the pyqtgraph conventions (growing buffers, clip to view, peak downsampling,
hover read-outs).

Long curves (a run of 100k epochs) are sent to pyqtgraph as a min/max envelope of at most
a few thousand points (``set_long_data``): every spike survives, the data bounds are exact,
and setData no longer copies and scans the whole run each frame. The envelope is finer
over the visible x range, rebuilt when the user zooms or pans, and the hover read-out
reads the full data kept on the item."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QStackedWidget, QVBoxLayout, QWidget

from spfde_gui.model.run_model import RunModel
from spfde_gui.palette import SERIES

pg.setConfigOptions(antialias=False, background="w", foreground="#333", imageAxisOrder="row-major")

PALETTE = SERIES   # the shared series colours (spfde_gui.palette)


def curve(plot: pg.PlotItem, color: str, name: str | None = None, width: float = 1.6,
          style=Qt.SolidLine) -> pg.PlotDataItem:
    """A long-run curve: no symbols, clipped to view; give it data with ``set_long_data``
    (peak envelope, spikes survive)."""
    item = plot.plot([], [], pen=pg.mkPen(color, width=width, style=style), name=name)
    item.setClipToView(True)
    # no pyqtgraph auto-downsampling: set_long_data sends a peak envelope already
    item.setSkipFiniteCheck(True)    # set_long_data drops non-finite points itself
    item.full_xy = None               # the undecimated data (hover, zoom re-decimation)
    item._sent_key = None
    item._range_slot = lambda *_a, it=item: _send(it)
    plot.vb.sigXRangeChanged.connect(item._range_slot)
    return item


def drop_curve(plot: pg.PlotItem, item: pg.PlotDataItem) -> None:
    """Remove a curve made by ``curve`` (and its zoom hook)."""
    try:
        plot.vb.sigXRangeChanged.disconnect(item._range_slot)
    except (RuntimeError, TypeError):
        pass
    plot.removeItem(item)


# Buckets of the envelope over the visible range: one per pixel column of the plot (two
# points, its min and max: all a pixel column can show), within these bounds; parts
# outside the view get fewer.
ENVELOPE_BUCKETS = 2048
MIN_BUCKETS = 512
OFFVIEW_BUCKETS = 256


def envelope_indices(y: np.ndarray, buckets: int) -> np.ndarray:
    """Sorted indices of the first and last points and of each bucket's minimum and maximum
    of ``y`` (all indices when ``y`` is short): the peak-preserving decimation of a curve."""
    n = len(y)
    if n <= 2 * buckets:
        return np.arange(n)
    k = -(-n // buckets)
    m = n // k * k
    block = y[:m].reshape(-1, k)
    a, b = block.argmin(axis=1), block.argmax(axis=1)
    base = np.arange(0, m, k)
    idx = np.empty(2 * len(base) + (2 if m < n else 0), dtype=np.intp)
    idx[0:2 * len(base):2] = base + np.minimum(a, b)
    idx[1:2 * len(base):2] = base + np.maximum(a, b)
    if m < n:
        t = y[m:]
        i, j = m + int(t.argmin()), m + int(t.argmax())
        idx[-2], idx[-1] = min(i, j), max(i, j)
    # the first and last points too: the x extent stays exact and the latest value shows
    head, tail = [0] if idx[0] != 0 else [], [n - 1] if idx[-1] != n - 1 else []
    if head or tail:
        idx = np.concatenate([head, idx, tail]).astype(np.intp)
    return idx


def set_long_data(item: pg.PlotDataItem, x, y) -> None:
    """Show (x, y) on ``item``: non-finite points dropped, decimated to an envelope."""
    x, y = finite_xy(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    item.full_xy = [x, y, None]      # None: not yet known whether x never decreases
    item._sent_key = None
    _send(item)


def _send(item: pg.PlotDataItem) -> None:
    full = item.full_xy
    if full is None:
        return
    x, y, monotonic = full
    n = len(x)
    _mark_points(item, n)
    if n <= 2 * ENVELOPE_BUCKETS:
        key = (id(x), n)
        if key != item._sent_key:
            item._sent_key = key
            item.setData(x, y)
        return
    i0, i1 = 0, n
    vb = item.getViewBox()
    x0, x1 = vb.viewRange()[0] if vb is not None else (-np.inf, np.inf)
    if not (x0 <= x[0] and x1 >= x[-1]) and monotonic is None:
        # the visible range maps to an index range only when x never decreases
        monotonic = full[2] = bool((x[1:] >= x[:-1]).all())
    if monotonic and not (x0 <= x[0] and x1 >= x[-1]):
        i0 = max(0, int(np.searchsorted(x, x0, side="left")) - 1)
        i1 = min(n, int(np.searchsorted(x, x1, side="right")) + 1)
        if i1 - i0 > 0.9 * n:          # (nearly) all in view: one envelope
            i0, i1 = 0, n
        else:                          # quantise so small pans do not resend every time
            q = max(1, (i1 - i0) // 64)
            i0, i1 = i0 // q * q, min(n, -(-i1 // q) * q)
    buckets = ENVELOPE_BUCKETS
    if vb is not None:
        buckets = int(np.clip(vb.width(), MIN_BUCKETS, ENVELOPE_BUCKETS))
    key = (id(x), n, i0, i1, buckets)
    if key == item._sent_key:
        return
    item._sent_key = key
    parts = [i0 + envelope_indices(y[i0:i1], buckets)]
    if i0 > 0:
        parts.insert(0, envelope_indices(y[:i0], OFFVIEW_BUCKETS))
    if i1 < n:
        parts.append(i1 + envelope_indices(y[i1:], OFFVIEW_BUCKETS))
    idx = parts[0] if len(parts) == 1 else np.concatenate(parts)
    item.setData(x[idx], y[idx])


# Up to this many points a curve also draws its points: a run's first epochs (one point
# draws no line at all) and short runs read better; long curves stay plain lines.
FEW_POINTS = 40


def _mark_points(item: pg.PlotDataItem, n: int) -> None:
    want = "o" if 0 < n <= FEW_POINTS else None
    if item.opts.get("symbol") == want:
        return
    if want is None:
        item.setSymbol(None)
    else:
        color = item.opts["pen"].color()
        item.setSymbol(want)
        item.setSymbolSize(5)
        item.setSymbolPen(None)
        item.setSymbolBrush(color)


def full_data(item: pg.PlotDataItem) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The data behind a curve, undecimated."""
    if getattr(item, "full_xy", None) is not None:
        return item.full_xy[0], item.full_xy[1]
    return item.xData, item.yData


def finite_xy(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop points where either coordinate is NaN (e.g. epochs without a test pass)."""
    if np.isfinite(x.sum() + y.sum()):   # one pass each: the usual case, nothing to drop
        return x, y
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def make_plot(layout: pg.GraphicsLayoutWidget, row: int, col: int, title: str, xlabel: str,
              ylabel: str, legend: bool = True, legend_bottom: bool = False,
              legend_left: bool = False) -> pg.PlotItem:
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
        # (curves rising from the origin, e.g. cumulative FLOPs, leave the top left free)
        p.addLegend(offset=(8 if legend_left else -8, -8 if legend_bottom else 8), labelTextSize="8pt",
                    brush=pg.mkBrush(255, 255, 255, 200))
    return p


def keep_headroom(plot: pg.PlotItem) -> None:
    """Let ``apply_headroom`` keep room above the data for the legend, until the user zooms."""
    plot._headroom = True
    plot.vb.sigRangeChangedManually.connect(lambda *_a: setattr(plot, "_headroom", False))


def apply_headroom(plot: pg.PlotItem, *series, top: float = 0.45, bottom: float = 0.05) -> None:
    """y range = the data plus ``top`` of its span above it (``bottom`` below): a legend in
    that corner covers no curve (flat live lines included)."""
    if not getattr(plot, "_headroom", False):
        return
    vals = [np.asarray(s, float) for s in series if s is not None and len(s)]
    vals = [v[np.isfinite(v)] for v in vals]
    vals = [v for v in vals if v.size]
    if not vals:
        return
    lo, hi = min(float(v.min()) for v in vals), max(float(v.max()) for v in vals)
    span = hi - lo or abs(hi) * 0.1 or 1.0
    plot.setYRange(lo - bottom * span, hi + top * span, padding=0)


class HoverReadout:
    """A vertical crosshair and the nearest values of every curve under the mouse."""

    def __init__(self, plot: pg.PlotItem, xfmt=lambda x: f"{x:.4g}"):
        self.plot = plot
        self.xfmt = xfmt
        self.line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#999", style=Qt.DashLine))
        self.label = pg.TextItem(anchor=(0, 0), color="#222", fill=pg.mkBrush(255, 255, 255, 210))
        self.line.hide()
        self.label.hide()
        self.line.hover_overlay = self.label.hover_overlay = True    # never in a saved figure
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
            xs, ys = full_data(item)   # the true values, not the envelope on screen
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
        self._drawn_key = None
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
        self._drawn_key = None
        self.refresh()

    def refresh(self, force: bool = False) -> bool:
        """Redraw if the model changed since the last draw; True when it drew."""
        m = self.model
        version = m.version if m is not None else -2
        if not force and version == self._drawn_version:
            return False
        self._drawn_version = version
        # most version bumps are progress events, which no view draws: skip those frames
        key = self.data_key(m) if m is not None else None
        if not force and key is not None and key == self._drawn_key:
            return False
        self._drawn_key = key
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
    def data_key(self, m: RunModel) -> tuple:
        """What the view draws from, in brief: an unchanged key means nothing to redraw.
        The last epoch row's time and test accuracy tell a resumed run's rewritten rows
        from the ones they replaced."""
        n = m.n_epochs
        last = m.column("time")[-1:].tobytes() + m.column("test_acc")[-1:].tobytes()
        return (id(m), n, last, m.status, len(m.block_names), len(m.freeze_events),
                len(m.unfreeze_events), len(m.sieve_updates), id(m.freeze_plan), id(m.projected),
                id(m.config), id(m.sieve_updates[-1]) if m.sieve_updates else None, m.start_phase)

    def has_data(self, m: RunModel) -> bool:
        return m.n_epochs > 0

    def empty_text(self, m: RunModel | None) -> str:
        if m is None:
            return "No run yet.\nLaunch one from the configuration, or open a past run."
        if m.status == "starting":
            return f"The engine is starting: {m.start_phase or 'starting'}…\nStop works already."
        return "Waiting for the first epoch…" if m.status == "running" else "This run recorded no epochs."

    def redraw(self, m: RunModel) -> None:
        raise NotImplementedError
