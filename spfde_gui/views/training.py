"""Accuracy and loss (train and test) against epoch and against cumulative training FLOPs,
with other runs overlaid for comparison (their test accuracy and test loss), and a table of
every configuration field in which the compared runs differ."""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from spfde_gui.fmt import fmt_flops
from spfde_gui.model.run_model import RunModel, config_value, differing_fields
from spfde_gui.palette import TEST, TRAIN
from spfde_gui.report.export_figure import install_save_actions
from spfde_gui.views.base import (
    PALETTE,
    HoverReadout,
    RunView,
    apply_headroom,
    curve,
    drop_curve,
    keep_headroom,
    make_plot,
    set_long_data,
)

# The config-diff table below the plots grows with its rows up to this height, then scrolls.
DIFF_TABLE_MAX_PX = 150


class TrainingView(RunView):
    title = "Accuracy && loss"

    def __init__(self, parent=None):
        self.overlays: list[RunModel] = []
        self._overlay_items: list = []
        self._overlay_key: tuple = ()
        self._overlays_dirty = False
        super().__init__(parent)
        self.glw = pg.GraphicsLayoutWidget()
        self.save_figure = install_save_actions(self, self.glw)   # right-click: Save figure…
        self.acc_ep = make_plot(self.glw, 0, 0, "Accuracy vs epoch", "epoch", "accuracy (%)", legend_bottom=True)
        self.loss_ep = make_plot(self.glw, 0, 1, "Loss vs epoch", "epoch", "loss")
        self.acc_fl = make_plot(self.glw, 1, 0, "Accuracy vs training FLOPs", "cumulative FLOPs", "accuracy (%)",
                                legend_bottom=True)
        self.loss_fl = make_plot(self.glw, 1, 1, "Loss vs training FLOPs", "cumulative FLOPs", "loss")
        self.loss_fl.setXLink(self.acc_fl)
        self.loss_ep.setXLink(self.acc_ep)
        self.curves = {}
        for key, plot, col, x in (("acc_ep", self.acc_ep, "acc", "epoch"), ("loss_ep", self.loss_ep, "loss", "epoch"),
                                  ("acc_fl", self.acc_fl, "acc", "flops_spent"),
                                  ("loss_fl", self.loss_fl, "loss", "flops_spent")):
            self.curves[key] = (x, [(curve(plot, TRAIN, "train", style=Qt.DashLine), "train_" + col),
                                    (curve(plot, TEST, "test"), "test_" + col)])
        self._flops_pinned = False
        for p in (self.acc_ep, self.acc_fl, self.loss_ep, self.loss_fl):   # room for the legends
            keep_headroom(p)
        self._int_ticks = None
        self.hovers = [HoverReadout(self.acc_ep), HoverReadout(self.loss_ep),
                       HoverReadout(self.acc_fl, fmt_flops), HoverReadout(self.loss_fl, fmt_flops)]
        box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.glw, 1)
        # compared runs: every configuration field in which they differ (shown only then)
        self.diff_table = QTableWidget(0, 0)
        self.diff_table.setObjectName("training:config-diff")
        self.diff_table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.diff_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.diff_table.hide()
        lay.addWidget(self.diff_table)
        self.set_content(box)

    def set_overlays(self, models: list[RunModel]) -> None:
        """Runs drawn beside the current one (test accuracy on both accuracy plots)."""
        self.overlays = [m for m in models if m is not self.model]
        self._overlay_key = ()
        self._overlays_dirty = True
        self.refresh(force=True)

    def has_data(self, m: RunModel) -> bool:
        return m.n_epochs > 0 or any(o.n_epochs for o in self.overlays)

    def refresh(self, force: bool = False) -> bool:
        # overlays that are live runs change too
        key = tuple(o.version for o in self.overlays)
        if key != self._overlay_key:
            force = True
            self._overlay_key = key
            self._overlays_dirty = True
        return super().refresh(force)

    def _mark_resumes(self, m: RunModel) -> None:
        """A dashed line where the run was stopped (or killed) and resumed."""
        for plot, line in getattr(self, "_resume_lines", []):
            plot.removeItem(line)
        self._resume_lines = []
        for x in m.resume_points():
            for plot in (self.acc_ep, self.loss_ep):
                line = pg.InfiniteLine(pos=x, angle=90, pen=pg.mkPen("#888", width=1, style=Qt.DashLine),
                                       label="resumed", labelOpts={"position": 0.95, "color": "#666",
                                                                   "rotateAxis": (1, 0)})
                plot.addItem(line)
                self._resume_lines.append((plot, line))

    def redraw(self, m: RunModel) -> None:
        self._mark_resumes(m)
        for xname, items in self.curves.values():
            x = m.epoch_axis() if xname == "epoch" else m.column(xname)
            for item, yname in items:
                set_long_data(item, x, _scaled(m, yname))
        # One epoch is one x value: auto-range would zoom to +-0.5 FLOPs around it and print
        # ten-digit ticks. Show 0..2x until there is a second point, then auto-range again.
        fl = m.column("flops_spent")
        if m.n_epochs == 1 and not self.overlays and fl[0] > 0:
            self.acc_fl.setXRange(0.0, 2.0 * float(fl[0]), padding=0)
            self._flops_pinned = True
        elif self._flops_pinned:
            self.acc_fl.enableAutoRange(axis="x")
            self._flops_pinned = False
        for p in (self.acc_ep, self.acc_fl, self.loss_ep, self.loss_fl):   # room for the legends
            keep_headroom(p)
        self._int_ticks = None
        if self._overlays_dirty:
            self._draw_overlays()
            self._overlays_dirty = False
        # the accuracy legends sit bottom right, one row per curve: keep that strip free
        accs = [_scaled(r, c) for r in [m, *self.overlays] for c in ("train_acc", "test_acc")]
        rows = 2 + len(self.overlays)
        for p in (self.acc_ep, self.acc_fl):
            # the legend's height as a fraction of the plot's, turned into room below the data
            f = min(0.6, (rows * 22 + 36) / max(p.vb.height(), 120.0))
            apply_headroom(p, *accs, top=0.05, bottom=f * 1.05 / (1 - f))
        losses = [m.column("train_loss"), m.column("test_loss")]
        for p in (self.loss_ep, self.loss_fl):   # the loss legends sit top right, above the curves
            f = min(0.6, (2 * 22 + 36) / max(p.vb.height(), 120.0))
            apply_headroom(p, *losses, top=f * 1.05 / (1 - f))
        # a few epochs: whole-epoch ticks, not 1.2, 1.4...
        few = m.n_epochs <= 12
        if few != self._int_ticks:
            self._int_ticks = few
            for p in (self.acc_ep, self.loss_ep):
                p.getAxis("bottom").setTickSpacing(*((1, 1) if few else ()))

    def _draw_overlays(self) -> None:
        for plot, item in self._overlay_items:
            drop_curve(plot, item)
        self._overlay_items = []
        labels = compare_labels([self.model] + list(self.overlays)) if self.model is not None else {}
        # compared, every test curve is named alike: this run's too (not plain "test")
        mine = labels.get(id(self.model))
        for key in ("acc_ep", "acc_fl"):
            item = self.curves[key][1][1][0]
            _rename(item, f"{mine} (test)" if self.overlays and mine else "test")
        for key in ("loss_ep", "loss_fl"):
            _rename(self.curves[key][1][1][0], f"{mine} (test)" if self.overlays and mine else "test")
        for i, o in enumerate(self.overlays):
            color = PALETTE[(i + 2) % len(PALETTE)]
            for plot, xname, col in ((self.acc_ep, "epoch", "test_acc"), (self.acc_fl, "flops_spent", "test_acc"),
                                     (self.loss_ep, "epoch", "test_loss"), (self.loss_fl, "flops_spent", "test_loss")):
                item = curve(plot, color, f"{labels.get(id(o), o.name)} (test)", width=1.3)
                set_long_data(item, o.epoch_axis() if xname == "epoch" else o.column(xname), _scaled(o, col))
                self._overlay_items.append((plot, item))
        self._fill_diff_table(labels)

    def _fill_diff_table(self, labels: dict[int, str]) -> None:
        """Rows: the fields in which the compared runs differ; columns: the runs."""
        runs = [self.model, *self.overlays] if self.model is not None and self.overlays else []
        keys = differing_fields([r.config for r in runs], limit=10_000) if runs else []
        t = self.diff_table
        t.setVisible(bool(keys))
        t.setRowCount(len(keys))
        t.setColumnCount(len(runs))
        t.setHorizontalHeaderLabels([r.run_dir.name if r.run_dir is not None else r.name for r in runs])
        t.setVerticalHeaderLabels(keys)
        for c, r in enumerate(runs):
            t.horizontalHeaderItem(c).setToolTip(labels.get(id(r), r.name))
            for row, k in enumerate(keys):
                t.setItem(row, c, QTableWidgetItem(str(config_value(r.config, k))))
        if keys:      # as tall as its rows (up to DIFF_TABLE_MAX_PX), not a fixed block of empty rows
            t.resizeRowsToContents()
            t.setFixedHeight(min(DIFF_TABLE_MAX_PX, t.horizontalHeader().sizeHint().height()
                                 + t.verticalHeader().length() + 2 * t.frameWidth() + 2))


def _rename(item, name: str) -> None:
    """A curve's legend entry, renamed in place (pyqtgraph has no call for it)."""
    if item.name() == name:
        return
    item.opts["name"] = name
    legend = item.getViewBox().parentItem().legend if item.getViewBox() is not None else None
    if legend is not None:
        for sample, label in legend.items:
            if sample.item is item:
                label.setText(name)
                legend.updateSize()


# Longer legend labels are cut in the middle: the legend sits inside the plot, and a wide
# one would run past the plot's left edge (the full values are in the table below).
LEGEND_MAX_CHARS = 48


def compare_labels(models: list[RunModel]) -> dict[int, str]:
    """id(model) -> what differs between the compared runs ("sparsity.target=0.8"), with the
    run folder only where the settings alone do not tell runs apart (identical ones), cut to
    LEGEND_MAX_CHARS."""
    keys = differing_fields([m.config for m in models])
    diffs = {id(m): ", ".join(f"{k}={config_value(m.config, k)}" for k in keys) for m in models}
    seen: dict[str, int] = {}
    for d in diffs.values():
        seen[d] = seen.get(d, 0) + 1
    out = {}
    for m in models:
        folder = m.run_dir.name if m.run_dir is not None else m.name
        d = diffs[id(m)]
        out[id(m)] = _elide(d if d and seen[d] == 1 else f"{folder} · {d}" if d else folder)
    return out


def _elide(text: str, n: int = LEGEND_MAX_CHARS) -> str:
    if len(text) <= n:
        return text
    head = (n - 1) // 2
    return text[:head] + "…" + text[len(text) - (n - 1 - head):]


def _scaled(m: RunModel, name: str):
    """Accuracies in percent (the engine reports fractions)."""
    col = m.column(name)
    return col * 100.0 if name.endswith("_acc") else col
