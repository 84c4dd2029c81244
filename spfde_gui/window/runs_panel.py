"""The runs folder as a table: every run directory with its status and key results, read
from its events.jsonl (tailed incrementally, so rescans stay cheap). Double-click opens a
run; ticking "compare" overlays runs on the accuracy plots. A filter box narrows the rows,
the header's menu shows more columns (date, duration, method, the SpFDE settings), and a
row's menu renames or deletes a run (asking first; a running run is refused). The cells of
the sweeps beside the runs folder are listed under their sweep's row (spfde_gui.model.
run_listing), which double-click folds and unfolds; a cell is renamed or deleted with its
sweep, never alone (the sweep's manifest names its folder)."""
from __future__ import annotations

import os
import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from spfde_gui.fmt import fmt_flops
from spfde_gui.model import run_listing
from spfde_gui.model.run_listing import Row
from spfde_gui.model.run_model import EVENTS_FILE, RunModel
from spfde_gui.model.run_row import EXTRA_COLUMNS, extra_cells, matches
from spfde_gui.palette import STATUS_COLORS
from spfde_gui.system.tasks import TaskRunner
from spfde_gui.window import run_actions

# A run without run_finished whose file changed this recently is taken as running elsewhere.
LIVE_WINDOW_S = 120
# Narrow enough that accuracy and FLOPs show at the window's default width: the model and
# dataset go into the run cell's tooltip, the run name is elided in the middle.
BASE_COLUMNS = ("", "run", "status", "epochs", "best acc", "final acc", "FLOPs")
COLUMNS = BASE_COLUMNS + EXTRA_COLUMNS     # the extra ones hidden until shown from the header's menu
RUN_COL_WIDTH = 116
SWEEP_ROW_BG = "#eef2f6"


class RunsPanel(QWidget):
    open_requested = Signal(object)      # RunModel
    compare_changed = Signal(list)       # list[RunModel]

    def __init__(self, runs_dir: str | os.PathLike, parent=None):
        super().__init__(parent)
        self.runs_dir: Path | None = None
        self.models: dict[Path, RunModel] = {}
        self.live: dict[Path, RunModel] = {}   # runs this window is driving (their models are shared)
        self._rows: list[Row] = []
        self.collapsed: set[Path] = set()      # sweeps whose cells are folded away
        self._updating = False
        self._loading: set[Path] = set()
        self._failed: dict[Path, float] = {}   # folders whose replay failed -> events.jsonl mtime then
        # interrupt: a replay is pure Python, so a closing window stops one at its next
        # bytecode; a long one (a huge events.jsonl) left running would abort the studio
        self.tasks = TaskRunner(self, "runs-loader", max_threads=2, interrupt=True)
        self.tasks.done.connect(self._on_loaded)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        self.folder_label = QLabel()
        self.folder_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        top.addWidget(self.folder_label, 1)
        self.refresh_btn = QPushButton("Rescan")
        self.refresh_btn.clicked.connect(self.rescan)
        top.addWidget(self.refresh_btn)
        lay.addLayout(top)
        self.filter = QLineEdit()
        self.filter.setObjectName("runs:filter")
        self.filter.setPlaceholderText("Filter: words in the name, status, method, settings (all must match)")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(lambda _t: self._apply_filter())
        lay.addWidget(self.filter)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().hide()
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeToContents)
        # the run name takes the room the figures leave (elided in the middle when narrow)
        hh.setSectionResizeMode(1, QHeaderView.Stretch)
        hh.setStretchLastSection(False)
        hh.setMinimumSectionSize(40)
        self.table.setColumnWidth(1, RUN_COL_WIDTH)
        self.table.setTextElideMode(Qt.ElideMiddle)
        self.table.setWordWrap(False)
        self.table.horizontalHeaderItem(0).setToolTip("compare: overlay the ticked runs on the accuracy plots")
        self.table.horizontalHeaderItem(6).setToolTip("training FLOPs spent, as a percentage of the dense equivalent")
        for c in range(len(BASE_COLUMNS), len(COLUMNS)):
            self.table.setColumnHidden(c, True)
        hh.setContextMenuPolicy(Qt.CustomContextMenu)
        hh.customContextMenuRequested.connect(self._header_menu)
        self.table.setContextMenuPolicy(Qt.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._row_menu)
        self.table.cellDoubleClicked.connect(self._open_row)
        self.table.itemChanged.connect(self._item_changed)
        lay.addWidget(self.table, 1)
        self.empty = QLabel()
        self.empty.setAlignment(Qt.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setStyleSheet("color: #777; padding: 12px;")
        lay.addWidget(self.empty)
        hint = QLabel("Double-click a run to open it (a sweep's row folds its cells); tick <i>compare</i> to "
                      "overlay runs on the accuracy plots. Right-click a run to rename or delete it, the header for "
                      "more columns.")
        hint.setStyleSheet("color: #777;")
        hint.setWordWrap(True)
        lay.addWidget(hint)
        self.timer = QTimer(self)
        self.timer.setInterval(3000)
        self.timer.timeout.connect(self.rescan)
        self.set_runs_dir(runs_dir)

    def set_runs_dir(self, d) -> None:
        if Path(d) != self.runs_dir:          # replays of the old folder are no longer wanted
            self.tasks.cancel()
            self._loading.clear()
        self.runs_dir = Path(d)
        self.folder_label.setText(f"Runs folder: <b>{self.runs_dir}</b>")
        self.rescan()

    def register_live(self, model: RunModel) -> None:
        """A run this window launched: the panel shows its live model instead of a replay."""
        if model.run_dir is not None:
            self.live[Path(model.run_dir).resolve()] = model
            self.rescan()

    def model_for(self, run_dir) -> RunModel:
        p = Path(run_dir).resolve()
        return self.live.get(p) or self._load(p)

    def _load(self, p: Path) -> RunModel:
        m = self.models.get(p)
        if m is None:   # asked for now (opened or compared): replay here rather than wait
            m = RunModel.load(p)
            self.models[p] = m
        else:
            m.poll_file()
        self.judge_liveness(m)
        return m

    def judge_liveness(self, m: RunModel) -> None:
        if m.finished is not None or m.error is not None or m.run_dir is None:
            return
        try:
            age = time.time() - os.stat(m.run_dir / EVENTS_FILE).st_mtime
        except OSError:
            age = 1e9
        m.set_process_state(age < LIVE_WINDOW_S)

    def rescan(self) -> None:
        """List the folder. Runs seen before are tailed here (cheap: only new lines); runs
        not seen yet are replayed off the GUI thread and fill their row when ready."""
        rows = run_listing.rows(self.runs_dir) if self.runs_dir is not None else []
        checked = {p for p in self._checked_paths()}
        self._updating = True
        try:
            self.table.setRowCount(len(rows))
            self._rows = rows
            models: dict[Path, RunModel | None] = {}
            for row in rows:
                if row.header:
                    continue
                p = row.path
                m = self.live.get(p)
                if m is None and p in self.models:
                    m = self._load(p)
                if m is None:
                    self._load_later(p)
                models[p] = m
            cells_of: dict[Path, list[RunModel | None]] = {}
            for row in rows:
                if row.is_cell and row.sweep is not None:
                    cells_of.setdefault(row.sweep, []).append(models.get(row.path))
            for r, row in enumerate(rows):
                if row.header:
                    self._fill_sweep_row(r, row, cells_of.get(row.path, []))
                else:
                    self._fill_run_row(r, row, models[row.path], row.path in checked)
        finally:
            self._updating = False
        self.empty.setText("" if rows else f"No runs in {self.runs_dir} yet. Launch one from the configuration tab.")
        self.empty.setVisible(not rows)
        self._apply_filter()

    def _fill_run_row(self, r: int, row: Row, m: RunModel | None, checked: bool) -> None:
        p = row.path
        if m is None:
            s = {"status": "loading…", "model": None, "dataset": None, "epochs_done": "",
                 "epochs_planned": "", "best_test_acc": None, "final_test_acc": None,
                 "flops_dense": None, "flops_spent": None}
        else:
            s = m.summary()
        chk = QTableWidgetItem()
        chk.setFlags(Qt.ItemIsUserCheckable | Qt.ItemIsEnabled | Qt.ItemIsSelectable)
        chk.setCheckState(Qt.Checked if checked else Qt.Unchecked)
        self.table.setItem(r, 0, chk)
        dense, spent = s["flops_dense"], s["flops_spent"]
        cells = [f"  ↳ {p.name}" if row.is_cell else p.name, s["status"],
                 f"{s['epochs_done']}/{s['epochs_planned'] or '?'}" if m is not None else "", _acc(s["best_test_acc"]),
                 _acc(s["final_test_acc"]),
                 f"{100 * spent / dense:.1f}%" if spent and dense else "–"]
        cells += extra_cells(m)
        for c, text in enumerate(cells, start=1):
            it = QTableWidgetItem(str(text))
            if c == 2:
                it.setForeground(QBrush(QColor(STATUS_COLORS.get(s["status"], "#333"))))
                if s.get("error"):
                    it.setToolTip(s["error"])
            if c == 1:
                part = f"\na cell of sweep {row.sweep.name}" if row.sweep is not None else ""
                it.setToolTip(f"{p}\n{s['model'] or '?'} on {s['dataset'] or '?'}{part}")
            if c == 6 and spent and dense:
                it.setToolTip(f"{fmt_flops(spent)} spent of a dense-equivalent {fmt_flops(dense)}")
            self.table.setItem(r, c, it)

    def _fill_sweep_row(self, r: int, row: Row, cells: list[RunModel | None]) -> None:
        """A sweep's own row: its name, how many of its cells completed, folded or not."""
        done = sum(1 for m in cells if m is not None and m.summary()["status"] == "completed")
        running = sum(1 for m in cells if m is not None and m.summary()["status"] == "running")
        status = f"{done}/{len(cells)} done" + (f", {running} running" if running else "")
        folded = row.path in self.collapsed
        texts = ["▸" if folded else "▾", f"{row.path.name} · {len(cells)} cells", status]
        bold = QFont()
        bold.setBold(True)
        for c in range(len(COLUMNS)):
            it = QTableWidgetItem(texts[c] if c < len(texts) else "")
            it.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable)
            it.setBackground(QBrush(QColor(SWEEP_ROW_BG)))
            it.setFont(bold)
            if c in (0, 1):
                it.setToolTip(f"sweep {row.path}\ndouble-click to {'show' if folded else 'hide'} its cells")
            self.table.setItem(r, c, it)

    def toggle_sweep(self, sweep: Path) -> None:
        """Fold or unfold a sweep's cells."""
        self.collapsed.symmetric_difference_update({sweep})
        self.rescan()

    # ---------------------------------------------------------------- filter and columns
    def _row_texts(self, r: int) -> list[str]:
        out = []
        for c in range(1, len(COLUMNS)):
            it = self.table.item(r, c)
            if it is not None:
                out.append(it.text())
        return out

    def _apply_filter(self) -> None:
        """Rows matching every word of the filter; a sweep's row while any of its cells (or
        its own name) matches; the cells of a folded sweep stay hidden."""
        q = self.filter.text().strip()
        shown = [not q or matches(q, self._row_texts(r)) for r in range(len(self._rows))]
        matched = {row.sweep for r, row in enumerate(self._rows) if row.is_cell and shown[r]}
        for r, row in enumerate(self._rows):
            if row.header and not shown[r]:
                shown[r] = row.path in matched
        for r, row in enumerate(self._rows):
            hidden = not shown[r] or (row.is_cell and row.sweep in self.collapsed)
            self.table.setRowHidden(r, hidden)

    def _header_menu(self, pos) -> None:
        menu = QMenu(self)
        for c in range(1, len(COLUMNS)):
            act = menu.addAction(COLUMNS[c])
            act.setCheckable(True)
            act.setChecked(not self.table.isColumnHidden(c))
            act.toggled.connect(lambda on, c=c: self.table.setColumnHidden(c, not on))
        menu.exec(self.table.horizontalHeader().mapToGlobal(pos))

    # ---------------------------------------------------------------- rename and delete
    def _row_menu(self, pos) -> None:
        row = self.table.rowAt(pos.y())
        if not 0 <= row < len(self._rows):
            return
        entry = self._rows[row]
        p = entry.path
        menu = QMenu(self)
        if entry.header:
            menu.addAction("Show its cells" if p in self.collapsed else "Hide its cells", lambda: self.toggle_sweep(p))
        else:
            menu.addAction("Open", lambda: self._open_row(row, 0))
            if entry.sweep is None:
                menu.addAction("Rename…", lambda: self.rename(p))
                menu.addAction("Delete…", lambda: self.delete(p))
            else:          # the sweep's manifest names this folder: renamed or deleted with the sweep
                note = menu.addAction(f"A cell of sweep {entry.sweep.name}: rename or delete the sweep folder")
                note.setEnabled(False)
        menu.exec(self.table.viewport().mapToGlobal(pos))

    def _ask_name(self, p: Path) -> str | None:
        text, ok = QInputDialog.getText(self, "Rename run", f"New folder name for {p.name}:", text=p.name)
        return text if ok else None

    def _confirm_delete(self, p: Path) -> bool:
        return QMessageBox.question(
            self, "Delete run", f"Delete {p.name} with its events, checkpoints and reports?\n\n{p}\n\n"
            "This cannot be undone.", QMessageBox.Yes | QMessageBox.No, QMessageBox.No) == QMessageBox.Yes

    def _refused(self, what: str, exc: Exception) -> None:
        QMessageBox.warning(self, f"Cannot {what} the run", str(exc))

    def _forget(self, p: Path) -> None:
        self.models.pop(p, None)
        self._failed.pop(p, None)

    def rename(self, p: Path) -> Path | None:
        """Ask for a new name and rename the run folder; the new path, or None."""
        if p in self.live and self.live[p].status == "running":
            self._refused("rename", run_actions.RunActionError("the run is still running in this window"))
            return None
        name = self._ask_name(p)
        if name is None or name.strip() == p.name:
            return None
        try:
            new = run_actions.rename_run(p, self.runs_dir, name)
        except (run_actions.RunActionError, OSError) as exc:
            self._refused("rename", exc)
            return None
        self._forget(p)
        self.rescan()
        self.compare_changed.emit(self.compared())
        return new

    def delete(self, p: Path) -> bool:
        """Ask, then delete the run folder; whether it was deleted."""
        if p in self.live and self.live[p].status == "running":
            self._refused("delete", run_actions.RunActionError("the run is still running in this window"))
            return False
        if not self._confirm_delete(p):
            return False
        try:
            run_actions.delete_run(p, self.runs_dir)
        except (run_actions.RunActionError, OSError) as exc:
            self._refused("delete", exc)
            return False
        self._forget(p)
        self.live.pop(p, None)
        self.rescan()
        self.compare_changed.emit(self.compared())
        return True

    def _load_later(self, p: Path) -> None:
        if p in self._loading or self._failed.get(p, -1.0) == _events_mtime(p):
            return      # a folder that failed to load is retried only once its events change
        self._loading.add(p)
        self.tasks.start(_load_run, p, supersede=False)   # every folder's replay is wanted

    def _on_loaded(self, result) -> None:
        p, model = result
        self._loading.discard(p)
        if model is None:
            self._failed[p] = _events_mtime(p)
        if isinstance(model, RunModel) and p not in self.models:
            self.models[p] = model
            self.judge_liveness(model)
        if not self._loading:
            self.rescan()

    def loading(self) -> bool:
        return bool(self._loading)

    def _checked_paths(self) -> list[Path]:
        out = []
        for r, row in enumerate(self._rows):
            it = self.table.item(r, 0)
            if not row.header and it is not None and it.checkState() == Qt.Checked:
                out.append(row.path)
        return out

    def compared(self) -> list[RunModel]:
        return [self.model_for(p) for p in self._checked_paths()]

    def set_compared(self, paths) -> None:
        want = {Path(p).resolve() for p in paths}
        self._updating = True
        for r, row in enumerate(self._rows):
            if not row.header:
                self.table.item(r, 0).setCheckState(Qt.Checked if row.path in want else Qt.Unchecked)
        self._updating = False
        self.compare_changed.emit(self.compared())

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if not self._updating and item.column() == 0:
            self.compare_changed.emit(self.compared())

    def _open_row(self, row: int, _col: int) -> None:
        if not 0 <= row < len(self._rows):
            return
        if self._rows[row].header:
            self.toggle_sweep(self._rows[row].path)
        else:
            self.open_requested.emit(self.model_for(self._rows[row].path))

    def showEvent(self, ev) -> None:
        self.rescan()
        self.timer.start()
        super().showEvent(ev)

    def hideEvent(self, ev) -> None:
        self.timer.stop()
        super().hideEvent(ev)

    def wait_idle(self, ms: int = 5000) -> None:
        self.tasks.wait(ms / 1000)

    def shutdown(self) -> None:
        self.timer.stop()
        self.tasks.shutdown()


def _events_mtime(p: Path) -> float:
    try:
        return (p / EVENTS_FILE).stat().st_mtime
    except OSError:
        return 0.0


def _load_run(state, path: Path):
    """The task: a run folder replayed off the GUI thread (None if unreadable)."""
    try:
        return path, RunModel.load(path)
    except Exception:   # unreadable folder: the row stays "loading", the next scan retries
        return path, None


def _acc(x) -> str:
    if x is None:
        return "–"
    return f"{100 * x:.2f}%" if x <= 1.0 else f"{x:.2f}"
