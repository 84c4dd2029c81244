"""Circular data sieving: active and removed set sizes, initially removed samples still
waiting for their first turn, the forgetting-count histogram of the active set, and
thumbnails of the samples swapped in and out (rendered off the GUI thread, when the
dataset can be read here)."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from engine.config import sieve_oneshot_epoch
from engine.data.sources import sample_image
from spfde_gui.model.run_model import RunModel
from spfde_gui.palette import SIEVE_COLORS
from spfde_gui.report.export_figure import install_save_actions
from spfde_gui.system.tasks import TaskRunner
from spfde_gui.views.base import HoverReadout, RunView, curve, make_plot, set_long_data

THUMBS = 10       # per row (swapped in / swapped out)
THUMB_PX = 48
_SERIES = ("epoch", "active_size", "removed_size", "initial_waiting")


def _render_thumbs(state, cfg: dict, ins: list, outs: list):
    """The task: the swapped samples' images, read from the dataset off the GUI thread."""
    out = []
    for idx in (ins, outs):
        imgs = []
        for i in idx:
            state.check()                 # a newer sieve update supersedes this one
            imgs.append(np.ascontiguousarray(sample_image(cfg, "train", int(i))))
        out.append(imgs)
    return out


def _pixmap(img: np.ndarray) -> QPixmap:
    img = np.ascontiguousarray(img[..., :3].astype(np.uint8))
    h, w = img.shape[:2]
    q = QImage(img.data, w, h, 3 * w, QImage.Format_RGB888).copy()
    return QPixmap.fromImage(q).scaled(THUMB_PX, THUMB_PX, Qt.KeepAspectRatio, Qt.FastTransformation)


class SieveView(RunView):
    title = "Data sieving"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.tasks = TaskRunner(self, "thumbnails")
        self.tasks.done.connect(self._on_thumbs)
        self.tasks.failed.connect(lambda exc: self.thumb_msg.setText(
            f"Thumbnails unavailable: {type(exc).__name__}: {exc}"))   # a moved dataset folder...
        self._thumb_for = None
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
        self.save_figure = install_save_actions(self, self.glw)   # right-click: Save figure…
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
        # before the first update the initial split is known once the run has started
        return bool(m.sieve_updates) or initial_split(m) is not None

    def empty_text(self, m: RunModel | None) -> str:
        if m is not None and m.config is not None:
            if float(((m.config.get("sieve") or {}).get("ratio")) or 0) <= 0:
                return "Data sieving is off for this run (sieve.ratio = 0): every epoch trains on the whole set."
            return "No sieve update yet. " + first_update_text(m)
        return super().empty_text(m)

    def redraw(self, m: RunModel) -> None:
        if not m.sieve_updates:
            self._show_initial(m)
            return
        last = m.sieve_updates[-1]
        for key, lab in self.numbers.items():
            v = last.get(key)
            if key == "epoch":
                lab.setText(_ep(v))
            else:
                lab.setText(f"{v:,}" if isinstance(v, int) else "–")
        series = self._series_of(m)
        if series is not self._series_drawn:     # the queue changes only with sieve updates
            self._series_drawn = series
            for i, c in enumerate((self.c_active, self.c_removed, self.c_waiting), start=1):
                set_long_data(c, series[0] + 1, series[i])    # epochs shown from 1
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

    def _show_initial(self, m: RunModel) -> None:
        """Before the first update: the split the run started with, and when the update comes."""
        active, removed = initial_split(m)
        circular = _sieve_cfg(m).get("mode", "circular") == "circular"
        shown = {"active_size": active, "removed_size": removed, "initial_waiting": removed if circular else 0}
        for key, lab in self.numbers.items():
            v = shown.get(key)
            lab.setText(f"{v:,}" if isinstance(v, int) else "–")
        self.hist.setOpts(x=[], height=[], width=0.9)
        self._series_drawn = None
        for c in (self.c_active, self.c_removed, self.c_waiting):
            set_long_data(c, [], [])
        for row in self.thumb_labels.values():
            for lab in row:
                lab.clear()
        self._thumb_for = None
        self.thumb_msg.setText("No sieve update yet. " + first_update_text(m))

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
        self.thumb_msg.setText(f"Samples swapped at epoch {_ep(last.get('epoch'))} (rendering…)")
        self.tasks.start(_render_thumbs, m.config, ins, outs)

    def _on_thumbs(self, result) -> None:
        ins, outs = result
        for key, imgs in (("in", ins), ("out", outs)):
            for lab, img in zip(self.thumb_labels[key], imgs):
                lab.setPixmap(_pixmap(img))
        last = self.model.sieve_updates[-1] if self.model and self.model.sieve_updates else {}
        self.thumb_msg.setText(f"Samples swapped at epoch {_ep(last.get('epoch'))} (first {THUMBS} of each)")

    def wait_idle(self, ms: int = 10000) -> None:
        self.tasks.wait(ms / 1000)

    def shutdown(self) -> None:
        self.tasks.shutdown()


def _ep(e) -> str:
    """An event's 0-based epoch as the studio shows it (1-based, as the CLI counts)."""
    return str(e + 1) if isinstance(e, int) else "?"


def _sieve_cfg(m: RunModel) -> dict:
    return ((m.config or {}).get("sieve") or {})


def initial_split(m: RunModel) -> tuple[int, int] | None:
    """(active, removed) sizes the run starts with (engine.sieving.sieve: round(ratio * N) removed),
    once the run has started and reported its training set; None when sieving is off."""
    ratio = _sieve_cfg(m).get("ratio")
    n = ((m.run_started or {}).get("dataset") or {}).get("train_size")
    if not isinstance(ratio, (int, float)) or ratio <= 0 or not isinstance(n, int) or n <= 0:
        return None
    if _sieve_cfg(m).get("mode", "circular") != "circular":
        return n, 0                         # oneshot: the whole set until the removal
    removed = int(round(ratio * n))
    return n - removed, removed


def first_update_text(m: RunModel) -> str:
    """When the first sieve update comes, counted from 1 as everywhere in the studio."""
    cfg = m.config or {}
    sv = _sieve_cfg(m)
    epochs = cfg.get("epochs")
    if sv.get("mode", "circular") == "oneshot":
        at = sv.get("oneshot_epoch")
        if not isinstance(at, int) and isinstance(epochs, int):
            from types import SimpleNamespace

            at = sieve_oneshot_epoch(SimpleNamespace(epochs=epochs, sieve=SimpleNamespace(oneshot_epoch=None)))
        return (f"The one-shot removal comes at the start of epoch {_ep(at)}; until then every "
                "epoch trains on the whole set." if isinstance(at, int) else "")
    iv = cfg.get("interval")
    if not isinstance(iv, int):
        return "The first update comes after ΔT epochs."
    when = f"at the start of epoch {iv + 1}" if not isinstance(epochs, int) or iv < epochs else \
        "never in this run (ΔT is not smaller than the number of epochs)"
    return f"The first update comes {when}, then every ΔT = {iv} epochs; until then the initial split trains."
