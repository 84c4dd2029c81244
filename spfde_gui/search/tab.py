"""The Search tab: define a budget search (space, budget, trials) with the projected cost
range of its space, start / pause / stop it, and watch its trials, figures and advice.

The search runs as a ``spfde-train search`` subprocess (``python -m engine search``), like
the command line: the studio never imports torch, nor Optuna. What it shows is read from
the search folder's ``trials.json``, which the search rewrites after every trial and every
couple of seconds while one trains (engine.search.report): the studio needs neither Optuna
nor the study's database driver, and a study on a remote database shows the same. The cost
range is the planner's (engine.search.feasibility, pure Python), computed in-process.
"""
from __future__ import annotations

import copy
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import yaml
from PySide6.QtCore import QByteArray, QProcess, QProcessEnvironment, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtSvgWidgets import QSvgWidget
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.search import advice as advice_mod
from engine.search import feasibility
from engine.search import spec as spec_mod
from engine.search.spec import SearchError
from spfde_gui.search import figures
from spfde_gui.search import report as report_mod

BUDGET_KINDS = {"fraction of dense FLOPs": "fraction", "training FLOPs": "flops",
                "fraction of a preset's FLOPs": "of", "GPU-hours per run": "gpu_hours"}
POLL_MS = 1000
# infeasible trials (never trained) in grey, pruned ones in orange, failed ones in red
STATE_COLOURS = {"infeasible": "#8a949e", "pruned": "#b7791f", "fail": "#c0392b"}
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def folder_name(name: str) -> str:
    """The study folder's name for a search name (as engine.search.study.folder_for)."""
    return _SAFE.sub("_", name).strip("_") or "search"


class SearchTab(QWidget):
    title = "Search"
    use_settings = Signal(dict)        # the best trial's full configuration, for the form

    def __init__(self, base_config: Callable[[], dict | None], searches_dir: Callable[[], Path], parent=None):
        super().__init__(parent)
        self.base_config = base_config
        self.searches_dir = searches_dir
        self.doc: dict = {}                      # the search file being edited (base, overrides, ...)
        self.source_dir: Path = spec_mod.SEARCHES_DIR
        self.folder: Path | None = None          # the study folder shown
        self.proc: QProcess | None = None
        self.snapshot: dict | None = None
        self._snap_mtime = 0.0
        self.state = "idle"                      # idle | running | pausing | stopping | paused | stopped | finished
        self._stderr = ""
        self._build()
        self._plan_timer = QTimer(self)
        self._plan_timer.setSingleShot(True)
        self._plan_timer.setInterval(300)
        self._plan_timer.timeout.connect(self.plan)
        self.poll_timer = QTimer(self)
        self.poll_timer.setInterval(POLL_MS)
        self.poll_timer.timeout.connect(self.refresh)
        self.poll_timer.start()
        self.load_file(spec_mod.SEARCHES_DIR / "demo_budget.yaml")

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        split = QSplitter()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)
        split.addWidget(self._build_editor())
        split.addWidget(self._build_results())
        split.setSizes([430, 700])

    def _build_editor(self) -> QWidget:
        w = QWidget()
        v = QVBoxLayout(w)
        box = QGroupBox("Space and budget")
        form = QFormLayout(box)
        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("search-name")
        form.addRow("Name", self.name_edit)
        self.base_label = QLabel()
        self.base_label.setWordWrap(True)
        base_row = QHBoxLayout()
        base_row.addWidget(self.base_label, 1)
        b = QPushButton("Use the form")
        b.setToolTip("Base the search on the Configure form's configuration")
        b.clicked.connect(self.base_from_form)
        base_row.addWidget(b)
        form.addRow("Base", base_row)
        self.space = QTableWidget(0, 2)
        self.space.setObjectName("search-space")
        self.space.setHorizontalHeaderLabels(["field", "range [low, high] or {choices: [...]}"])
        self.space.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.space.verticalHeader().hide()
        self.space.setMaximumHeight(130)
        self.space.itemChanged.connect(lambda _i: self._schedule_plan())
        form.addRow(self.space)
        row = QHBoxLayout()
        for text, slot in (("Add field", lambda: self.add_dim("freeze.target", "[0, 0.3]")),
                           ("Remove field", self.remove_dim)):
            btn = QPushButton(text)
            btn.clicked.connect(slot)
            row.addWidget(btn)
        form.addRow(row)
        self.budget_kind = QComboBox()
        self.budget_kind.addItems(list(BUDGET_KINDS))
        self.budget_value = QLineEdit()
        self.budget_extra = QLineEdit()
        self.budget_extra.setPlaceholderText("of: preset  /  speed: GPU run folder or FLOPs/s")
        brow = QHBoxLayout()
        brow.addWidget(self.budget_kind)
        brow.addWidget(self.budget_value)
        form.addRow("Budget", brow)
        form.addRow("", self.budget_extra)
        self.trials = QSpinBox()
        self.trials.setRange(1, 10000)
        self.seeds = QSpinBox()
        self.seeds.setRange(1, 50)
        self.workers = QSpinBox()
        self.workers.setRange(1, 64)
        nrow = QHBoxLayout()
        for label, sb in (("trials", self.trials), ("seeds", self.seeds), ("workers", self.workers)):
            nrow.addWidget(QLabel(label))
            nrow.addWidget(sb)
        form.addRow(nrow)
        self.sampler = QComboBox()
        self.sampler.addItems(list(spec_mod.SAMPLERS))
        self.pruner = QComboBox()
        self.pruner.addItems(list(spec_mod.PRUNERS))
        srow = QHBoxLayout()
        srow.addWidget(QLabel("sampler"))
        srow.addWidget(self.sampler)
        srow.addWidget(QLabel("pruner"))
        srow.addWidget(self.pruner)
        form.addRow(srow)
        for wdg in (self.name_edit, self.budget_value, self.budget_extra):
            wdg.textChanged.connect(lambda _t: self._schedule_plan())
        for cb in (self.budget_kind, self.sampler, self.pruner):
            cb.currentIndexChanged.connect(lambda _i: self._schedule_plan())
        for sb in (self.trials, self.seeds, self.workers):
            sb.valueChanged.connect(lambda _v: self._schedule_plan())
        v.addWidget(box)
        self.cost = QLabel()
        self.cost.setObjectName("search-cost")
        self.cost.setWordWrap(True)
        v.addWidget(self.cost)
        row = QHBoxLayout()
        self.start_btn = QPushButton("▶ Start")
        self.pause_btn = QPushButton("Pause")
        self.stop_btn = QPushButton("■ Stop")
        self.start_btn.clicked.connect(self.start)
        self.pause_btn.clicked.connect(self.pause)
        self.stop_btn.clicked.connect(self.stop)
        self.pause_btn.setToolTip("Stop the running trials with a checkpoint; Start continues the study and "
                                  "resumes them")
        self.stop_btn.setToolTip("Stop the search (running trials checkpoint); the study folder keeps every "
                                 "finished trial")
        for btn in (self.start_btn, self.pause_btn, self.stop_btn):
            row.addWidget(btn)
        v.addLayout(row)
        row = QHBoxLayout()
        for text, slot in (("Open file…", self._open_file_dialog), ("Open study…", self._open_folder_dialog),
                           ("Report", self.write_report)):
            btn = QPushButton(text)
            btn.clicked.connect(slot)
            row.addWidget(btn)
        v.addLayout(row)
        self.status = QLabel("")
        self.status.setObjectName("search-status")
        self.status.setWordWrap(True)
        v.addWidget(self.status)
        v.addStretch(1)
        self._update_buttons()
        return w

    def _build_results(self) -> QWidget:
        w = QSplitter(Qt.Vertical)
        self.table = QTableWidget(0, len(report_mod.COLUMNS))
        self.table.setObjectName("search-trials")
        self.table.setHorizontalHeaderLabels(list(report_mod.COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        w.addWidget(self.table)
        self.figure_tabs = QTabWidget()
        self.figs: dict[str, QSvgWidget] = {}
        for key, label in (("history", "History"), ("scatter", "Accuracy vs FLOPs"),
                           ("importances", "Importances")):
            sw = QSvgWidget()
            sw.setMinimumSize(420, 230)
            self.figs[key] = sw
            self.figure_tabs.addTab(sw, label)
        w.addWidget(self.figure_tabs)
        adv = QWidget()
        av = QVBoxLayout(adv)
        av.setContentsMargins(0, 0, 0, 0)
        self.advice = QPlainTextEdit()
        self.advice.setObjectName("search-advice")
        self.advice.setReadOnly(True)
        self.advice.setStyleSheet("font-family: monospace; font-size: 11px;")
        av.addWidget(self.advice, 1)
        self.use_btn = QPushButton("Use these settings")
        self.use_btn.setToolTip("Load the best trial's configuration into the Configure form")
        self.use_btn.clicked.connect(self.use_best)
        av.addWidget(self.use_btn)
        w.addWidget(adv)
        w.setSizes([260, 320, 160])
        return w

    # ------------------------------------------------------------------ the search file
    def load_file(self, path: str | Path) -> None:
        p = Path(path)
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        self.source_dir = p.resolve().parent
        self.set_doc(data)

    def set_doc(self, data: dict) -> None:
        self.doc = copy.deepcopy(data)
        base = self.doc.get("base")
        if isinstance(base, dict) and "config" in base:         # keep a relative base file findable
            bp = Path(str(base["config"])).expanduser()
            self.doc["base"] = {"config": str(bp if bp.is_absolute() else self.source_dir / bp)}
        self.name_edit.setText(str(self.doc.get("name", "search")))
        self.space.setRowCount(0)
        for k, v in (self.doc.get("space") or {}).items():
            self.add_dim(str(k), yaml.safe_dump(v, default_flow_style=True).strip())
        budget = self.doc.get("budget") or {"fraction": 0.5}
        kind = ("gpu_hours" if "gpu_hours" in budget else "of" if "of" in budget else
                "flops" if "flops" in budget else "fraction")
        self.budget_kind.setCurrentIndex(list(BUDGET_KINDS.values()).index(kind))
        self.budget_value.setText(str(budget.get("gpu_hours", budget.get("flops", budget.get("fraction", "")))))
        self.budget_extra.setText(str(budget.get("of", budget.get("speed", "")) or ""))
        self.trials.setValue(int(self.doc.get("trials", 8)))
        self.seeds.setValue(int(self.doc.get("seeds", 1)) if isinstance(self.doc.get("seeds", 1), int) else 1)
        self.workers.setValue(int(self.doc.get("workers", 1)))
        self.sampler.setCurrentText(str(self.doc.get("sampler", "tpe")))
        self.pruner.setCurrentText(str(self.doc.get("pruner", "median")))
        self._show_base()
        self.plan()

    def _show_base(self) -> None:
        base = self.doc.get("base")
        n = len(self.doc.get("overrides") or {})
        self.base_label.setText(f"{yaml.safe_dump(base, default_flow_style=True).strip()}"
                                + (f" with {n} override group(s)" if n else ""))

    def base_from_form(self) -> None:
        cfg = self.base_config()
        if cfg is None:
            self.status.setText("The Configure form has errors: fix them first")
            return
        cfg = {k: v for k, v in cfg.items() if k not in ("name", "seed", "run_dir")}
        self.doc["base"] = {"preset": "demo"}
        self.doc["overrides"] = cfg                  # every field: the form's configuration exactly
        self._show_base()
        self._schedule_plan()

    def add_dim(self, field: str = "sparsity.target", values: str = "[0.8, 0.98]") -> None:
        r = self.space.rowCount()
        self.space.insertRow(r)
        self.space.setItem(r, 0, QTableWidgetItem(field))
        self.space.setItem(r, 1, QTableWidgetItem(values))

    def remove_dim(self) -> None:
        r = self.space.currentRow()
        self.space.removeRow(r if r >= 0 else self.space.rowCount() - 1)
        self._schedule_plan()

    def search_dict(self) -> dict:
        """The search file the editor describes (what Start writes and runs)."""
        d = {k: v for k, v in self.doc.items() if k not in ("space", "budget")}
        d["name"] = self.name_edit.text().strip() or "search"
        space = {}
        for r in range(self.space.rowCount()):
            f, v = self.space.item(r, 0), self.space.item(r, 1)
            if f is None or not f.text().strip():
                continue
            try:
                space[f.text().strip()] = yaml.safe_load(v.text()) if v is not None else None
            except yaml.YAMLError:
                space[f.text().strip()] = v.text() if v is not None else None
        d["space"] = space
        kind = BUDGET_KINDS[self.budget_kind.currentText()]
        try:
            value = yaml.safe_load(self.budget_value.text())
        except yaml.YAMLError:
            value = self.budget_value.text()
        extra = self.budget_extra.text().strip()
        if kind == "of":
            d["budget"] = {"fraction": value, "of": extra}
        elif kind == "gpu_hours":
            d["budget"] = {"gpu_hours": value, **({"speed": yaml.safe_load(extra)} if extra else {})}
        else:
            d["budget"] = {kind: value}
        d.update(trials=self.trials.value(), seeds=self.seeds.value(), workers=self.workers.value(),
                 sampler=self.sampler.currentText(), pruner=self.pruner.currentText())
        return d

    def _schedule_plan(self) -> None:
        self._plan_timer.start()

    def plan(self) -> bool:
        """The space's projected cost range and the budget (the planner, no training)."""
        try:
            spec = spec_mod.parse(self.search_dict(), None, self.source_dir)
            r = feasibility.check_budget(spec)
        except SearchError as exc:
            self.cost.setStyleSheet("color: #c0392b;")
            self.cost.setText(str(exc))
            return False
        unit = r["unit"]
        share = f" ({100 * r['budget'] / r['dense']:.1f}% of dense)" if unit == "FLOPs" else ""
        fits = "all of the space fits" if r["max"] <= r["budget"] else (
            "points above the budget are refused before training")
        ref, why = feasibility.plain_mest_point(spec) if spec.reference else (None, "off (reference: false)")
        ref_text = (", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in ref.items())
                    if ref is not None else why)
        self.cost.setStyleSheet("")
        self.cost.setText(f"Projected cost of the space: {r['min']:.3g} .. {r['max']:.3g} {unit} "
                          f"(dense {r['dense']:.3g} FLOPs); budget {r['budget']:.3g} {unit}{share}: {fits}.\n"
                          f"Plain-MEST reference trial: {ref_text}")
        return True

    # ------------------------------------------------------------------ the process
    def is_running(self) -> bool:
        return self.proc is not None and self.proc.state() != QProcess.NotRunning

    def start(self) -> bool:
        if self.is_running() or not self.plan():
            return False
        d = self.search_dict()
        # a study opened from disk (--open, Open study…) continues in its own folder
        opened = self.folder is not None and self.folder.name == folder_name(d["name"])
        out_dir = self.folder.parent if opened and self.folder is not None else Path(self.searches_dir())
        out_dir.mkdir(parents=True, exist_ok=True)
        f = out_dir / f"{folder_name(d['name'])}.search.yaml"
        f.write_text(yaml.safe_dump(d, sort_keys=False), encoding="utf-8")
        self.folder = out_dir / folder_name(d["name"])
        self._stderr = ""
        self.proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        root = str(Path(__file__).resolve().parent.parent.parent)      # this checkout's engine first
        env.insert("PYTHONPATH", os.pathsep.join(p for p in (root, env.value("PYTHONPATH")) if p))
        self.proc.setProcessEnvironment(env)
        self.proc.readyReadStandardError.connect(self._read_stderr)
        self.proc.readyReadStandardOutput.connect(lambda: self.proc.readAllStandardOutput() if self.proc else None)
        self.proc.finished.connect(self._on_finished)
        self.proc.start(sys.executable, ["-m", "engine", "search", str(f), "--search-dir", str(out_dir)])
        self.state = "running"
        self.status.setText(f"Searching: {self.folder}")
        self._update_buttons()
        return True

    def _read_stderr(self) -> None:
        if self.proc is not None:
            self._stderr = (self._stderr + bytes(self.proc.readAllStandardError().data()).decode(
                "utf-8", "replace"))[-6000:]

    def _signal(self) -> None:
        if self.is_running() and self.proc is not None:
            self.proc.terminate()          # SIGTERM: the search stops its trials with a checkpoint

    def pause(self) -> None:
        if self.is_running():
            self.state = "pausing"
            self._signal()
            self.status.setText("Pausing: the running trials save a checkpoint…")
            self._update_buttons()

    def stop(self) -> None:
        if self.is_running():
            self.state = "stopping"
            self._signal()
            self.status.setText("Stopping: the running trials save a checkpoint…")
            self._update_buttons()

    def _on_finished(self, code: int, _status) -> None:
        self._read_stderr()
        self.state = {"pausing": "paused", "stopping": "stopped"}.get(self.state, "finished")
        if code != 0 and self.state == "finished":
            tail = [ln for ln in self._stderr.splitlines() if ln.strip() and not ln.startswith("{")][-6:]
            self.status.setStyleSheet("color: #c0392b;")
            self.status.setText(f"The search exited with status {code}:\n" + "\n".join(tail))
        else:
            self.status.setStyleSheet("")
            self.status.setText({"paused": "Paused: Start continues the study (the interrupted trial resumes "
                                           "from its checkpoint).",
                                 "stopped": "Stopped: the study folder keeps every finished trial; Start "
                                            "continues it.",
                                 "finished": f"Finished: {self.folder}"}[self.state])
        self.refresh(force=True)
        self._update_buttons()

    def _update_buttons(self) -> None:
        running = self.is_running() and self.state == "running"
        self.start_btn.setEnabled(not self.is_running())
        self.start_btn.setText("▶ Continue" if self.state in ("paused", "stopped") else "▶ Start")
        self.pause_btn.setEnabled(running)
        self.stop_btn.setEnabled(running)

    # ------------------------------------------------------------------ the study folder
    def open_folder(self, folder: str | Path) -> bool:
        """Show a study folder (``spfde-gui --open SEARCH_DIR``): its trials, figures, advice;
        the editor takes its search file so Start would continue it."""
        self.folder = Path(folder)
        marker = self.folder / "search.yaml"
        if marker.is_file():
            saved = yaml.safe_load(marker.read_text(encoding="utf-8")) or {}
            if isinstance(saved.get("spec"), dict):
                src = saved.get("source")
                self.source_dir = Path(src).resolve().parent if src else self.folder
                self.set_doc(saved["spec"])
        self._snap_mtime = 0.0
        self.refresh(force=True)
        if self.snapshot is None:
            self.status.setText(f"{self.folder} holds no {advice_mod.SNAPSHOT} yet")
            return False
        self.status.setText(f"Study {self.folder}")
        return True

    def refresh(self, force: bool = False) -> None:
        if self.folder is None:
            return
        p = self.folder / advice_mod.SNAPSHOT
        try:
            mtime = p.stat().st_mtime
        except OSError:
            return
        if not force and mtime == self._snap_mtime:
            return
        snap = advice_mod.read_snapshot(self.folder)
        if snap is None:
            return
        self._snap_mtime = mtime
        self.snapshot = snap
        self._fill_table(snap)
        for key, svg in report_mod.figure_set(snap).items():
            self.figs[key].load(QByteArray(svg.encode("utf-8")))
        adv = advice_mod.advice(snap["trials"], snap.get("reference"))
        self.advice.setPlainText("\n".join(advice_mod.format_advice(adv, snap.get("budget"))))
        self.use_btn.setEnabled(adv is not None)

    def _fill_table(self, snap: dict) -> None:
        rows = report_mod.table_rows(snap)
        self.table.setRowCount(len(rows))
        for i, (row, trial) in enumerate(zip(rows, snap["trials"])):
            if trial.get("state") == "running" and trial.get("curve"):
                last = max(trial["curve"], key=int)
                row[4] = f"epoch {last}: {100 * float(trial['curve'][last]):.2f}%"
            if trial.get("state") == "running" and not self.is_running():
                row[1] = "interrupted"       # left running by a stopped search: Continue resumes it
            colour = STATE_COLOURS.get(str(trial.get("state")))
            for j, text in enumerate(row):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if colour:
                    item.setForeground(QBrush(QColor(colour)))
                self.table.setItem(i, j, item)

    def best_config(self) -> dict | None:
        """The best trial's full configuration (its first seed's cell), from the study folder."""
        if self.snapshot is None or self.folder is None:
            return None
        adv = advice_mod.advice(self.snapshot["trials"], self.snapshot.get("reference"))
        if adv is None or not adv["best"].get("cells"):
            return None
        p = self.folder / "configs" / f"{adv['best']['cells'][0]}.yaml"
        try:
            return yaml.safe_load(p.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            return None

    def use_best(self) -> None:
        cfg = self.best_config()
        if cfg is None:
            self.status.setText("No completed trial to take the settings from yet")
            return
        self.use_settings.emit(cfg)

    def write_report(self) -> dict | None:
        if self.folder is None or self.snapshot is None:
            self.status.setText("No study to report yet")
            return None
        try:
            written = report_mod.export_search_report(self.folder)
        except Exception as exc:  # noqa: BLE001 - the message in the tab, not a traceback
            self.status.setText(f"Report failed: {type(exc).__name__}: {exc}")
            return None
        self.status.setText("Report: " + ", ".join(str(p) for p in written.values()))
        return written

    def _open_file_dialog(self) -> None:
        p, _ = QFileDialog.getOpenFileName(self, "Open a search file", str(spec_mod.SEARCHES_DIR),
                                           "Search files (*.yaml *.yml)")
        if p:
            self.load_file(p)

    def _open_folder_dialog(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Open a study folder", str(self.searches_dir()))
        if d:
            self.open_folder(d)

    def shutdown(self, wait_ms: int = 30000) -> None:
        """The window closes: stop the search with a checkpoint (Start later continues it)."""
        if self.is_running() and self.proc is not None:
            self.state = "stopping"
            self.proc.terminate()
            if not self.proc.waitForFinished(wait_ms):
                self.proc.kill()
                self.proc.waitForFinished(5000)

    # figures for tests and the screenshot
    def figure_svgs(self) -> dict[str, str]:
        return report_mod.figure_set(self.snapshot) if self.snapshot else {
            "history": figures.empty_svg("Optimisation history", "no study open")}
