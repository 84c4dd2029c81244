"""Circular data sieving: active and removed set sizes, initially removed samples still
waiting for their first turn, the forgetting-count histogram of the active set, and
thumbnails of the samples swapped in and out (rendered off the GUI thread, when the
dataset can be read here)."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from spfde_gui.palette import SIEVE_COLORS
from spfde_gui.run_model import RunModel
from spfde_gui.views.base import HoverReadout, RunView, curve, make_plot, set_long_data

THUMBS = 10       # per row (swapped in / swapped out)
THUMB_PX = 48
_SERIES = ("epoch", "active_size", "removed_size", "initial_waiting")


class _ThumbSignals(QObject):
    done = Signal(int, object, object, object)   # request id, in images, out images, error


class _ThumbTask(QRunnable):
    def __init__(self, rid: int, cfg: dict, ins: list, outs: list, signals: _ThumbSignals):
        super().__init__()
        self.rid, self.cfg, self.ins, self.outs, self.signals = rid, cfg, ins, outs, signals

    def run(self) -> None:
        try:
            from engine.data.sources import sample_image
            render = lambda idx: [np.ascontiguousarray(sample_image(self.cfg, "train", int(i))) for i in idx]
            self.signals.done.emit(self.rid, render(self.ins), render(self.outs), None)
        except Exception as exc:   # a dataset folder that moved, an unreadable file...
            self.signals.done.emit(self.rid, None, None, f"{type(exc).__name__}: {exc}")


def _pixmap(img: np.ndarray) -> QPixmap:
    img = np.ascontiguousarray(img[..., :3].astype(np.uint8))
    h, w = img.shape[:2]
    q = QImage(img.data, w, h, 3 * w, QImage.Format_RGB888).copy()
    return QPixmap.fromImage(q).scaled(THUMB_PX, THUMB_PX, Qt.KeepAspectRatio, Qt.FastTransformation)


class SieveView(RunView):
    title = "Data sieving"

    def __init__(self, parent=None):
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._signals = _ThumbSignals()
        self._signals.done.connect(self._on_thumbs)
        self._thumb_for = None
        self._rid = 0
        self._series = np.zeros((4, 0))
        self._series_src = None
        self._series_drawn = None

        box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        nums = QHBoxLayout()
        self.numbers: dict[str, QLabel] = {}
        for key, text in (("active_size", "active"), ("removed_size", "removed"),
                          ("initial_waiting", "initially removed, still waiting"), ("k", "swapped per update"),
                          ("epoch", "last update at epoch")):
            v = QLabel("–")
            v.setObjectName("sieve:" + key)
            v.setStyleSheet("font-size: 18px; font-weight: bold;")
            cell = QVBoxLayout()
            cell.addWidget(v, alignment=Qt.AlignHCenter)
            cell.addWidget(QLabel(text), alignment=Qt.AlignHCenter)
            nums.addLayout(cell)
            self.numbers[key] = v
        lay.addLayout(nums)

        self.glw = pg.GraphicsLayoutWidget()
        self.hist_plot = make_plot(self.glw, 0, 0, "Forgetting counts in the active set", "forgetting events",
                                   "samples", legend=False)
        self.hist = pg.BarGraphItem(x=[], height=[], width=0.8, brush=SIEVE_COLORS["histogram"])
        self.hist_plot.addItem(self.hist)
        self.size_plot = make_plot(self.glw, 0, 1, "Queue over time", "epoch", "samples")
        self.c_active = curve(self.size_plot, SIEVE_COLORS["active_size"], "active")
        self.c_removed = curve(self.size_plot, SIEVE_COLORS["removed_size"], "removed")
        self.c_waiting = curve(self.size_plot, SIEVE_COLORS["initial_waiting"], "still waiting")
        self.hover = HoverReadout(self.size_plot)
        lay.addWidget(self.glw, 1)

        self.thumb_msg = QLabel()
        self.thumb_msg.setStyleSheet("color: #777;")
        lay.addWidget(self.thumb_msg)
        grid = QGridLayout()
        grid.setSpacing(2)
        self.thumb_labels: dict[str, list[QLabel]] = {}
        for r, key in enumerate(("in", "out")):
            grid.addWidget(QLabel(f"swapped {key}"), r, 0)
            row = []
            for c in range(THUMBS):
                lab = QLabel()
                lab.setFixedSize(THUMB_PX, THUMB_PX)
                lab.setStyleSheet("background: #f3f3f3;")
                grid.addWidget(lab, r, c + 1)
                row.append(lab)
            self.thumb_labels[key] = row
        grid.setColumnStretch(THUMBS + 1, 1)
        lay.addLayout(grid)
        self.set_content(box)

    def has_data(self, m: RunModel) -> bool:
        return bool(m.sieve_updates)

    def empty_text(self, m: RunModel | None) -> str:
        if m is not None and m.config is not None:
            if float(((m.config.get("sieve") or {}).get("ratio")) or 0) <= 0:
                return "Data sieving is off for this run (sieve.ratio = 0): every epoch trains on the whole set."
            return "No sieve update yet: the first comes at the start of the run and then every ΔT epochs."
        return super().empty_text(m)

    def redraw(self, m: RunModel) -> None:
        last = m.sieve_updates[-1]
        for key, lab in self.numbers.items():
            v = last.get(key)
            lab.setText(f"{v:,}" if isinstance(v, int) else "–")
        series = self._series_of(m)
        if series is not self._series_drawn:     # the queue changes only with sieve updates
            self._series_drawn = series
            for i, c in enumerate((self.c_active, self.c_removed, self.c_waiting), start=1):
                set_long_data(c, series[0], series[i])
            top = np.nanmax(series[1:]) if series.shape[1] and np.isfinite(series[1:]).any() else 1.0
            self.size_plot.setYRange(0, top * 1.35, padding=0)   # headroom for the legend
        h = last.get("histogram") or {}
        counts = np.asarray(h.get("counts") or [], dtype=float)
        edges = np.asarray(h.get("edges") or [], dtype=float)
        axis = self.hist_plot.getAxis("bottom")
        if counts.size and edges.size == counts.size + 1 and np.allclose(np.diff(edges), 1):
            centres, widths = edges[:-1], 0.9      # one bar per count: label it by the count
            if counts.size <= 30:
                axis.setTickSpacing(major=1, minor=1)
            else:
                axis.setTickSpacing()
        elif counts.size and edges.size == counts.size + 1:
            centres, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges) * 0.9
        else:
            centres, widths = np.arange(counts.size, dtype=float), 0.9
        self.hist.setOpts(x=centres, height=counts, width=widths)
        never = h.get("never_correct")
        self.hist_plot.setTitle("Forgetting counts in the active set"
                                + (f" ({never:,} never classified correctly)" if isinstance(never, int) else ""))
        self._request_thumbs(m, last)

    def _series_of(self, m: RunModel) -> np.ndarray:
        """epoch, active, removed, waiting per update; extended with new updates only."""
        ups = m.sieve_updates
        cached = self._series
        if self._series_src is not m or cached.shape[1] > len(ups) or \
                (cached.shape[1] and cached[0, -1] != ups[cached.shape[1] - 1].get("epoch")):
            cached = np.zeros((4, 0))          # another run, or a resume truncated the list
        new = ups[cached.shape[1]:]
        if new:
            add = np.array([[u.get(k, np.nan) if isinstance(u.get(k), (int, float)) else np.nan
                             for u in new] for k in _SERIES], dtype=float)
            cached = np.concatenate([cached, add], axis=1)
        self._series, self._series_src = cached, m
        return cached

    def _request_thumbs(self, m: RunModel, last: dict) -> None:
        key = (id(m), len(m.sieve_updates))
        if key == self._thumb_for:
            return
        self._thumb_for = key
        ins = list(last.get("swapped_in") or [])[:THUMBS]
        outs = list(last.get("swapped_out") or [])[:THUMBS]
        for row in self.thumb_labels.values():
            for lab in row:
                lab.clear()
        if not ins and not outs:
            self.thumb_msg.setText("This update swapped no samples.")
            return
        if not m.config:
            self.thumb_msg.setText("Thumbnails unavailable: the run recorded no configuration.")
            return
        self._rid += 1
        self.thumb_msg.setText(f"Samples swapped at epoch {last.get('epoch')} (rendering…)")
        self._pool.start(_ThumbTask(self._rid, m.config, ins, outs, self._signals))

    def _on_thumbs(self, rid: int, ins, outs, err) -> None:
        if rid != self._rid:
            return
        if err:
            self.thumb_msg.setText(f"Thumbnails unavailable: {err}")
            return
        for key, imgs in (("in", ins), ("out", outs)):
            for lab, img in zip(self.thumb_labels[key], imgs):
                lab.setPixmap(_pixmap(img))
        last = self.model.sieve_updates[-1] if self.model and self.model.sieve_updates else {}
        self.thumb_msg.setText(f"Samples swapped at epoch {last.get('epoch', '?')} (first {THUMBS} of each)")

    def wait_idle(self, ms: int = 10000) -> None:
        self._pool.waitForDone(ms)
