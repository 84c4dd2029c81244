"""Per-block freeze timeline: blocks x epochs, active or frozen, planned (from the freeze
plan) above actual (from each epoch_end's frozen blocks)."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from engine.freezing.schedule import saving_text
from spfde_gui.fmt import shown_epoch
from spfde_gui.model.run_model import RunModel
from spfde_gui.palette import ACTIVE_BLOCK, FROZEN, NOT_RUN, rgba
from spfde_gui.report.export_figure import install_save_actions
from spfde_gui.views.base import RunView

# 0 = active, 1 = frozen, 2 = not reached yet (actual only)
LUT = np.array([rgba(ACTIVE_BLOCK), rgba(FROZEN), rgba(NOT_RUN)], dtype=np.uint8)


class _Timeline:
    def __init__(self, glw: pg.GraphicsLayoutWidget, row: int, title: str):
        self.plot = glw.addPlot(row=row, col=0, title=title)
        self.plot.setLabel("bottom", "epoch")
        self.plot.invertY(True)
        self.plot.setMouseEnabled(x=True, y=False)
        self.img = pg.ImageItem(autoDownsample=True)
        self.img.setLookupTable(LUT)
        self.img.setLevels([0, 2])
        self.plot.addItem(self.img)
        self.names: list[str] = []
        self._shape = (0, 0)
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.hover = pg.TextItem(color="#222", fill=pg.mkBrush(255, 255, 255, 220))
        self.hover.hover_overlay = True     # never in a saved figure
        self.hover.hide()
        self.plot.addItem(self.hover, ignoreBounds=True)

    def set(self, mat: np.ndarray, names: list[str]) -> None:
        self.img.setImage(mat, autoLevels=False, levels=[0, 2])
        w, h = max(mat.shape[1], 1), max(mat.shape[0], 1)
        # epoch n (counted from 1) is the cell centred on x = n
        self.img.setRect(0.5, 0, w, h)
        if (w, h) != self._shape:   # new extent: show it all (the user may zoom in afterwards)
            self._shape = (w, h)
            self.plot.vb.setLimits(xMin=0.5, xMax=w + 0.5, yMin=0, yMax=h)
            self.plot.setRange(xRange=(0.5, w + 0.5), yRange=(0, h), padding=0)
        if names != self.names:
            self.names = list(names)
            step = max(1, len(names) // 20)   # keep the axis readable on deep models
            self.plot.getAxis("left").setTicks([[(i + 0.5, n) for i, n in enumerate(names) if i % step == 0]])


class FreezeView(RunView):
    title = "Layer freezing"

    def __init__(self, parent=None):
        super().__init__(parent)
        box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.info.setStyleSheet("padding: 4px;")
        lay.addWidget(self.info)
        self.glw = pg.GraphicsLayoutWidget()
        self.save_figure = install_save_actions(self, self.glw)   # right-click: Save figure…
        self.planned = _Timeline(self.glw, 0, "Planned")
        self.actual = _Timeline(self.glw, 1, "Actual")
        self.actual.plot.setXLink(self.planned.plot)
        self._proxy = pg.SignalProxy(self.glw.scene().sigMouseMoved, rateLimit=30, slot=self._moved)
        lay.addWidget(self.glw, 1)
        legend = QLabel(f"<span style='background:{ACTIVE_BLOCK}'>&nbsp;&nbsp;&nbsp;</span> active &nbsp; "
                        f"<span style='background:{FROZEN}'>&nbsp;&nbsp;&nbsp;</span> frozen &nbsp; "
                        f"<span style='background:{NOT_RUN}'>&nbsp;&nbsp;&nbsp;</span> not run yet")
        lay.addWidget(legend)
        self.set_content(box)
        self._planned_src = None
        self._actual_buf = None
        self._actual_filled = 0

    def has_data(self, m: RunModel) -> bool:
        return bool(m.block_names) and (m.n_epochs > 0 or m.freeze_plan is not None)

    def empty_text(self, m: RunModel | None) -> str:
        if m is not None and m.run_started is not None and not m.block_names:
            return "This run reported no model blocks."
        return super().empty_text(m)

    def redraw(self, m: RunModel) -> None:
        names = m.block_names
        planned = m.planned_frozen_matrix()
        total = max(planned.shape[1], m.epochs_planned or 0, m.n_epochs)
        if self._planned_src != (id(m.freeze_plan), total, len(names)):
            full = np.zeros((len(names), total), dtype=np.uint8)
            full[:, :planned.shape[1]] = planned[:, :total]
            self.planned.set(full, names)
            self._planned_src = (id(m.freeze_plan), total, len(names))
        frozen = m.frozen_matrix()
        # one image buffer per shape, rewritten in place: no new 2 MB array per frame
        actual = self._actual_buf
        if actual is None or actual.shape != (len(names), total):
            actual = self._actual_buf = np.full((len(names), total), 2, dtype=np.uint8)
        n = m.n_epochs
        actual[:, :n] = frozen
        actual[:, n:self._actual_filled] = 2      # rows a resume took back
        self._actual_filled = n
        self.actual.set(actual, names)
        fp = m.freeze_plan
        cfg_freeze = (m.config or {}).get("freeze") or {}
        if fp:
            text = (f"Scheme <b>{fp.get('scheme', cfg_freeze.get('scheme', '?'))}</b>, target "
                    f"{100 * float(fp.get('target', 0)):.1f}% of training FLOPs; plan: {saving_text(fp)}; "
                    f"freezing starts at epoch <b>{shown_epoch(fp.get('start_epoch'))}</b>.")
        elif float(cfg_freeze.get("target") or 0) <= 0:
            text = "Layer freezing is off for this run (freeze.target = 0): every block trains every epoch."
        else:
            text = "No freeze plan reported."
        frozen_now = int(frozen[:, -1].sum()) if m.n_epochs else 0
        text += f" Frozen now: {frozen_now} of {len(names)} blocks; {len(m.freeze_events)} freeze events."
        self.info.setText(text)

    def _moved(self, args) -> None:
        pos = args[0]
        for tl in (self.planned, self.actual):
            if tl.plot.sceneBoundingRect().contains(pos):
                p = tl.plot.vb.mapSceneToView(pos)
                e, b = int(np.floor(p.x() - 0.5)), int(np.floor(p.y()))
                img = tl.img.image
                if img is not None and 0 <= b < img.shape[0] and 0 <= e < img.shape[1]:
                    state = ("active", "frozen", "not run yet")[int(img[b, e])]
                    tl.hover.setText(f"{tl.names[b] if b < len(tl.names) else b} · epoch {e + 1}: {state}")
                    tl.hover.setPos(p.x(), p.y())
                    tl.hover.show()
                    continue
            tl.hover.hide()
