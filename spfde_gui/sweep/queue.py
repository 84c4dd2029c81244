"""The sweep queue: build a sweep from the form (a field given several values is an axis),
see every cell's projected cost, start it, pause, reorder or drop waiting cells.

The cells run one at a time through the window's EngineController, so the running cell
shows live in the run views exactly like a hand-launched run. The sweep folder, its
manifest and results.jsonl are written with the engine's pure ``engine.sweep`` modules, so
a sweep started here can be resumed with ``spfde-train sweep SWEEP_DIR`` and vice versa.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine import config as cfgmod
from engine.sweep import cells as cells_mod
from engine.sweep import manifest as manifest_mod
from engine.sweep import results as results_mod
from engine.sweep import state as state_mod
from engine.sweep.spec import SweepError, parse

QUEUE_COLUMNS = ("cell", "setting", "seed", "FLOPs", "est. time", "status")
AXIS_FIELDS = [f.path for f in cfgmod.FIELDS if f.path not in ("seed", "name", "run_dir") and f.kind not in ("list", "mapping")]


def parse_values(text: str) -> list:
    """'0.9, 0.95, 0.98' -> [0.9, 0.95, 0.98]; each item read as YAML (true, null, mest_ems)."""
    out = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            out.append(yaml.safe_load(item))
        except yaml.YAMLError:
            out.append(item)
    return out


class SweepQueue(QWidget):
    sweep_changed = Signal(object)       # the Manifest, when created or a cell finished

    def __init__(self, controller, base_config: Callable[[], dict | None],
                 sweeps_dir: Callable[[], Path], flops_per_s: float | None = None, parent=None):
        super().__init__(parent)
        self.controller = controller
        self.base_config = base_config
        self.sweeps_dir = sweeps_dir
        self.flops_per_s = flops_per_s or cells_mod.DEFAULT_CPU_FLOPS_PER_S
        self.cells: list[cells_mod.Cell] = []
        self.spec = None
        self.manifest: manifest_mod.Manifest | None = None
        # set by the window: Start hands the sweep folder to it (Slurm) when it returns True
        self.remote_start: Callable[[manifest_mod.Manifest], bool] | None = None
        self.running = False
        self._current: tuple[cells_mod.Cell, int] | None = None
        controller.finished.connect(self._on_finished)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Sweep name"))
        self.name_edit = QLineEdit("sweep")
        self.name_edit.setObjectName("sweep-name")
        row.addWidget(self.name_edit, 1)
        row.addWidget(QLabel("Seeds"))
        self.seeds = QSpinBox()
        self.seeds.setRange(1, 50)
        self.seeds.setValue(1)
        self.seeds.setObjectName("sweep-seeds")
        row.addWidget(self.seeds)
        lay.addLayout(row)
        lay.addWidget(QLabel("Axes: a field with several comma-separated values (the rest comes from the "
                             "Configure form)"))
        self.axes = QTableWidget(0, 2)
        self.axes.setObjectName("sweep-axes")
        self.axes.setHorizontalHeaderLabels(["field", "values (comma-separated)"])
        self.axes.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.axes.verticalHeader().hide()
        self.axes.setMaximumHeight(130)
        lay.addWidget(self.axes)
        row = QHBoxLayout()
        for text, slot in (("Add axis", lambda: self.add_axis()), ("Remove axis", self.remove_axis),
                           ("Plan cells", self.plan)):
            b = QPushButton(text)
            b.clicked.connect(slot)
            row.addWidget(b)
        lay.addLayout(row)
        self.message = QLabel()
        self.message.setObjectName("sweep-message")
        self.message.setWordWrap(True)
        lay.addWidget(self.message)
        self.table = QTableWidget(0, len(QUEUE_COLUMNS))
        self.table.setObjectName("sweep-queue")
        self.table.setHorizontalHeaderLabels(list(QUEUE_COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        # the setting (long with several axes) takes what is left, elided with a tooltip, so
        # the status column stays in view without scrolling
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.Stretch)
        self.table.horizontalHeader().setStretchLastSection(False)
        lay.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.start_btn = QPushButton("▶ Start")
        self.pause_btn = QPushButton("Pause")
        self.up_btn = QPushButton("Up")
        self.down_btn = QPushButton("Down")
        self.drop_btn = QPushButton("Drop")
        for b, slot in ((self.start_btn, self.start), (self.pause_btn, self.pause), (self.up_btn, lambda: self.move(-1)),
                        (self.down_btn, lambda: self.move(1)), (self.drop_btn, self.drop)):
            b.clicked.connect(slot)
            row.addWidget(b)
        lay.addLayout(row)
        self.total = QLabel()
        lay.addWidget(self.total)
        self._update_buttons()

    # ---------------------------------------------------------------- building
    def add_axis(self, field: str = "sparsity.target", values: str = "") -> None:
        r = self.axes.rowCount()
        self.axes.insertRow(r)
        combo = QComboBox()
        combo.addItems(AXIS_FIELDS)
        combo.setCurrentText(field)
        self.axes.setCellWidget(r, 0, combo)
        self.axes.setItem(r, 1, QTableWidgetItem(values))

    def remove_axis(self) -> None:
        r = self.axes.currentRow()
        self.axes.removeRow(r if r >= 0 else self.axes.rowCount() - 1)

    def axes_dict(self) -> dict[str, list]:
        out: dict[str, list] = {}
        for r in range(self.axes.rowCount()):
            fld = self.axes.cellWidget(r, 0).currentText()
            item = self.axes.item(r, 1)
            out[fld] = parse_values(item.text() if item else "")
        return out

    def plan(self) -> bool:
        """Expand, validate and plan every cell; False with the error shown."""
        if self.running:
            self.message.setText("A sweep is running: pause it before planning a new one.")
            return False
        base = self.base_config()
        if base is None:
            self.message.setText("The Configure form has invalid fields: fix them first.")
            return False
        base = {k: v for k, v in base.items() if k not in ("name", "seed")}
        data = {"name": self.name_edit.text().strip() or "sweep", "overrides": base,
                "axes": self.axes_dict(), "seeds": self.seeds.value()}
        try:
            self.spec = parse(data)
            self.cells = cells_mod.build(self.spec)
        except SweepError as exc:
            # drop the previous plan: Start must not run cells the message says were not planned
            self.cells, self.spec, self.manifest = [], None, None
            self.refresh()
            self.message.setText("Cannot plan: " + "; ".join(f"{w}: {m}" for w, m in exc.errors[:4]))
            self.message.setStyleSheet("color: #c0392b;")
            return False
        self.manifest = None
        self.message.setStyleSheet("")
        self.message.setText(f"{len(self.cells)} cells planned; Start runs them one after another into "
                             f"{self.sweeps_dir()}.")
        self.refresh()
        return True

    # ---------------------------------------------------------------- running
    def start(self) -> bool:
        if not self.cells:
            self.message.setText("Plan the cells first.")
            return False
        if self.manifest is None:
            self.manifest = manifest_mod.create(self.spec, self.cells, self.sweeps_dir())
            self.sweep_changed.emit(self.manifest)
        if self.remote_start is not None and self.remote_start(self.manifest):
            self.message.setText(f"Submitted to Slurm: {self.manifest.dir} (the Cluster tab shows the jobs)")
            return True
        self.running = True
        self.message.setText(f"Running the sweep in {self.manifest.dir}")
        self._next()
        return True

    def folder_for_submit(self) -> Path | None:
        """The planned sweep's folder (made now if needed) for a submission elsewhere, or None."""
        if not self.cells:
            return None
        if self.manifest is None:
            self.manifest = manifest_mod.create(self.spec, self.cells, self.sweeps_dir())
            self.sweep_changed.emit(self.manifest)
        return self.manifest.dir

    def holds_paused_cell(self, run_dir) -> bool:
        """Whether ``run_dir`` is a cell of this queue's sweep while it is paused: Start
        resumes it, so the toolbar's Resume must not (two ways, two different outcomes)."""
        if self.manifest is None or self.running or run_dir is None:
            return False
        return Path(run_dir).resolve().parent == Path(self.manifest.dir).resolve()

    def pause(self) -> None:
        """No new cell starts; the running one stops with a checkpoint (Start resumes it)."""
        self.running = False
        if self._current is not None and self.controller.is_running():
            self.controller.stop()
        self.message.setText("Paused: the running cell checkpoints; Start continues from there.")
        self._update_buttons()

    def _next(self) -> None:
        if not self.running or self.manifest is None or self._current is not None:
            self._update_buttons()
            return
        if self.controller.is_running():     # a hand-launched run: wait for it
            self.message.setText("Waiting for the run in progress to end before the next cell.")
            QTimer.singleShot(1000, self._next)
            return
        todo = [st for st in state_mod.states(self.manifest) if st.todo]
        if not todo:
            self.running = False
            self.message.setText(f"Sweep finished: {self.manifest.dir}")
            self.refresh()
            self.sweep_changed.emit(self.manifest)
            return
        st = todo[0]
        self._current = (st.cell, st.failures + 1)
        if st.resume and st.run_dir is not None:
            self.controller.resume(st.run_dir)
        else:
            self.controller.start_run(cfgmod.from_dict(st.cell.config), self.manifest.dir)
        self.refresh()

    def _on_finished(self, model) -> None:
        if self._current is None or self.manifest is None:
            return
        cell, attempt = self._current
        self._current = None
        status = getattr(model, "status", "crashed")
        run_dir = Path(model.run_dir) if model is not None and model.run_dir is not None else None
        res = self.manifest.dir / manifest_mod.RESULTS
        if status in ("completed", "finished_unsaved"):     # every epoch trained: done
            note = results_mod.UNSAVED_NOTE if status == "finished_unsaved" else ""
            manifest_mod.append_jsonl(res, results_mod.result_line(cell, "completed", run_dir, attempt, note=note))
        elif status == "stopped":
            self.running = False          # paused here or stopped by hand: resume on Start
        else:
            err = (model.error or {}).get("message", "") if model is not None else ""
            manifest_mod.append_jsonl(res, results_mod.result_line(cell, "failed", run_dir, attempt,
                                                                   err or "the engine failed"))
        self.refresh()
        self.sweep_changed.emit(self.manifest)
        if self.running:
            QTimer.singleShot(0, self._next)
        else:
            self._update_buttons()

    # ---------------------------------------------------------------- editing the queue
    def _statuses(self) -> dict[str, str]:
        if self.manifest is None:
            return {c.name: "waiting" for c in self.cells}
        out = {}
        for st in state_mod.states(self.manifest):
            s = {"done": "completed", "failed": "failed", "resume": "stopped", "start": "waiting",
                 "retry_start": "failed (retry)", "retry_resume": "failed (retry)"}[st.action]
            out[st.cell.name] = s
        if self._current is not None:
            out[self._current[0].name] = "running"
        return out

    def waiting(self, name: str) -> bool:
        return self._statuses().get(name) == "waiting"

    def move(self, step: int) -> bool:
        r = self.table.currentRow()
        j = r + step
        if not (0 <= r < len(self.cells) and 0 <= j < len(self.cells)):
            return False
        if not (self.waiting(self.cells[r].name) and self.waiting(self.cells[j].name)):
            self.message.setText("Only waiting cells can be reordered.")
            return False
        self.cells[r], self.cells[j] = self.cells[j], self.cells[r]
        if self.manifest is not None:
            self.manifest.reorder([c.name for c in self.cells])
        self.refresh()
        self.table.selectRow(j)
        return True

    def drop(self) -> bool:
        r = self.table.currentRow()
        if not 0 <= r < len(self.cells):
            return False
        name = self.cells[r].name
        if not self.waiting(name):
            self.message.setText("Only waiting cells can be dropped.")
            return False
        del self.cells[r]
        if self.manifest is not None:
            self.manifest.drop(name)
        self.refresh()
        return True

    # ---------------------------------------------------------------- display
    def refresh(self) -> None:
        st = self._statuses()
        self.table.setRowCount(len(self.cells))
        total = 0.0
        for r, c in enumerate(self.cells):
            secs = cells_mod.estimate_seconds(c, self.flops_per_s)
            if st.get(c.name) in ("waiting", "stopped", "running", "failed (retry)"):
                total += secs
            vals = [c.name, c.label(), str(c.seed), cells_mod.flops_text(c.projected),
                    cells_mod._duration(secs), st.get(c.name, "?")]
            for k, v in enumerate(vals):
                item = QTableWidgetItem(v)
                item.setData(Qt.UserRole, c.name)
                if k == 1:
                    item.setToolTip(v)
                elif k == 3 and not c.projected.get("exact", True):
                    item.setToolTip("an estimate: SNIP/GraSP choose layer densities from the data; "
                                    "priced at the uniform split")
                self.table.setItem(r, k, item)
        self.total.setText(f"{len(self.cells)} cells, about {cells_mod._duration(total)} left "
                           f"(estimate at {self.flops_per_s:.3g} FLOPs/s)")
        self._update_buttons()

    def _update_buttons(self) -> None:
        has = bool(self.cells)
        self.start_btn.setEnabled(has and not self.running)
        self.pause_btn.setEnabled(self.running)
        for b in (self.up_btn, self.down_btn, self.drop_btn):
            b.setEnabled(has)
