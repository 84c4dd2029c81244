"""The sweep results view: the paper's table shape (one row per setting: training FLOPs,
final and best test accuracy as mean ± std over seeds, peak memory, wall time, seeds
finished) and an accuracy-vs-training-FLOPs scatter with its Pareto front. Clicking a row
asks the window to open that setting's runs overlaid; the exports write the same table as
CSV, Markdown and LaTeX, and the report adds the scatter (HTML/PDF)."""
from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.sweep import export as export_mod
from engine.sweep import manifest as manifest_mod
from engine.sweep import results as results_mod
from spfde_gui.report.export_figure import install_save_actions
from spfde_gui.sweep.report import export_sweep_report

GAP_COLOUR = "#fdf0e6"


class SweepResultsView(QWidget):
    title = "Sweep results"
    open_runs = Signal(list)            # run folders (Path) of the clicked row

    def __init__(self, parent=None):
        super().__init__(parent)
        self.manifest: manifest_mod.Manifest | None = None
        self.rows: list[results_mod.Row] = []
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        self.label = QLabel("No sweep open: start one from the Sweep tab or open a sweep folder.")
        self.label.setObjectName("sweep-results-label")
        self.label.setWordWrap(True)
        top.addWidget(self.label, 1)
        self.buttons = {}
        for key, text, slot in (("open", "Open sweep…", self._open_dialog), ("reload", "Reload", self.reload),
                                ("csv", "CSV", lambda: self.export("csv")), ("md", "Markdown", lambda: self.export("md")),
                                ("tex", "LaTeX", lambda: self.export("tex")), ("report", "Report", self.report)):
            b = QPushButton(text)
            b.clicked.connect(lambda _c=False, s=slot: s())
            self.buttons[key] = b
            top.addWidget(b)
        lay.addLayout(top)
        split = QSplitter(Qt.Vertical)
        self.table = QTableWidget(0, 0)
        self.table.setObjectName("sweep-results")
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.cellClicked.connect(lambda r, _c: self.open_row(r))
        split.addWidget(self.table)
        self.plot = pg.PlotWidget()
        self.save_figure = install_save_actions(self, self.plot)   # right-click: Save figure…
        self.plot.setLabel("bottom", "training FLOPs")
        self.plot.setLabel("left", "final test accuracy (%)")
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.scatter = pg.ScatterPlotItem(size=10, brush=pg.mkBrush("#1f5fa8"))
        # the front: a line through ringed points (a one-point front is still visible)
        self.front = pg.PlotDataItem(pen=pg.mkPen("#e07b1a", width=2), symbol="o", symbolSize=16,
                                     symbolBrush=None, symbolPen=pg.mkPen("#e07b1a", width=2), name="Pareto front")
        self.labels: list = []
        self.plot.addItem(self.scatter)
        self.plot.addItem(self.front)
        self.scatter.sigClicked.connect(self._point_clicked)
        split.addWidget(self.plot)
        lay.addWidget(split, 1)
        self._update_buttons()

    # ---------------------------------------------------------------- data
    def set_sweep(self, sweep) -> None:
        """Show a sweep (a Manifest or a sweep folder)."""
        self.manifest = sweep if isinstance(sweep, manifest_mod.Manifest) else manifest_mod.read(sweep)
        self.reload()

    def reload(self) -> None:
        if self.manifest is None:
            return
        self.manifest = manifest_mod.read(self.manifest.dir)
        self.rows = results_mod.load(self.manifest)
        self._fill()

    def _fill(self) -> None:
        m, rows = self.manifest, self.rows
        head = ["#"] + m.varied + export_mod.HEADERS
        self.table.clear()
        self.table.setColumnCount(len(head))
        self.table.setHorizontalHeaderLabels(head)
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            vals = [f"#{r + 1}"] + [export_mod._v(row.setting.get(f)) for f in m.varied] + export_mod._cells(row, " ± ")
            for k, v in enumerate(vals):
                item = QTableWidgetItem(v)
                if not row.complete:
                    item.setBackground(QBrush(QColor(GAP_COLOUR)))
                    item.setToolTip(f"{row.completed} of {row.seeds_total} seeds finished"
                                    + ("\n" + "\n".join(row.errors) if row.errors else ""))
                self.table.setItem(r, k, item)
        done = sum(r.completed for r in rows)
        total = sum(r.seeds_total for r in rows)
        failed = sum(r.failed for r in rows)
        self.label.setText(f"{m.name}: {len(rows)} settings, {done}/{total} runs completed"
                           + (f", {failed} failed" if failed else "") + f" ({m.dir})")
        pts = [(r.stats["flops_spent"].mean, r.stats["final_test_acc"].mean) for r in rows]
        ok = [i for i, (x, y) in enumerate(pts) if x is not None and y is not None]
        self.scatter.setData([{"pos": (pts[i][0], pts[i][1] * 100), "data": i} for i in ok])
        front = results_mod.pareto_front(pts)
        self.front.setData([pts[i][0] for i in front], [pts[i][1] * 100 for i in front])
        for t in self.labels:
            self.plot.removeItem(t)
        self.labels = []
        for i in ok:                    # numbered as the table's rows
            t = pg.TextItem(f"#{i + 1}", color="#444444", anchor=(-0.3, 1))
            t.setPos(pts[i][0], pts[i][1] * 100)
            self.plot.addItem(t)
            self.labels.append(t)
        self._frame([pts[i][0] for i in ok], [pts[i][1] * 100 for i in ok])
        self._update_buttons()

    def _frame(self, xs: list[float], ys: list[float]) -> None:
        """Auto-range, except where all points share an x or a y (one finished cell): there the
        auto range collapses to a width of ~1e-14 and the ticks read 15.50000000000004."""
        vb = self.plot.getViewBox()
        vb.enableAutoRange()
        if not xs:
            return
        if max(xs) - min(xs) <= 1e-9 * max(abs(max(xs)), 1.0):
            vb.setXRange(xs[0] * 0.9, xs[0] * 1.1 if xs[0] else 1.0, padding=0)
        if max(ys) - min(ys) <= 1e-9 * max(abs(max(ys)), 1.0):
            vb.setYRange(ys[0] - 1.0, ys[0] + 1.0, padding=0)

    def pareto_rows(self) -> list[int]:
        return results_mod.pareto_front([(r.stats["flops_spent"].mean, r.stats["final_test_acc"].mean)
                                         for r in self.rows])

    # ---------------------------------------------------------------- actions
    def run_dirs(self, r: int) -> list[Path]:
        if self.manifest is None or not 0 <= r < len(self.rows):
            return []
        return [self.manifest.dir / d for d in self.rows[r].runs if (self.manifest.dir / d).is_dir()]

    def open_row(self, r: int) -> list[Path]:
        dirs = self.run_dirs(r)
        if dirs:
            self.open_runs.emit(dirs)
        return dirs

    def _point_clicked(self, _item, points, *_a) -> None:
        if points:
            i = points[0].data()
            self.table.selectRow(i)
            self.open_row(i)

    def export(self, fmt: str, path: str | Path | None = None) -> Path | None:
        if self.manifest is None:
            return None
        p = Path(path) if path else self.manifest.dir / f"results.{fmt}"
        p.write_text(export_mod.FORMATS[fmt](self.rows, self.manifest.varied), encoding="utf-8")
        self.label.setText(f"Wrote {p}")
        return p

    def report(self, out_dir: str | Path | None = None) -> dict | None:
        if self.manifest is None:
            return None
        written = export_sweep_report(self.manifest.dir, out_dir)
        self.label.setText(f"Sweep report written to {Path(next(iter(written.values()))).parent}")
        return written

    def _open_dialog(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Open sweep folder", "sweeps")
        if d:
            if not manifest_mod.is_sweep_dir(d):
                self.label.setText(f"{d} holds no sweep.yaml: not a sweep folder.")
                return
            self.set_sweep(d)

    def _update_buttons(self) -> None:
        for k in ("reload", "csv", "md", "tex", "report"):
            self.buttons[k].setEnabled(self.manifest is not None)

    # the window's view protocol (refresh on its timer)
    def set_model(self, _model) -> None:
        pass

    def refresh(self, force: bool = False) -> bool:
        return False
