"""The studio window: configuration and cost preview, runs, the live views of the run in
focus, and the controls of the engine process."""
from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from engine.config import hints
from spfde_gui import report
from spfde_gui.model.run_model import RunModel, is_run_dir
from spfde_gui.model.run_state import batch_progress_text, clock_text, finish_estimate, resume_blocker
from spfde_gui.palette import STATUS_COLORS
from spfde_gui.search.tab import SearchTab
from spfde_gui.sweep.queue import SweepQueue
from spfde_gui.sweep.results_view import SweepResultsView
from spfde_gui.system.engine_process import EngineController
from spfde_gui.system.tasks import TaskRunner
from spfde_gui.views import AnalysisView, FlopsView, FreezeView, HardwareView, SieveView, TrainingView
from spfde_gui.window import help_menu
from spfde_gui.window.cluster_panel import ClusterPanel
from spfde_gui.window.config_form import ConfigForm
from spfde_gui.window.cost_preview import CostPreview
from spfde_gui.window.elided_label import ElidedLabel
from spfde_gui.window.runs_panel import RunsPanel

REDRAW_HZ = 15
CLOSE_CHOICES = ("stop", "kill", "cancel")
RESUME_TIP = "Resume the stopped or crashed run in view from its last checkpoint"
BLOCKED_MSG = "Launch blocked: fix the fields marked in red."
LAUNCH_TIP = "Start a run with the configuration on the left"
STOP_TIP = "Stop gracefully: checkpoint and exit (then terminate, then kill)"
CKPT_TIP = "Ask the engine to save a checkpoint"
KILL_TIP = "Kill the engine process at once (asks first; no checkpoint)"


def _retain_when_hidden(w: QWidget) -> None:
    sp = w.sizePolicy()
    sp.setRetainSizeWhenHidden(True)
    w.setSizePolicy(sp)


def _no_min_width(w: QLabel) -> None:
    """A word-wrapped label whose longest word (a path) must not set the window's width."""
    sp = w.sizePolicy()
    sp.setHorizontalPolicy(QSizePolicy.Ignored)
    w.setSizePolicy(sp)


class RunHeader(QWidget):
    """Name, status badge, progress and the crash banner of the run in focus."""

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 2)
        top = QHBoxLayout()
        # long names, paths and status lines are elided (full text in the tooltip): a QLabel's
        # text would set the window's minimum width, and hidden rows keep their room, so the
        # window never widens itself and the tabs below never move as a run starts
        self.title = ElidedLabel("No run open")
        self.title.setStyleSheet("font-size: 16px; font-weight: bold;")
        self.title.setMaximumWidth(380)    # a long run name leaves room for the status and path
        self.badge = QLabel()
        self.badge.setObjectName("status-badge")
        self.detail = ElidedLabel(mode=Qt.ElideMiddle)
        self.detail.setObjectName("run-detail")
        self.detail.setStyleSheet("color: #555;")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.setTextVisible(True)
        _retain_when_hidden(self.progress)
        self.progress.hide()
        top.addWidget(self.title)
        top.addWidget(self.badge)
        top.addWidget(self.detail, 1)
        top.addWidget(self.progress)
        lay.addLayout(top)
        # inside the epoch: batch, speed and the time left (epoch and run)
        self.rate = ElidedLabel()
        self.rate.setObjectName("batch-progress")
        self.rate.setStyleSheet("color: #555;")
        self.rate.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
        _retain_when_hidden(self.rate)
        self.rate.hide()
        lay.addWidget(self.rate)
        self.banner = QLabel()
        self.banner.setObjectName("crash-banner")
        self.banner.setWordWrap(True)
        _no_min_width(self.banner)
        self.banner.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.banner.setStyleSheet("background: #fdecea; color: #8a1f11; border: 1px solid #e0a39b; padding: 6px;")
        self.banner.hide()
        lay.addWidget(self.banner)
        # non-fatal engine errors (e.g. a checkpoint the full disk refused): the run goes on
        self.warning = QLabel()
        self.warning.setObjectName("run-warning")
        self.warning.setWordWrap(True)
        _no_min_width(self.warning)
        self.warning.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.warning.setStyleSheet("background: #fff8d6; color: #6b5200; border: 1px solid #e6cf7a; padding: 4px;")
        self.warning.hide()
        lay.addWidget(self.warning)
        self.tail = QPlainTextEdit()
        self.tail.setObjectName("crash-tail")
        self.tail.setReadOnly(True)
        self.tail.setMaximumHeight(130)
        self.tail.setStyleSheet("font-family: monospace; font-size: 11px; background: #fff8f7;")
        self.tail.hide()
        lay.addWidget(self.tail)

    def show_model(self, m: RunModel | None, stderr_tail: list[str] | None = None) -> None:
        if m is None:
            self.title.setText("No run open")
            self.badge.setText("")
            self.badge.setStyleSheet("")
            self.detail.setText("")
            self.progress.hide()
            self.rate.hide()
            self.banner.hide()
            self.warning.hide()
            self.tail.hide()
            return
        st = m.status
        self.title.setText(m.name)
        self.badge.setText(f" {st} ")
        self.badge.setStyleSheet(f"background: {STATUS_COLORS.get(st, '#777')}; color: white; "
                                 "border-radius: 4px; padding: 1px 6px; font-weight: bold;")
        dev = (m.run_started or {}).get("device")
        bits = [f"device {dev}" if dev else "", str(m.run_dir) if m.run_dir else ""]
        if m.threads_text():      # adaptive threads moved the count (engine.training.adaptive_threads)
            bits.insert(1, m.threads_text().split(" (")[0])
        if st == "starting":
            bits = [f"the engine is {m.start_phase or 'starting'}…"] + bits[1:]
        self.detail.setText("  ·  ".join(b for b in bits if b))
        total = m.epochs_planned or 0
        done = m.n_epochs
        if total:
            self.progress.show()
            self.progress.setRange(0, total * 1000)
            frac = 0.0
            pr = m.progress
            if st == "running" and pr and pr.get("batches"):
                frac = min(1.0, pr.get("batch", 0) / max(1, pr["batches"]))
            self.progress.setValue(int(1000 * min(total, done + frac)))
            # the epoch under way, counted from 1 as the CLI does
            self.progress.setFormat(f"epoch {min(done + 1, total)}/{total}" if st == "running" and done < total
                                    else f"{done}/{total} epochs")
        else:
            self.progress.hide()
        text = batch_progress_text(m) if st == "running" else ""
        self.rate.setText(text)
        self.rate.setVisible(bool(text))
        self._show_warnings(m.warnings, m.skipped_text)
        if st in ("crashed", "killed", "refused"):
            err = m.error or {}
            msg = err.get("message") or "the engine stopped without finishing the run (no run_finished event)"
            head = "The engine refused the configuration" if st == "refused" else f"Run {st}"
            self.banner.setText(f"<b>{head}:</b> {html.escape(msg)}".replace("\n", "<br>"))
            self.banner.show()
            lines = list(stderr_tail or [])[-60:]
            text = "\n".join(lines) if lines else (err.get("traceback") or "")
            self.tail.setPlainText(text)
            self.tail.setVisible(bool(text.strip()))
            self.tail.verticalScrollBar().setValue(self.tail.verticalScrollBar().maximum())
        else:
            self.banner.hide()
            self.tail.hide()

    def _show_warnings(self, warnings: list[dict], skipped: str = "") -> None:
        if not warnings:
            self.warning.setText(f"⚠ {html.escape(skipped)}")
            self.warning.setVisible(bool(skipped))
            return
        last = warnings[-1]
        msg = str(last.get("message") or last.get("type") or "the engine reported a non-fatal error")
        where = f" (epoch {last['epoch']})" if isinstance(last.get("epoch"), int) else ""
        count = f"{len(warnings)} warnings, latest" if len(warnings) > 1 else "Warning"
        self.warning.setText(f"⚠ <b>{count}{where}:</b> {html.escape(msg)} — the run went on."
                             + (f" {html.escape(skipped)}" if skipped else ""))
        self.warning.show()


class MainWindow(QMainWindow):
    def __init__(self, runs_dir: str | Path | None = None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("SpFDE Studio")
        self.resize(1440, 900)
        self.model: RunModel | None = None
        self.close_policy: str | None = None   # tests: "stop" or "kill" instead of asking
        self.kill_policy: bool | None = None    # tests: True/False instead of asking before a kill
        self.controller = EngineController(self)
        self._connect_engine()
        self.left = self._build_left(runs_dir)
        right = self._build_right()
        split = QSplitter(Qt.Horizontal)
        split.addWidget(self.left)
        split.addWidget(right)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([470, 970])
        self.setCentralWidget(split)
        self._build_actions()
        self.statusBar().showMessage("Ready")
        self._start_timers()
        self._schedule_preview()
        self._update_actions()

    def _connect_engine(self) -> None:
        """The engine controller's and the report exporter's signals."""
        # report files are written by a background task (figures are drawn here first)
        self.exporter = TaskRunner(self, "report")
        self.exporter.progress.connect(self._on_export_progress)
        self.exporter.done.connect(self._on_exported)
        self.exporter.failed.connect(self._on_export_failed)
        self._export_out: Path | None = None
        self.controller.log_line.connect(self._on_log)
        self.controller.state_changed.connect(self._update_actions)
        self.controller.started.connect(self._on_engine_started)
        self.controller.run_dir_known.connect(self._on_run_dir_known)
        self.controller.finished.connect(self._on_engine_finished)

    def _build_left(self, runs_dir) -> QTabWidget:
        """Left: the configuration with its cost projection, the runs, the sweep queue."""
        self.form = ConfigForm()
        if runs_dir is not None:
            self.form.set_field("run_dir", str(runs_dir))
        self.preview = CostPreview()
        self.form.changed.connect(self._schedule_preview)
        self.form.validity_changed.connect(self._update_actions)
        self.preview.updated.connect(self._update_actions)     # the planner may refuse the config
        self.preview.updated.connect(lambda _res: self.form.show_plan_errors(self.preview.rejected_fields))
        self.preview.fix_requested.connect(self._apply_fix)
        cfg_split = QSplitter(Qt.Vertical)
        cfg_split.addWidget(self.form)
        cfg_split.addWidget(self.preview)
        cfg_split.setStretchFactor(0, 3)
        cfg_split.setStretchFactor(1, 1)
        launch_row = QWidget()
        lr = QVBoxLayout(launch_row)
        lr.setContentsMargins(0, 0, 0, 0)
        lr.addWidget(cfg_split, 1)
        self.launch_msg = QLabel()
        self.launch_msg.setObjectName("launch-message")
        self.launch_msg.setWordWrap(True)
        self.launch_msg.setStyleSheet("color: #c0392b;")
        lr.addWidget(self.launch_msg)
        self.launch_btn = QPushButton("▶  Launch run")
        self.launch_btn.setObjectName("launch")
        # a style sheet drops the native disabled look: say it again, or Launch never looks off
        self.launch_btn.setStyleSheet("QPushButton { font-weight: bold; padding: 6px; }"
                                      " QPushButton:disabled { color: #9a9a9a; background: #e4e4e4; }")
        self.launch_btn.clicked.connect(self.launch)
        lr.addWidget(self.launch_btn)
        self.runs = RunsPanel(self._runs_dir())
        self.runs.open_requested.connect(self.open_model)
        self.runs.compare_changed.connect(self._on_compare)
        left = QTabWidget()
        left.addTab(launch_row, "Configure")
        left.addTab(self.runs, "Runs")
        # sweeps (spfde_gui/sweep): the queue on the left, its results on the right
        self.sweep_queue = SweepQueue(self.controller, self._form_config_dict,
                                      lambda: self._runs_dir().parent / "sweeps")
        left.addTab(self.sweep_queue, "Sweep")
        # Slurm (docs/slurm.md): where Launch and the sweep's Start send runs, and the queue
        self.cluster = ClusterPanel(self.sweep_queue.folder_for_submit,
                                    lambda: self.model.run_dir if self.model is not None else None)
        self.sweep_queue.remote_start = lambda m: self.cluster.on_slurm() and self.cluster.submit_sweep(m.dir)
        left.addTab(self.cluster, "Cluster")
        return left

    def _build_right(self) -> QWidget:
        """Right: the run in focus, its header and the live views."""
        self.header = RunHeader()
        self.training = TrainingView()
        self.freeze = FreezeView()
        self.sieve = SieveView()
        self.flops = FlopsView()
        self.hardware = HardwareView()
        self.analysis = AnalysisView()
        self.views = [self.training, self.freeze, self.sieve, self.flops, self.hardware, self.analysis]
        self.tabs = QTabWidget()
        for v in self.views:
            self.tabs.addTab(v, v.title)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setStyleSheet("font-family: monospace; font-size: 11px;")
        # an opened past run has no log here: say so rather than show a blank page
        self.log.setPlaceholderText("The engine's log (its stderr) of the runs launched or resumed from this "
                                    "window appears here. A run opened from disk has no log here: its events "
                                    "are in the other tabs and in RUN_DIR/events.jsonl.")
        self.tabs.addTab(self.log, "Engine log")
        self.sweep_results = SweepResultsView()
        self.tabs.addTab(self.sweep_results, self.sweep_results.title)
        self.sweep_queue.sweep_changed.connect(self.sweep_results.set_sweep)
        self.sweep_results.open_runs.connect(self.open_runs_overlaid)
        # the budget search (spfde_gui/search): a `spfde-train search` subprocess and its study
        self.search = SearchTab(self._form_config_dict, lambda: self._runs_dir().parent / "searches")
        self.tabs.addTab(self.search, self.search.title)
        self.search.use_settings.connect(self.use_search_settings)
        self.tabs.currentChanged.connect(lambda _i: self._tick(force=True))
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.header)
        rl.addWidget(self.tabs, 1)
        return right

    def _start_timers(self) -> None:
        """Redraws at a bounded rate (never once per event) and the hardware poll."""
        self._header_version = -1
        self.redraw_timer = QTimer(self)
        self.redraw_timer.setInterval(int(1000 / REDRAW_HZ))
        self.redraw_timer.timeout.connect(self._tick)
        self.redraw_timer.start()
        self.hw_timer = QTimer(self)
        self.hw_timer.setInterval(1000)
        self.hw_timer.timeout.connect(self._poll_hardware)
        self.hw_timer.start()

    # ------------------------------------------------------------------ actions
    def _build_actions(self) -> None:
        tb = QToolBar("Run")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonTextOnly)
        self.addToolBar(tb)
        mk = lambda text, slot, key=None, tip="": self._action(tb, text, slot, key, tip)
        self.act_launch = mk("Launch", self.launch, "F5", LAUNCH_TIP)
        self.act_stop = mk("Stop", self.stop, "Ctrl+.", STOP_TIP)
        self.act_ckpt = mk("Checkpoint now", self.checkpoint_now, None, CKPT_TIP)
        self.act_resume = mk("Resume", self.resume, None, RESUME_TIP)
        self.act_kill = mk("Kill", self.kill, None, KILL_TIP)
        tb.addSeparator()
        self.act_open = mk("Open run…", self._open_dialog, "Ctrl+O", "Replay a run directory")
        self.act_export = mk("Export report…", self.export_report_to, "Ctrl+E",
                             "HTML, PDF, figures (SVG, PDF, PNG), CSV and JSON report of the run in view, "
                             "into a folder you choose")
        self.act_use_cfg = QAction("Use this run's configuration", self)
        self.act_use_cfg.setToolTip("Copy the configuration of the run in view into the form")
        self.act_use_cfg.triggered.connect(self.use_run_config)
        menu = self.menuBar().addMenu("&Run")
        for a in (self.act_launch, self.act_stop, self.act_ckpt, self.act_resume, self.act_kill, None,
                  self.act_open, self.act_export, self.act_use_cfg):
            menu.addSeparator() if a is None else menu.addAction(a)
        quit_act = QAction("Quit", self)
        quit_act.setShortcut(QKeySequence.Quit)
        quit_act.triggered.connect(self.close)
        menu.addAction(quit_act)
        help_menu.install(self)

    def _action(self, tb: QToolBar, text, slot, key, tip) -> QAction:
        a = QAction(text, self)
        if key:
            a.setShortcut(QKeySequence(key))
        a.setToolTip(tip)
        a.setStatusTip(tip)
        a.triggered.connect(lambda _checked=False: slot())
        tb.addAction(a)
        return a

    def _update_actions(self, *_args) -> None:
        running = self.controller.is_running()
        valid = self.form.is_valid()
        self._update_launch(running)
        # Stop, Checkpoint and Kill act on the engine's run: off while another run is in view
        live = running and (self.model is None or self.model is self.controller.model)
        for a, tip in ((self.act_stop, STOP_TIP), (self.act_ckpt, CKPT_TIP), (self.act_kill, KILL_TIP)):
            a.setEnabled(live)
            a.setToolTip(tip if live or not running else
                         f"{tip} — the running run is not in view: open it from the Runs tab")
        m = self.model
        why = resume_blocker(m, running)
        if not why and m is not None and self.sweep_queue.holds_paused_cell(m.run_dir):
            why = "a cell of the paused sweep: ▶ Start in the Sweep tab resumes the sweep from it"
        self.act_resume.setEnabled(not why)
        self.act_resume.setToolTip(RESUME_TIP if not why else f"Cannot resume: {why}")
        self.act_resume.setStatusTip(self.act_resume.toolTip())
        self.act_export.setEnabled(m is not None and m.run_dir is not None and not self.exporter.is_busy())
        self.act_use_cfg.setEnabled(m is not None and bool(m.config))
        if valid:
            self.launch_msg.setText("")
            if self.statusBar().currentMessage() == BLOCKED_MSG:
                self.statusBar().clearMessage()   # the fields are fixed: the line is stale

    def _update_launch(self, running: bool) -> None:
        """Launch is off while a run goes or the planner refuses the configuration; the
        tooltip says why."""
        rejected = self.preview.rejection
        why = ("a run is going: stop it first" if running else
               f"the planner refuses this configuration: {rejected}" if rejected else "")
        for w in (self.act_launch, self.launch_btn):
            w.setEnabled(not why)
            w.setToolTip(LAUNCH_TIP if not why else f"Cannot launch: {why}")
            w.setStatusTip(w.toolTip())

    def _apply_fix(self, field: str, value) -> None:
        """The preview's one-click fix (the reachable freeze target; width 1 and no analyses
        for a timm model) written into the form."""
        self.form.set_field(field, value)
        self.statusBar().showMessage(f"{field} set to {hints.shown(value)}")

    # ------------------------------------------------------------------ launching
    def _runs_dir(self) -> Path:
        cfg = self.form.config()
        d = cfg.run_dir if cfg is not None else (self.form.raw_dict()[0].get("run_dir") or "runs")
        return Path(d).expanduser().resolve()

    def launch(self) -> bool:
        """Start a run with the form's configuration; False (and the fields marked) if invalid."""
        if self.controller.is_running():
            self.statusBar().showMessage("A run is already going: stop it first.")
            return False
        errors = self.form.validate()
        cfg = self.form.config()
        self.form.show_plan_errors(self.preview.rejected_fields)   # validate() redrew the fields
        if not errors and cfg is not None and self.preview.rejection:
            self.launch_msg.setText(f"Cannot launch: {self.preview.rejection}")
            self.statusBar().showMessage("Launch blocked: the planner refuses this configuration.")
            return False
        if errors or cfg is None:
            n = len(errors)
            self.launch_msg.setText(f"Cannot launch: {n} invalid field{'s' if n != 1 else ''} "
                                    f"(marked in red): " + "; ".join(f"{f}: {m}" for f, m in errors[:3]))
            self.statusBar().showMessage(BLOCKED_MSG)
            self.left.setCurrentIndex(0)
            self.form.focus_first_error()
            return False
        runs_dir = self._runs_dir()
        runs_dir.mkdir(parents=True, exist_ok=True)
        if self.runs.runs_dir.resolve() != runs_dir:
            self.runs.set_runs_dir(runs_dir)
        if self.cluster.on_slurm():       # the run goes to a node; its folder shows in Runs
            self.statusBar().showMessage(f"Submitting {cfg.name} to Slurm (run folder in {runs_dir})")
            return self.cluster.submit_run(cfg, runs_dir)
        self._log_separator(f"launch of {cfg.name}")
        self.controller.start_run(cfg, runs_dir)
        self.statusBar().showMessage(f"Launched {cfg.name} in {runs_dir}")
        return True

    def checkpoint_now(self) -> None:
        """Ask for a checkpoint and say so (the engine logs the save in the Engine log)."""
        if not self.controller.is_running():
            return
        self.controller.checkpoint()
        self.statusBar().showMessage("Checkpoint requested: the engine writes it and logs where "
                                     "(Engine log)", 8000)

    def stop(self) -> None:
        self.controller.stop()
        self.statusBar().showMessage("Stopping: the engine checkpoints and exits…")

    def resume(self) -> bool:
        m = self.model
        if self.controller.is_running() or m is None or m.run_dir is None:
            return False
        if resume_blocker(m, False):
            self.statusBar().showMessage("Cannot resume: " + resume_blocker(m, False))
            return False
        self._log_separator(f"resume of {m.run_dir.name}")
        self.controller.resume(m.run_dir, m)
        self.statusBar().showMessage(f"Resuming {m.run_dir.name}")
        return True

    def kill(self) -> bool:
        """Kill the engine after a confirmation: no checkpoint, the run reads *killed*."""
        if not self.controller.is_running():
            return False
        ok = self.kill_policy if self.kill_policy is not None else self._ask_kill()
        if not ok:
            return False
        self.controller.kill()
        self.statusBar().showMessage("Killing the engine…")
        return True

    def _ask_kill(self) -> bool:
        answer = QMessageBox.question(
            self, "Kill the engine?",
            "Kill the engine now? It gets no chance to save a checkpoint: the run can only be resumed "
            "from its last periodic checkpoint, if any.\n\nStop gracefully saves one first.",
            QMessageBox.Yes | QMessageBox.Cancel, QMessageBox.Cancel)
        return answer == QMessageBox.Yes

    def _log_separator(self, what: str) -> None:
        """The log is kept across launches and resumes: a line marks where each begins."""
        import time
        if self.log.blockCount() > 1 or self.log.toPlainText():
            self.log.appendPlainText("")
        self.log.appendPlainText(f"──────── {what} at {time.strftime('%H:%M:%S')} ────────")

    def _on_engine_started(self, model: RunModel) -> None:
        self.open_model(model)
        self._update_actions()

    def _on_run_dir_known(self, model: RunModel) -> None:
        self.runs.register_live(model)
        self._update_actions()

    def _on_engine_finished(self, model: RunModel) -> None:
        self.hardware.set_pid(None)
        self._tick(force=True)
        self.runs.rescan()
        st = model.status if model else "?"
        self.statusBar().showMessage(f"Engine exited ({st})")
        self._update_actions()

    def _on_log(self, line: str) -> None:
        self.log.appendPlainText(line)

    # ------------------------------------------------------------------ viewing
    def open_run(self, run_dir) -> RunModel:
        m = self.runs.model_for(run_dir)
        self.open_model(m)
        return m

    def open_model(self, model: RunModel) -> None:
        self.model = model
        for v in self.views:
            v.set_model(model)
        self.training.set_overlays([o for o in self.runs.compared() if o is not model])
        self._header_version = -1
        self._tick(force=True)
        self._update_actions()

    def _form_config_dict(self) -> dict | None:
        cfg = self.form.config()
        return cfg.to_dict() if cfg is not None else None

    def open_runs_overlaid(self, run_dirs: list) -> None:
        """A sweep row's runs: the first in view, the others overlaid on its accuracy plots."""
        models = [self.runs.model_for(d) for d in run_dirs]
        if not models:
            return
        self.open_model(models[0])
        self.training.set_overlays(models[1:])
        self.tabs.setCurrentWidget(self.training)

    def use_run_config(self) -> None:
        m = self.model
        if m is None or not m.config:
            return
        runs_dir = self.form.raw_dict()[0].get("run_dir")
        self.form.set_config(m.config)
        if runs_dir:
            self.form.set_field("run_dir", runs_dir)   # keep launching into this window's runs folder
        self.left.setCurrentIndex(0)
        self.statusBar().showMessage(f"Configuration of {m.name} copied into the form")

    def use_search_settings(self, cfg: dict) -> None:
        """The Search tab's "use these settings": the best trial's configuration in the form."""
        runs_dir = self.form.raw_dict()[0].get("run_dir")
        self.form.set_config(cfg)
        if runs_dir:
            self.form.set_field("run_dir", runs_dir)
        self.left.setCurrentIndex(0)
        self.statusBar().showMessage(f"The best search trial's settings ({cfg.get('name', '')}) copied into the form")

    def _on_compare(self, models: list) -> None:
        self.training.set_overlays([m for m in models if m is not self.model])
        if self.model is None and models:
            self.open_model(models[0])

    def _open_dialog(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Open run directory", str(self.runs.runs_dir))
        if not d:
            return
        if not is_run_dir(d):
            QMessageBox.warning(self, "Open run", f"{d} holds no events.jsonl or config.yaml: not a run directory.")
            return
        self.open_run(d)

    def export_report_to(self) -> Path | None:
        """Export report…: ask for the folder (the run's report/ folder proposed), then write."""
        m = self.model
        if m is None or m.run_dir is None:
            return None
        chosen = QFileDialog.getExistingDirectory(self, "Write the report into", str(Path(m.run_dir) / "report")
                                                  if (Path(m.run_dir) / "report").is_dir() else str(m.run_dir))
        if not chosen:
            return None
        return self.export_report(chosen)

    def export_report(self, out_dir: str | Path | None = None) -> Path | None:
        """Write the report of the run in view: the figures here (pyqtgraph needs the GUI
        thread, about a second), the files by a background task (the window stays live)."""
        m = self.model
        if m is None or m.run_dir is None or self.exporter.is_busy():
            return None
        out = Path(out_dir) if out_dir else Path(m.run_dir) / "report"
        self.statusBar().showMessage(f"Drawing the report figures of {m.name}…")
        QApplication.setOverrideCursor(Qt.WaitCursor)
        QApplication.processEvents()
        try:
            model, chosen, out = report.prepare(m.run_dir, out, None, m)
            figures = report.render_figures(model, chosen)
        except Exception as exc:
            QApplication.restoreOverrideCursor()
            QMessageBox.warning(self, "Export report", f"Could not write the report: {type(exc).__name__}: {exc}")
            return None
        QApplication.restoreOverrideCursor()
        self._export_out = out
        self.exporter.start(report.write_report, model, out, chosen, figures)
        self._update_actions()
        return out

    def _on_export_progress(self, fraction: float, status: str) -> None:
        self.statusBar().showMessage(f"Writing the report: {status} ({100 * fraction:.0f}%)")

    def _on_exported(self, written) -> None:
        names = ", ".join(Path(p).name for p in (written or {}).values()) if isinstance(written, dict) else ""
        self.statusBar().showMessage(f"Report written to {self._export_out}" + (f" ({names})" if names else ""))
        self._update_actions()
        html_file = written.get("html") if isinstance(written, dict) else None
        if html_file:
            self._offer_open(Path(html_file))

    def _offer_open(self, html_file: Path) -> None:
        """A non-blocking note with *Open report* (the desktop's browser) and *Open folder*."""
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices
        box = QMessageBox(QMessageBox.Information, "Report written", f"The report is in {html_file.parent}",
                          QMessageBox.Close, self)
        open_btn = box.addButton("Open report", QMessageBox.AcceptRole)
        folder_btn = box.addButton("Open folder", QMessageBox.ActionRole)
        open_btn.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(html_file))))
        folder_btn.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(html_file.parent))))
        box.setModal(False)
        self._report_box = box
        box.show()

    def _on_export_failed(self, exc) -> None:
        self.statusBar().showMessage("Report export failed")
        self._update_actions()
        QMessageBox.warning(self, "Export report", f"Could not write the report: {type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ timers
    def _tick(self, force: bool = False) -> None:
        """Bounded-rate redraw: the header and the visible view, only if their model changed."""
        m = self.model
        if m is not None and (force or m.version != self._header_version):
            self._header_version = m.version
            tail = list(self.controller.stderr_tail) if m is self.controller.model else None
            self.header.show_model(m, tail)
            self._update_actions()
        elif m is None and force:
            self.header.show_model(None)
        v = self.tabs.currentWidget()
        if v in self.views:
            v.refresh(force=force)

    def redraw_all(self) -> None:
        """Every view now (benchmarks, screenshots, report previews)."""
        for v in self.views:
            v.refresh(force=True)

    def _poll_hardware(self) -> None:
        m = self.model
        if m is not None and m is not self.controller.model and m.status == "running" and m.run_dir is not None:
            # a run another process drives (e.g. the CLI): tail its events.jsonl
            m.poll_file()
            self.runs.judge_liveness(m)
        running = self.controller.is_running()
        self.hardware.set_pid(self.controller.pid() if running else None)
        if self.tabs.currentWidget() is self.hardware or running:
            s = self.hardware.poll()
            proc = (s or {}).get("proc") if running else None
            self.preview.set_process_memory(proc["rss"] if proc else None, running)
        else:
            self.preview.set_process_memory(None, False)
        going = m if m is not None and m.status == "running" else None
        est = finish_estimate(going) if going is not None else None
        self.preview.set_run_clock(clock_text(est) if est else ("measuring its pace…" if going is not None else ""),
                                   f"{going.name}: the plan's executed FLOPs still to go at the "
                                   f"{est['flops_per_s']:.3g} FLOPs/s this session has trained at"
                                   if est and going is not None else "")

    def _schedule_preview(self) -> None:
        cfg = self.form.config()
        if cfg is None:
            self.preview.schedule(None, self.form.errors(), self.form.suggestions())
        else:
            self.preview.schedule(cfg)

    # ------------------------------------------------------------------ closing
    def closeEvent(self, ev) -> None:
        if self.controller.is_running():
            choice = self.close_policy or self._ask_close()
            if choice == "cancel":
                ev.ignore()
                return
            self.statusBar().showMessage("Stopping the engine before closing…")
            self.controller.shutdown(graceful=(choice == "stop"))
        self.redraw_timer.stop()
        self.hw_timer.stop()
        self.hardware.monitor.close()
        # background tasks: cancelled and joined (a report being written is finished first)
        self.exporter.wait(30.0)
        self.exporter.shutdown()
        self.preview.shutdown()
        self.form.shutdown()
        self.sieve.shutdown()
        self.runs.shutdown()
        self.search.shutdown()          # a running search stops with a checkpoint; Start continues it
        self.cluster.shutdown()
        ev.accept()

    def _ask_close(self) -> str:
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Question)
        box.setWindowTitle("A run is still going")
        box.setText("The engine is still training. What should happen to the run?")
        box.setInformativeText("Stop gracefully saves a checkpoint you can resume; Kill ends it at once.")
        stop = box.addButton("Stop gracefully", QMessageBox.AcceptRole)
        kill = box.addButton("Kill", QMessageBox.DestructiveRole)
        box.addButton(QMessageBox.Cancel)
        box.setDefaultButton(stop)
        box.exec()
        clicked = box.clickedButton()
        return "stop" if clicked is stop else "kill" if clicked is kill else "cancel"
