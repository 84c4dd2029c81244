"""The engine in a subprocess (QProcess): launch, stream events in, send commands, stop.

``python -u -m engine ...``: stdout carries JSON Lines events only (read with a canReadLine
loop, fed to a RunModel), stderr carries logs (kept apart, last lines remembered so a crash
can be shown with its traceback). Stop escalates: stop command, wait, terminate, wait, kill.
The engine runs with ``--stop-on-eof``: if the studio dies (segfault, SIGKILL), the OS closes
the stdin pipe and the engine stops with a checkpoint instead of training on as an orphan.
"""
from __future__ import annotations

import json
import os
import sys
import sysconfig
import tempfile
from collections import deque
from pathlib import Path

from PySide6.QtCore import QEventLoop, QObject, QProcess, QProcessEnvironment, QTimer, Signal

import engine
from engine import config as cfgmod
from engine.run.events import parse_line
from engine.run.folder import safe_name
from spfde_gui.model.run_model import RunModel

# The folder holding the engine package this studio imported: site-packages for an
# install (already on the child's path), the checkout when run from a source tree.
ENGINE_HOME = Path(engine.__file__).resolve().parent.parent
STDERR_LINES = 400
EXIT_CONFIG = 2   # engine.cli.EXIT_CONFIG: the configuration was refused, nothing trained


def config_message(stderr_tail: str) -> str:
    """The engine's configuration error (``invalid configuration ...`` and its field lines,
    with the ``hint:`` line) out of its stderr tail; "" when there is none."""
    lines = stderr_tail.splitlines()
    start = next((i for i in range(len(lines) - 1, -1, -1) if lines[i].startswith("invalid configuration")), None)
    if start is None:
        return ""
    return "\n".join(x.rstrip() for x in lines[start:] if x.strip())
STOP_ON_EOF = "--stop-on-eof"   # engine flag: EOF on stdin (our death) is a graceful stop
# What a starting engine is doing, read from its log lines (first match wins, in order).
START_PHASES = (("run directory", "loading the data"),
                ("data:", "building the model and planning the run"),
                ("resuming at", "resuming from the checkpoint"))


class EngineController(QObject):
    """One engine process at a time, and the RunModel it feeds."""

    started = Signal(object)          # RunModel of the new run
    run_dir_known = Signal(object)    # RunModel, once run_started named its directory
    log_line = Signal(str)
    state_changed = Signal(str)       # idle | starting | running | stopping
    finished = Signal(object)         # RunModel, after the process has exited and been drained

    def __init__(self, parent=None, stop_timeout_ms: int = 60_000, term_timeout_ms: int = 10_000):
        super().__init__(parent)
        self.stop_timeout_ms = stop_timeout_ms
        self.term_timeout_ms = term_timeout_ms
        self.model: RunModel | None = None
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_LINES)
        self.exit_code: int | None = None
        self.exit_status: str | None = None   # normal | crashed (signal) | failed-to-start
        self.stop_requested = False
        self.kill_requested = False
        self._state = "idle"
        self._proc: QProcess | None = None
        self._tmp_config: str | None = None
        self._err_buf = b""
        self._escalate = QTimer(self)
        self._escalate.setSingleShot(True)
        self._escalate.timeout.connect(self._on_escalate)
        self._stage = 0
        # the program and leading arguments of the engine (tests put a scripted stand-in here)
        self.engine_command = [sys.executable, "-u", "-m", "engine"]

    # ---------------------------------------------------------------- state
    @property
    def state(self) -> str:
        return self._state

    def _set_state(self, s: str) -> None:
        if s != self._state:
            self._state = s
            self.state_changed.emit(s)

    def is_running(self) -> bool:
        """From launch to exit, starting included: Stop and Kill work from the first moment."""
        return self._proc is not None

    def pid(self) -> int | None:
        if self._proc is None:
            return None
        pid = int(self._proc.processId())
        return pid or None

    # ---------------------------------------------------------------- launching
    def start_run(self, cfg: cfgmod.RunConfig, runs_dir: str | os.PathLike | None = None) -> RunModel:
        """Launch a new run of ``cfg`` (its runs folder replaced by ``runs_dir`` if given)."""
        # the engine inherits our working directory; a relative runs folder is made absolute
        cfg = cfg.replace(run_dir=str(Path(runs_dir if runs_dir is not None else cfg.run_dir).resolve()))
        fd, path = tempfile.mkstemp(prefix=f"spfde-{safe_name(cfg.name)}-", suffix=".yaml")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(cfgmod.to_yaml(cfg))
        self._tmp_config = path
        model = RunModel()
        model.config = cfg.to_dict()     # name and epochs known before the engine speaks
        model.begin_session(resume=False)
        return self._launch(["run", "--config", path, STOP_ON_EOF], model)

    def resume(self, run_dir: str | os.PathLike, model: RunModel | None = None) -> RunModel:
        """Resume a stopped or crashed run from its last checkpoint; the events keep
        flowing into ``model`` (the run's replayed model) when given."""
        run_dir = Path(run_dir)
        if model is None:
            model = RunModel.load(run_dir)
        model.run_dir = run_dir
        model.begin_session(resume=True)
        return self._launch(["resume", str(run_dir), STOP_ON_EOF], model)

    def _launch(self, args: list[str], model: RunModel) -> RunModel:
        if self.is_running():
            raise RuntimeError("an engine process is already running; stop it first")
        self.model = model
        model.set_process_state(True)
        self.stderr_tail.clear()
        self._err_buf = b""
        self.exit_code = self.exit_status = None
        self.stop_requested = False
        self.kill_requested = False
        self._stage = 0
        proc = QProcess(self)
        proc.setProcessChannelMode(QProcess.SeparateChannels)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        # `python -m engine` must find the same engine from any working directory; CPU
        # threads and OpenMP's wait policy are set by the engine itself before torch loads.
        if str(ENGINE_HOME) not in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}:
            env.insert("PYTHONPATH", os.pathsep.join(p for p in (str(ENGINE_HOME), env.value("PYTHONPATH")) if p))
        proc.setProcessEnvironment(env)
        proc.readyReadStandardOutput.connect(self._read_stdout)
        proc.readyReadStandardError.connect(self._read_stderr)
        proc.errorOccurred.connect(self._on_error)
        proc.finished.connect(self._on_finished)
        self._proc = proc
        self._set_state("starting")
        self.started.emit(model)
        proc.start(self.engine_command[0], [*self.engine_command[1:], *args])
        return model

    # ---------------------------------------------------------------- commands
    def send(self, cmd: str) -> bool:
        if not self.is_running():
            return False
        self._proc.write((json.dumps({"cmd": cmd}) + "\n").encode())
        return True

    def checkpoint(self) -> bool:
        return self.send("checkpoint")

    def stop(self) -> None:
        """Graceful stop: the stop command, then terminate after stop_timeout_ms, then kill."""
        if not self.is_running():
            return
        self.stop_requested = True
        self._set_state("stopping")
        self._stage = 1
        self.send("stop")
        self._escalate.start(self.stop_timeout_ms)

    def kill(self) -> None:
        """Kill at once (the window asks first); the run then reads *killed*, not crashed."""
        if self.is_running():
            self.stop_requested = True
            self.kill_requested = True
            self._proc.kill()

    def _on_escalate(self) -> None:
        if not self.is_running():
            return
        if self._stage == 1:
            self._stage = 2
            self._append_log("[studio] engine did not stop in time: terminating")
            self._proc.terminate()
            self._escalate.start(self.term_timeout_ms)
        else:
            self._append_log("[studio] engine did not terminate: killing")
            self._proc.kill()

    def wait_finished(self, timeout_ms: int) -> bool:
        """Spin the event loop until the process has exited (or the timeout)."""
        if not self.is_running():
            return True
        loop = QEventLoop()
        self.finished.connect(loop.quit)
        QTimer.singleShot(timeout_ms, loop.quit)
        loop.exec()
        self.finished.disconnect(loop.quit)
        return not self.is_running()

    def shutdown(self, graceful: bool = True) -> None:
        """Used when the window closes: never leave an orphan engine."""
        if not self.is_running():
            return
        if graceful:
            self.stop()
            if self.wait_finished(self.stop_timeout_ms + self.term_timeout_ms + 2000):
                return
        self.kill()
        self.wait_finished(5000)

    # ---------------------------------------------------------------- streams
    def _read_stdout(self) -> None:
        proc = self._proc
        if proc is None:
            return
        evs = []
        while proc.canReadLine():
            raw = bytes(proc.readLine())
            ev = parse_line(raw)
            if ev is not None:
                evs.append(ev)
            elif raw.strip():  # something other than an event on stdout: show it as a log
                self._append_log("[stdout] " + raw.decode("utf-8", "replace").rstrip())
        self._ingest(evs)

    def _ingest(self, evs: list[dict]) -> None:
        if not evs or self.model is None:
            return
        had_dir = self.model.run_dir is not None
        self.model.ingest_many(evs)
        for ev in evs:
            if ev.get("event") == "error" and ev.get("fatal") is False:
                self._append_log(f"[engine warning] {ev.get('message', '')}")
        if self._state == "starting":
            self._set_state("stopping" if self.stop_requested else "running")
        if not had_dir or any(e.get("event") == "run_started" for e in evs):
            for ev in evs:
                if ev.get("event") == "run_started" and ev.get("run_dir"):
                    self.model.run_dir = Path(ev["run_dir"])
                    self.run_dir_known.emit(self.model)

    def _read_stderr(self) -> None:
        if self._proc is None:
            return
        data = self._err_buf + bytes(self._proc.readAllStandardError())
        *lines, self._err_buf = data.split(b"\n")
        for raw in lines:
            self._append_log(raw.decode("utf-8", "replace").rstrip())

    def _append_log(self, line: str) -> None:
        self.stderr_tail.append(line)
        m = self.model
        if m is not None and m.starting:
            for needle, phase in START_PHASES:
                if needle in line:
                    m.start_phase = phase
                    m.version += 1
                    break
        self.log_line.emit(line)

    def _on_error(self, err) -> None:
        if err == QProcess.FailedToStart:
            self.exit_status = "failed-to-start"
            msg = f"could not start the engine ({sys.executable} -m engine): {self._proc.errorString()}"
            self._append_log("[studio] " + msg)
            if self.model is not None:
                self.model.ingest({"event": "error", "message": msg, "traceback": ""})
            self._finish()

    def _on_finished(self, code: int, status) -> None:
        self._escalate.stop()
        proc = self._proc
        if proc is not None:
            # drain: the last events and log lines can arrive with the exit
            self._read_stdout()
            rest = bytes(proc.readAllStandardOutput())
            if rest.strip():
                ev = parse_line(rest)
                self._ingest([ev] if ev else [])
            self._read_stderr()
            if self._err_buf:
                self._append_log(self._err_buf.decode("utf-8", "replace").rstrip())
                self._err_buf = b""
        self.exit_code = int(code)
        self.exit_status = "crashed" if status == QProcess.CrashExit else "normal"
        m = self.model
        if m is not None and m.finished is None and m.error is None:
            # no run_finished: a crash, a kill, or an engine that died before speaking
            how = "was killed" if status == QProcess.CrashExit else f"exited with code {code}"
            if self.kill_requested:
                how = "was killed on request"
            tail = "\n".join(list(self.stderr_tail)[-40:])
            if code == EXIT_CONFIG and status != QProcess.CrashExit and not self.kill_requested:
                # exit 2: the engine refused the configuration before training (an
                # unreachable target, a missing dataset): *refused*, with its message
                m.ingest({"event": "error", "message": config_message(tail) or f"engine {how}",
                          "traceback": tail, "source": "studio", "refused": True})
            else:
                m.ingest({"event": "error", "message": f"engine {how} without finishing the run",
                          "traceback": tail, "source": "studio"})
            if self.kill_requested:
                m.mark_killed()
        self._finish()

    def _finish(self) -> None:
        if self.model is not None:
            self.model.set_process_state(False)
        if self._tmp_config:
            try:
                os.unlink(self._tmp_config)
            except OSError:
                pass
            self._tmp_config = None
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.deleteLater()
        self._set_state("idle")
        self.finished.emit(self.model)
