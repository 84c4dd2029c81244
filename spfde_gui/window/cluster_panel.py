"""The Cluster tab: where runs go ("Run on: this machine | Slurm"), the Slurm fields, and the
queue of this project's jobs from ``squeue`` (state, node, elapsed, reason while pending)
with cancel and resubmit. Submitting runs the CLI (``spfde-train run|sweep --executor
slurm``) off the GUI thread, so the studio and the terminal submit the same jobs; a run on
a node writes its usual run folder, which the Runs tab lists and watches live as any run
another process drives. No ``sbatch`` on PATH is a normal state with its message."""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine import config as config_mod
from spfde_gui.model import slurm_queue
from spfde_gui.system.tasks import TaskRunner

RUN_ON = ("this machine", "Slurm")
QUEUE_COLUMNS = ("job id", "name", "state", "node", "elapsed", "reason")
REFRESH_MS = 3000


class ClusterPanel(QWidget):
    submitted = Signal(str)          # what the submission said (the run folder, the job ids)

    def __init__(self, sweep_dir: Callable[[], Path | None] | None = None,
                 run_dir: Callable[[], Path | None] | None = None, parent=None):
        super().__init__(parent)
        self.sweep_dir = sweep_dir or (lambda: None)
        self.run_dir = run_dir or (lambda: None)        # the run in focus (Resubmit run)
        self.missing = slurm_queue.not_found()
        self.rows: list[slurm_queue.JobRow] = []
        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("Run on:"))
        self.run_on = QComboBox()
        self.run_on.setObjectName("run-on")
        self.run_on.addItems(RUN_ON)
        top.addWidget(self.run_on, 1)
        lay.addLayout(top)
        self.status = QLabel()
        self.status.setObjectName("slurm-status")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        form = QFormLayout()
        opts = slurm_queue.default_options()
        self.fields: dict[str, QLineEdit] = {}
        for name in slurm_queue.FORM_FIELDS:
            e = QLineEdit(str(getattr(opts, name)) if getattr(opts, name) not in ("", 0) else "")
            e.setPlaceholderText("cluster default" if name != "time" else "1:00:00")
            e.setObjectName(f"slurm-{name}")
            self.fields[name] = e
            form.addRow(name, e)
        lay.addLayout(form)
        buttons = QHBoxLayout()
        self.submit_sweep_btn = QPushButton("Submit the Sweep tab's sweep")
        self.submit_sweep_btn.clicked.connect(lambda: self.submit_sweep())
        self.resubmit_run_btn = QPushButton("Resubmit the open run")
        self.resubmit_run_btn.setToolTip("A new job that resumes the run in focus from its checkpoint")
        self.resubmit_run_btn.clicked.connect(lambda: self.resubmit_run())
        self.refresh_btn = QPushButton("Refresh")
        self.refresh_btn.clicked.connect(self.refresh)
        self.cancel_btn = QPushButton("Cancel selected")
        self.cancel_btn.clicked.connect(self.cancel_selected)
        for b in (self.submit_sweep_btn, self.resubmit_run_btn, self.refresh_btn, self.cancel_btn):
            buttons.addWidget(b)
        lay.addLayout(buttons)
        self.table = QTableWidget(0, len(QUEUE_COLUMNS))
        self.table.setObjectName("slurm-queue")
        self.table.setHorizontalHeaderLabels(QUEUE_COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        lay.addWidget(self.table, 1)
        self.message = QLabel()
        self.message.setObjectName("slurm-message")
        self.message.setWordWrap(True)
        lay.addWidget(self.message)
        self.tasks = TaskRunner(self, name="slurm", max_threads=2)
        self.tasks.done.connect(self._on_done)
        self.tasks.failed.connect(lambda exc: self._say(f"{type(exc).__name__}: {exc}"))
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self._auto_refresh)
        self.run_on.currentIndexChanged.connect(self._update)
        self._update()
        if not self.missing:
            self.timer.start()

    # ---------------------------------------------------------------- state
    def on_slurm(self) -> bool:
        return self.run_on.currentText() == "Slurm" and not self.missing

    def values(self) -> dict:
        return {k: e.text().strip() for k, e in self.fields.items()}

    def _update(self) -> None:
        if self.missing:
            self.status.setText(self.missing)
            self.run_on.setCurrentIndex(0)
        elif self.on_slurm():
            self.status.setText("Launch (Configure tab) and the Sweep tab's Start submit to Slurm; "
                                "the run folders appear in the Runs tab and update live.")
        else:
            self.status.setText("Runs start on this machine.")
        off = bool(self.missing)
        self.run_on.setEnabled(not off)
        for w in (*self.fields.values(), self.submit_sweep_btn, self.resubmit_run_btn, self.refresh_btn,
                  self.cancel_btn):
            w.setEnabled(not off)

    def _say(self, text: str) -> None:
        self.message.setText(text)

    # ---------------------------------------------------------------- the queue
    def _auto_refresh(self) -> None:
        if self.isVisible() and not self.tasks.is_busy():
            self.refresh()

    def refresh(self) -> None:
        if self.missing:
            return
        self.tasks.start(lambda state: ("queue", slurm_queue.queue_rows(state.check)), supersede=False)

    def show_rows(self, rows: list[slurm_queue.JobRow]) -> None:
        self.rows = rows
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, value in enumerate((row.job_id, row.name, row.state, row.node, row.elapsed, row.reason)):
                self.table.setItem(r, c, QTableWidgetItem(value))

    def selected_jobs(self) -> list[str]:
        picked = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.rows[r].job_id for r in picked if r < len(self.rows)]

    def cancel_selected(self) -> None:
        ids = self.selected_jobs()
        if not ids:
            self._say("Select the jobs to cancel in the queue.")
            return
        self.tasks.start(lambda state: ("cancel", slurm_queue.cancel(ids), ids), supersede=False)

    # ---------------------------------------------------------------- submitting
    def submit_run(self, cfg, runs_dir: Path) -> bool:
        """Submit the form's run (Launch with "Run on: Slurm")."""
        if self.missing:
            self._say(self.missing)
            return False
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="spfde-slurm-", delete=False) as f:
            path = Path(f.name)
        config_mod.save(cfg, path)
        argv = slurm_queue.submit_run_argv(path, runs_dir, self.values())
        self._say(f"Submitting {cfg.name} to Slurm…")
        self.tasks.start(lambda state: ("submit", *slurm_queue.run_command(argv), path), supersede=False)
        return True

    def submit_sweep(self, sweep_dir: Path | None = None) -> bool:
        """Submit a sweep folder (the Sweep tab's, made when needed) as one job array; run
        again on the same folder it resubmits what is left (finished cells skipped)."""
        if self.missing:
            self._say(self.missing)
            return False
        d = sweep_dir or self.sweep_dir()
        if d is None:
            self._say("Plan a sweep in the Sweep tab first.")
            return False
        argv = slurm_queue.submit_sweep_argv(Path(d), self.values())
        self._say(f"Submitting the sweep {Path(d).name} to Slurm…")
        self.tasks.start(lambda state: ("submit", *slurm_queue.run_command(argv), None), supersede=False)
        return True

    def resubmit_run(self, run_dir: Path | None = None) -> bool:
        """A new job for a stopped or cancelled run folder (the run in focus by default)."""
        if self.missing:
            self._say(self.missing)
            return False
        d = run_dir or self.run_dir()
        if d is None:
            self._say("Open a run first (Runs tab): Resubmit resumes it on Slurm.")
            return False
        argv = slurm_queue.resubmit_run_argv(Path(d), self.values())
        self._say(f"Resubmitting {Path(d).name} to Slurm…")
        self.tasks.start(lambda state: ("submit", *slurm_queue.run_command(argv), None), supersede=False)
        return True

    def _on_done(self, result) -> None:
        kind = result[0]
        if kind == "queue":
            self.show_rows(result[1])
        elif kind == "cancel":
            rc, said = result[1]
            self._say(f"Cancelled {', '.join(result[2])} (each checkpoints first)." if rc == 0 else
                      f"scancel failed: {said}")
            self.refresh()
        elif kind == "submit":
            rc, said, tmp = result[1], result[2], result[3]
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            self._say(said if rc == 0 else f"Not submitted: {said}")
            if rc == 0:
                self.submitted.emit(said)
            self.refresh()

    def shutdown(self) -> None:
        self.timer.stop()
        if not self.tasks.shutdown():
            # the queue's squeue was killed: what is left is a submission or a cancel, which
            # must not be cut off halfway (a job submitted but never reported); it ends
            # within its own time limit, and a worker thread still running when Qt destroys
            # it would abort the studio
            self.tasks.wait(slurm_queue.SUBMIT_TIMEOUT_S + 10)
