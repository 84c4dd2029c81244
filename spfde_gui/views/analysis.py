"""The paper's Section 3 analyses of a run (``analysis`` events): heat maps of layers x
epochs for the CKA of each block's output and the structural similarity of each sparse
layer's top-half weights, and the blocks' gradient norms over time, with the epochs at
which blocks actually froze drawn on all three (docs/layer-freezing.md)."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from spfde_gui.model import analysis_data as AD
from spfde_gui.model.run_model import RunModel
from spfde_gui.report.export_figure import install_save_actions
from spfde_gui.views.base import PALETTE, RunView

NAN_INDEX = 255


def _lut() -> np.ndarray:
    lut = np.zeros((256, 4), dtype=np.uint8)
    lut[:255] = pg.colormap.get("viridis").getLookupTable(nPts=255, alpha=True)
    lut[NAN_INDEX] = (235, 235, 235, 255)   # not measured (yet)
    return lut


def label_width(names: list[str]) -> int:
    return 12 + 7 * max((len(n) for n in names), default=4)


def to_indices(mat: np.ndarray) -> tuple[np.ndarray, float]:
    """A [lo, 1] value matrix as LUT indices (NaN -> NAN_INDEX); lo adapts to the data in
    steps of 0.1 so small differences near 1 stay visible."""
    finite = mat[np.isfinite(mat)]
    lo = float(np.floor(min(finite.min(), 0.9) * 10) / 10) if finite.size else 0.0
    lo = min(lo, 0.9)
    idx = np.full(mat.shape, NAN_INDEX, dtype=np.uint8)
    ok = np.isfinite(mat)
    idx[ok] = np.clip(np.round((mat[ok] - lo) / (1.0 - lo) * 254), 0, 254).astype(np.uint8)
    return idx, lo


class _Heat:
    def __init__(self, glw: pg.GraphicsLayoutWidget, row: int, title: str):
        self.title = title
        self.plot = glw.addPlot(row=row, col=0, title=title)
        self.plot.setLabel("bottom", "epoch")
        self.plot.invertY(True)
        self.plot.setMouseEnabled(x=True, y=False)
        self.img = pg.ImageItem()
        self.img.setLookupTable(_lut())
        self.img.setLevels([0, 255])
        self.plot.addItem(self.img)
        self.marks = pg.ScatterPlotItem(symbol="t2", size=11, pen=pg.mkPen("#d62728", width=1.5),
                                        brush=pg.mkBrush("#ffffff"))
        self.plot.addItem(self.marks)
        self.values: np.ndarray | None = None
        self.names: list[str] = []
        self.lo = 0.0

    def set(self, names: list[str], mat: np.ndarray, marks: list[tuple[int, int]]) -> None:
        if mat.ndim != 2 or 0 in mat.shape:
            # nothing measured yet (a run stopped after epoch 1, an engine just started):
            # ImageItem.setRect divides by the image's size, so draw no image at all
            self.values, self.names = None, list(names)
            self.img.clear()
            self.marks.setData([], [])
            self.plot.setRange(xRange=(0.5, 1.5), yRange=(0, max(len(names), 1)), padding=0)
            self.plot.setTitle(f"{self.title} (not measured yet)")
            return
        idx, self.lo = to_indices(mat)
        self.values, self.names = mat, list(names)
        self.img.setImage(idx, autoLevels=False, levels=[0, 255])
        w, h = max(mat.shape[1], 1), max(mat.shape[0], 1)
        # column e (events count from 0) is centred on e + 1: epochs as the other views show them
        self.img.setRect(0.5, 0, w, h)
        self.plot.vb.setLimits(xMin=0.5, xMax=w + 0.5, yMin=0, yMax=h)
        self.plot.setRange(xRange=(0.5, w + 0.5), yRange=(0, h), padding=0)
        step = max(1, -(-len(names) // 12))   # at most 12 labels: the view may be short
        axis = self.plot.getAxis("left")
        axis.setTicks([[(i + 0.5, n) for i, n in enumerate(names) if i % step == 0]])
        axis.setWidth(label_width(names))   # labels wider than the axis are not drawn at all
        # a triangle at the left edge of the first frozen epoch, on the block's rows
        self.marks.setData([e + 0.5 for e, _ in marks], [r + 0.5 for _, r in marks])
        # the key (grey, ▶) is in the line above the plots: a long title sets the plot's minimum
        # width and pushed the right edge out of a 1440-pixel window
        self.plot.setTitle(f"{self.title} (colour {self.lo:.1f} → 1)")

    def value_at(self, x: float, y: float) -> str | None:
        if self.values is None:
            return None
        e, r = int(np.floor(x - 0.5)), int(np.floor(y))
        if 0 <= r < self.values.shape[0] and 0 <= e < self.values.shape[1]:
            v = self.values[r, e]
            return f"{self.names[r]} · epoch {e + 1}: " + ("not measured" if not np.isfinite(v) else f"{v:.4f}")
        return None


_GRAD_TITLES = {
    "differences": "Gradient-norm change between epochs, |g(e) − g(e−1)| per block (Fig. 3b)",
    "norms": "Raw mean gradient norm per block (conv and linear weights)",
}


class AnalysisView(RunView):
    title = "Analyses"

    def __init__(self, parent=None):
        super().__init__(parent)
        box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.info.setStyleSheet("padding: 4px;")
        top.addWidget(self.info, 1)
        self.similarity_kind = QComboBox()
        self.similarity_kind.setObjectName("analysis:similarity")
        for label, kind in (("vs previous measurement", "mask_similarity"),
                            ("vs final mask (Fig. 1a)", "similarity_to_final"),
                            ("block mean", "block_mask_similarity")):
            self.similarity_kind.addItem(label, kind)
        self.similarity_kind.currentIndexChanged.connect(lambda _i: self.refresh(force=True))
        top.addWidget(QLabel("mask similarity:"))
        top.addWidget(self.similarity_kind)
        # Fig. 3b plots how much each layer's gradient norm changes between epochs; the raw
        # norms are kept as a second choice, named as such
        self.grad_kind = QComboBox()
        self.grad_kind.setObjectName("analysis:grad")
        self.grad_kind.addItem("change between epochs (Fig. 3b)", "differences")
        self.grad_kind.addItem("raw norms", "norms")
        self.grad_kind.currentIndexChanged.connect(lambda _i: self.refresh(force=True))
        top.addWidget(QLabel("gradient norm:"))
        top.addWidget(self.grad_kind)
        lay.addLayout(top)
        self.glw = pg.GraphicsLayoutWidget()
        self.save_figure = install_save_actions(self, self.glw)   # right-click: Save figure…
        self.cka = _Heat(self.glw, 0, "CKA of block outputs with the previous measurement")
        self.sim = _Heat(self.glw, 1, "Structural similarity of the top-half weights")
        self.grad = self.glw.addPlot(row=2, col=0, title=_GRAD_TITLES["differences"])
        self.grad.setLogMode(y=True)
        self.grad.setLabel("bottom", "epoch")
        # top left: Fig. 3b has no value at the first epoch, so the corner is free of curves
        self.grad.addLegend(offset=(10, 10), brush=pg.mkBrush(255, 255, 255, 215))
        self.sim.plot.setXLink(self.cka.plot)
        self.grad.setXLink(self.cka.plot)
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._lines: list[pg.InfiniteLine] = []
        self.hover = pg.TextItem(color="#222", fill=pg.mkBrush(255, 255, 255, 220))
        self.hover.hover_overlay = True     # never in a saved figure
        self._proxy = pg.SignalProxy(self.glw.scene().sigMouseMoved, rateLimit=30, slot=self._moved)
        lay.addWidget(self.glw, 1)
        self.set_content(box)

    def data_key(self, m: RunModel) -> tuple:
        return (id(m), len(m.analysis_events), len(m.freeze_events), m.status,
                id(m.analysis_events[-1]) if m.analysis_events else None)

    def has_data(self, m: RunModel) -> bool:
        return AD.has_analysis(m)

    def empty_text(self, m: RunModel | None) -> str:
        if m is None or m.status == "starting":     # no config yet: not "recorded no analyses"
            return super().empty_text(m)
        an = (m.config or {}).get("analysis") or {}
        if m.config is not None and not an.get("enabled"):
            return "The analyses are off for this run (analysis.enabled: false)."
        return "Waiting for the first analysis…" if m.status == "running" else "This run recorded no analyses."

    def redraw(self, m: RunModel) -> None:
        # Fig. 1b needs the final model: CKA with the previous measurement while the run goes
        # on, with the final model once the last epoch has scored it (docs/fidelity.md)
        final = any(e.get("cka_to_final") for e in m.analysis_events)
        names, mat = AD.heat(m, "cka_to_final" if final else "cka")
        self.cka.title = ("CKA of block outputs with the final model (Fig. 1b)" if final else
                          "CKA of block outputs with the previous measurement (vs final at the end)")
        self.cka.set(names, mat, AD.freeze_marks(m, names))
        kind = self.similarity_kind.currentData() or "mask_similarity"
        snames, smat = AD.heat(m, kind)
        self.sim.set(snames, smat, AD.freeze_marks(m, snames))
        # one left-axis width for the three plots, so that their epoch columns line up
        width = max(label_width(names), label_width(snames))
        for p in (self.cka.plot, self.sim.plot, self.grad):
            p.getAxis("left").setWidth(width)
        gkind = self.grad_kind.currentData() or "differences"
        gnames, epochs, g = (AD.grad_norm_differences if gkind == "differences" else AD.grad_norms)(m)
        self.grad.setTitle(_GRAD_TITLES[gkind])
        for i, n in enumerate(gnames):
            item = self._curves.get(n)
            if item is None:
                item = self._curves[n] = self.grad.plot([], [], pen=pg.mkPen(PALETTE[i % len(PALETTE)], width=1.5),
                                                        name=n)
            ok = np.isfinite(g[i]) & (g[i] > 0)
            item.setData(epochs[ok] + 1, g[i][ok])     # epochs counted from 1, as in the other views
        # eleven blocks do not fit one column of the legend in a third of the window
        self.grad.legend.setColumnCount(2 if len(gnames) > 6 else 1)
        for line in self._lines:
            self.grad.removeItem(line)
        self._lines = []
        for b, e in AD.freeze_epochs(m).items():
            line = pg.InfiniteLine(pos=e + 0.5, angle=90, pen=pg.mkPen("#d62728", width=1, style=Qt.DashLine),
                                   label=b, labelOpts={"position": 0.8, "color": "#d62728", "rotateAxis": (1, 0)})
            self.grad.addItem(line)
            self._lines.append(line)
        n_meas = len(AD.measured(m))
        text = (f"{n_meas} measurement(s) on a probe of {next((e.get('probe_size') for e in AD.measured(m)), '?')} "
                "samples. Grey: not measured; ▶ and dashed lines: the epoch a block froze.")
        line = AD.adaptive_summary(m)
        if line:
            text += " " + line + "."
        self.info.setText(text)

    def _moved(self, args) -> None:
        pos = args[0]
        for h in (self.cka, self.sim):
            if h.plot.sceneBoundingRect().contains(pos):
                p = h.plot.vb.mapSceneToView(pos)
                text = h.value_at(p.x(), p.y())
                if text:
                    h.plot.setToolTip(text)
                    return
