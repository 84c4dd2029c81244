"""The cost panel's "Measure this machine's speed" button: ``spfde-train plan --calibrate``
on the form's configuration in an engine subprocess (the studio never imports torch). The
engine records the rate in the throughput cache (engine.cost.wall_time), and the panel's
next projection reads it: the wall time goes from "unknown" to an estimate."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

from engine import config as cfgmod

ROOT = Path(__file__).resolve().parent.parent.parent      # this checkout's engine first


class SpeedCalibration(QObject):
    finished = Signal(bool, str)      # (exited cleanly, the engine's last log lines)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.proc: QProcess | None = None
        self._dir: tempfile.TemporaryDirectory | None = None
        self._log = ""

    def running(self) -> bool:
        return self.proc is not None and self.proc.state() != QProcess.NotRunning

    def start(self, cfg: cfgmod.RunConfig) -> bool:
        """Calibrate ``cfg`` (False when one is already running)."""
        if self.running():
            return False
        self._dir = tempfile.TemporaryDirectory(prefix="spfde-calibrate-")
        path = Path(self._dir.name) / "config.yaml"
        cfgmod.save(cfg, path)
        self._log = ""
        self.proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONPATH", os.pathsep.join(p for p in (str(ROOT), env.value("PYTHONPATH")) if p))
        self.proc.setProcessEnvironment(env)
        self.proc.setProcessChannelMode(QProcess.MergedChannels)
        self.proc.readyReadStandardOutput.connect(self._read)
        self.proc.finished.connect(self._done)
        self.proc.errorOccurred.connect(self._failed_to_start)
        self.proc.start(sys.executable, ["-m", "engine", "plan", "--config", str(path), "--calibrate"])
        return True

    def _read(self) -> None:
        if self.proc is not None:
            self._log = (self._log + bytes(self.proc.readAllStandardOutput().data()).decode("utf-8", "replace"))[-4000:]

    def _done(self, code: int, _status) -> None:
        self._read()
        self._finish(code == 0)

    def _failed_to_start(self, err) -> None:
        if err == QProcess.FailedToStart:
            self._log += f"\ncould not start {sys.executable}"
            self._finish(False)

    def _finish(self, ok: bool) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
        self.finished.emit(ok, what_it_said(self._log))

    def kill(self) -> None:
        if self.running() and self.proc is not None:
            self.proc.kill()
            self.proc.waitForFinished(3000)


def what_it_said(log: str) -> str:
    """The lines worth showing of the engine's output: its warnings and errors (a failed
    calibration says why there), else its last lines."""
    lines = log.strip().splitlines()
    flagged = [ln for ln in lines if any(w in ln for w in ("WARNING", "ERROR", "Error", "failed"))]
    return "\n".join((flagged or lines)[-6:])
