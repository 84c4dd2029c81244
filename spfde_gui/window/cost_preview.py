"""Live cost preview beside the form: engine.cost.projection.project (pure Python, in process) run off
the GUI thread, debounced, showing projected FLOPs by source against dense, memory and the
freeze start epoch, or why the configuration cannot be projected."""
from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QGridLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from engine import config as cfgmod
from engine.config import hints, model_spec
from engine.cost import measured, wall_time
from engine.cost import projection as plan
from engine.data.checks import CIFAR_FILES, check_dataset
from engine.data.sizes import dataset_sizes
from spfde_gui.system import model_tables
from spfde_gui.system.tasks import TaskCancelled, TaskRunner
from spfde_gui.window.speed_calibration import SpeedCalibration

DEBOUNCE_MS = 250
# Re-exported for the views that import them from here; defined in palette and fmt.
from spfde_gui.fmt import fmt_bytes, fmt_flops, shown_epoch  # noqa: E402,F401
from spfde_gui.palette import SOURCE_COLORS, SOURCE_LABELS  # noqa: E402,F401

MEMORY_TIP = ("The model's training memory in the paper's accounting (cost model): weights, "
              "gradients, optimizer state and one batch of activations at 32-bit, sparse layers "
              "stored compressed. Not the process's memory (see 'Engine process now').")


class StackedBar(QWidget):
    """One horizontal bar = the dense equivalent, split into spent and saved by source."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.parts: list[tuple[str, float]] = []
        self.setMinimumHeight(26)

    def set_parts(self, parts: list[tuple[str, float]]) -> None:
        self.parts = parts
        self.update()

    def paintEvent(self, _ev) -> None:
        p = QPainter(self)
        r = self.rect().adjusted(1, 3, -1, -3)
        p.fillRect(r, QColor("#eeeeee"))
        total = sum(max(v, 0.0) for _, v in self.parts)
        if total > 0:
            x = float(r.left())
            for key, v in self.parts:
                w = r.width() * max(v, 0.0) / total
                p.fillRect(QRectF(x, r.top(), w, r.height()), QColor(SOURCE_COLORS.get(key, "#999")))
                x += w
        p.setPen(QColor("#888888"))
        p.drawRect(r)
        p.end()


def per_gpu(cfg: cfgmod.RunConfig, project) -> dict | None:
    """Batch and projected peak memory of each process when the run is distributed (the
    configured batch is the global one, split evenly); None for one process."""
    world = cfgmod.world_size(cfg)
    if world <= 1:
        return None
    per = max(1, cfg.batch_size // world)
    one = cfg.replace(**{"batch_size": per, "distributed.nproc_per_node": 1, "distributed.nnodes": 1,
                         "distributed.gpus": None})
    return {"processes": world, "batch_size": per, "peak_bytes": project(one)["memory"]["peak_bytes"]}


def needs_measuring(cfg: cfgmod.RunConfig) -> bool:
    """A timm:, py: or wrn28 model whose cost table this studio has not measured yet."""
    if not model_spec.is_measured(cfg.model.name):
        return False
    try:
        sizes = dataset_sizes(cfg)
    except cfgmod.ConfigError:
        return False                   # the projection reports it
    return not measured.known(cfg.model, sizes["num_classes"], sizes["image_size"])


def _measure(state, cfg: cfgmod.RunConfig, trusted: frozenset) -> tuple[dict, str] | None:
    """Measure the model in a subprocess and register its table; a refusal (a factory not
    confirmed, a model the engine cannot build) as the task's outcome, else None."""
    spec = model_spec.parse(cfg.model.name)
    if spec.kind == "py" and spec.name not in trusted:
        # a shared config must not run code by being opened: the user imports it, explicitly
        return ({"confirm": spec.name, "errors": [("model.name", "not measured yet")]},
                f"model.name: {cfg.model.name} is code of your own: its blocks and FLOPs are measured by "
                f"importing {spec.name} in a separate engine process, only when you click 'Import and measure'")
    try:
        table = model_tables.measure(cfg, state.check)     # a newer form or a closing window kills it
    except model_tables.MeasureError as exc:
        return {"errors": [("model.name", str(exc))]}, f"model.name: {exc}"
    sizes = dataset_sizes(cfg)
    measured.register(cfg.model, sizes["num_classes"], sizes["image_size"], table)
    return None


def _project(state, cfg: cfgmod.RunConfig, trusted: frozenset = frozenset()):
    """The task: (projection, "") or ({}, why it cannot be projected)."""
    try:
        if cfg.data.name in CIFAR_FILES:
            check_dataset(cfg)    # a missing CIFAR folder is flagged at data.root before launch
        if needs_measuring(cfg):
            refused = _measure(state, cfg, trusted)
            if refused is not None:
                return refused
        res = plan.project(cfg)
        res["per_gpu"] = per_gpu(cfg, plan.project)
        res["wall_time"] = wall_time.estimate(cfg, res)     # from this machine's measured speed
        return res, ""
    except cfgmod.ConfigError as exc:
        # the suggestions (e.g. the reachable freeze.target) travel with the error: the
        # preview offers them as a one-click fix
        return ({"suggestions": dict(exc.suggestions), "errors": list(exc.errors)},
                "; ".join(f"{f}: {m}" for f, m in exc.errors))
    except TaskCancelled:
        raise
    except Exception as exc:  # the planner is another team's code: show, do not crash
        return {}, f"{type(exc).__name__}: {exc}"


class CostPreview(QWidget):
    updated = Signal(object)   # the projection dict, or None on error
    fix_requested = Signal(str, object)   # (field, value): the user took the suggested fix

    def __init__(self, parent=None):
        super().__init__(parent)
        self._pending: cfgmod.RunConfig | None = None
        self.result: dict | None = None
        self.error: str | None = None
        # why the planner refuses the form's configuration (an unreachable freeze target...),
        # None when it accepts it or the form itself is invalid: Launch is disabled on it
        self.rejection: str | None = None
        self.suggestions: dict[str, object] = {}
        self.rejected_fields: list[tuple[str, str]] = []   # (field, message): shown at the fields
        # A newer configuration cancels the projection under way (interrupted where it is)
        # and starts at once: a stale projection never holds the window or a newer one.
        self.tasks = TaskRunner(self, "preview", interrupt=True)
        self.tasks.done.connect(self._on_done)
        self.tasks.failed.connect(lambda exc: self._show_error(f"{type(exc).__name__}: {exc}", rejected=True))
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._run)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        title = QLabel("<b>Projected cost</b>")
        lay.addWidget(title)
        self.bar = StackedBar()
        lay.addWidget(self.bar)
        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        self.values: dict[str, QLabel] = {}
        self.row_labels: dict[str, QLabel] = {}
        rows = [("spent", "Training FLOPs"), ("dense", "Dense equivalent"), ("sparsity", SOURCE_LABELS["sparsity"]),
                ("freeze", SOURCE_LABELS["freeze"]), ("sieve", SOURCE_LABELS["sieve"]),
                ("peak", "Model training memory, peak"), ("average", "Model training memory, average"),
                ("process", "Engine process now"), ("freeze_start", "Freeze starts at epoch"),
                ("per_gpu", "Per GPU (process)"), ("wall", "Wall time (estimate)"), ("clock", "The run going")]
        tips = {"peak": MEMORY_TIP, "average": MEMORY_TIP,
                "process": "Resident memory of the running engine process (Python, PyTorch, data "
                           "loaders, caches): what the Hardware tab shows. Larger than the model's "
                           "training memory, which counts only what the paper's cost model counts."}
        for i, (key, text) in enumerate(rows):
            sw = QLabel()
            if key in SOURCE_COLORS:
                sw.setFixedSize(10, 10)
                sw.setStyleSheet(f"background: {SOURCE_COLORS[key]};")
            grid.addWidget(sw, i, 0)
            lab = QLabel(text)
            lab.setToolTip(tips.get(key, ""))
            grid.addWidget(lab, i, 1)
            self.row_labels[key] = lab
            v = QLabel("–")
            v.setToolTip(tips.get(key, ""))
            v.setObjectName("preview:" + key)
            v.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
            v.setTextInteractionFlags(Qt.TextSelectableByMouse)
            grid.addWidget(v, i, 2)
            self.values[key] = v
        self.values["process"].setText("no run yet")
        lay.addLayout(grid)
        self.message = QLabel()
        self.message.setObjectName("preview:message")
        self.message.setWordWrap(True)
        # room for three lines of errors, so a message never squeezes the rows above it
        self.message.setMinimumHeight(3 * self.message.fontMetrics().lineSpacing() + 4)
        self.message.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        lay.addWidget(self.message)
        # the planner's suggested fix, one click away ("Use freeze target 13.6%")
        self.fix_btn = QPushButton()
        self.fix_btn.setObjectName("preview:fix")
        self.fix_btn.setVisible(False)
        self.fix_btn.clicked.connect(self._apply_fix)
        lay.addWidget(self.fix_btn, 0, Qt.AlignLeft)
        # a py: factory is imported (in an engine subprocess) only after this click
        self.trusted: set[str] = set()
        self._confirm: str | None = None
        self.confirm_btn = QPushButton()
        self.confirm_btn.setObjectName("preview:confirm")
        self.confirm_btn.setVisible(False)
        self.confirm_btn.clicked.connect(self._trust)
        lay.addWidget(self.confirm_btn, 0, Qt.AlignLeft)
        # no measured speed for this model here yet: measure it (plan --calibrate, a few batches)
        self.calibration = SpeedCalibration(self)
        self.calibration.finished.connect(self._calibrated)
        self.calibrate_btn = QPushButton("Measure this machine's speed (a few batches)")
        self.calibrate_btn.setObjectName("preview:calibrate")
        self.calibrate_btn.setToolTip("Runs spfde-train plan --calibrate on this configuration in an engine "
                                      "process: it trains a few batches of it, records the speed, and the "
                                      "wall time becomes an estimate")
        self.calibrate_btn.setVisible(False)
        self.calibrate_btn.clicked.connect(self.calibrate)
        lay.addWidget(self.calibrate_btn, 0, Qt.AlignLeft)
        self._calibration_note = ""
        lay.addStretch(1)
        self.setMinimumHeight(self.sizeHint().height())

    # ------------------------------------------------------------------ input
    def schedule(self, cfg: cfgmod.RunConfig | None, errors: list[tuple[str, str]] | None = None,
                 suggestions: dict[str, object] | None = None) -> None:
        """Project ``cfg`` after the debounce delay; with no config, show the errors (and the
        one-click fix where the engine knows one)."""
        self._pending = cfg
        if cfg is None:
            self._timer.stop()
            self.tasks.cancel()              # drop any projection still on its way
            self._show_error("Fix the configuration: " + "; ".join(f"{f}: {m}" for f, m in (errors or [])[:3]),
                             suggestions=suggestions)
            return
        self.message.setStyleSheet("color: #555;")
        self.message.setText("<i>measuring the model's blocks and FLOPs (once, in an engine process)…</i>"
                             if needs_measuring(cfg) and self._may_measure(cfg) else "<i>updating…</i>")
        self._timer.start()

    def _may_measure(self, cfg: cfgmod.RunConfig) -> bool:
        spec = model_spec.parse(cfg.model.name)
        return spec.kind != "py" or spec.name in self.trusted

    def _trust(self) -> None:
        if self._confirm:
            self.trusted.add(self._confirm)
        self.confirm_btn.setVisible(False)
        if self._pending is not None:
            self.schedule(self._pending)

    def _run(self) -> None:
        if self._pending is None:
            return
        self.tasks.start(_project, self._pending, frozenset(self.trusted))

    def busy(self) -> bool:
        return self._timer.isActive() or self.tasks.is_busy()

    def wait_idle(self, ms: int = 5000) -> None:
        self.tasks.wait(ms / 1000)

    def shutdown(self) -> None:
        self._timer.stop()
        self.tasks.shutdown()
        self.calibration.kill()

    # ------------------------------------------------------------------ output
    def _on_done(self, outcome) -> None:
        res, err = outcome
        self._confirm = res.get("confirm") if err else None
        self.confirm_btn.setText(f"Import and measure {self._confirm} (runs its code)" if self._confirm else "")
        self.confirm_btn.setVisible(bool(self._confirm))
        if err:
            self._show_error(err, rejected=True, suggestions=res.get("suggestions"), fields=res.get("errors"))
            return
        self.result, self.error, self.rejection = res, None, None
        self.rejected_fields = []
        self._set_suggestions({})
        f, m = res.get("flops", {}), res.get("memory", {})
        saved = f.get("saved", {})
        dense = f.get("dense") or 0.0
        pct = lambda x: f" ({100 * x / dense:.1f}%)" if dense else ""
        spent = f.get("spent")
        self.values["spent"].setText(fmt_flops(spent) + pct(spent or 0.0))
        self.values["dense"].setText(fmt_flops(dense))
        for k in ("sparsity", "freeze", "sieve"):
            self.values[k].setText(fmt_flops(saved.get(k)) + pct(saved.get(k) or 0.0))
        self.values["peak"].setText(fmt_bytes(m.get("peak_bytes")))
        self.values["average"].setText(fmt_bytes(m.get("average_bytes")))
        pg = res.get("per_gpu") or {}
        self.values["per_gpu"].setText(f"{pg['processes']} x batch {pg['batch_size']}, peak {fmt_bytes(pg['peak_bytes'])}"
                                       if pg else "1 process")
        # the per-GPU row only means something for several processes (never on a CPU-only run)
        for w in (self.values["per_gpu"], self.row_labels["per_gpu"]):
            w.setVisible(bool(pg))
        fp = res.get("freeze_plan")
        self.values["freeze_start"].setText(shown_epoch(fp.get("start_epoch")) if fp else "off")
        self._show_wall_time(res.get("wall_time") or {})
        self.bar.set_parts([("spent", spent or 0.0)] + [(k, saved.get(k) or 0.0) for k in ("sparsity", "freeze", "sieve")])
        self.message.setStyleSheet("color: #555;")
        # the spent FLOPs include work on top of the sparse training: name it, or the rows
        # above add up to more than the dense equivalent
        over = {k: v for k, v in (f.get("overhead") or {}).items() if isinstance(v, (int, float)) and v > 0}
        over_text = (f"; Training FLOPs include {fmt_flops(sum(over.values()))} of overhead "
                     f"({', '.join(k.replace('_', ' ') for k in over)})") if over else ""
        if not (res.get("method") or {}).get("exact", True):
            over_text += (f"; FLOPs are an estimate: {res['method'].get('name', 'the method')} chooses the layer "
                          "densities from the data (priced at the uniform split)")
        self.message.setText(f"{res.get('model', {}).get('name', '')}, "
                             f"{res.get('dataset', {}).get('train_size', '?')} training samples; model training memory "
                             f"at 32-bit, batch {m.get('batch_size', '?')} (the paper's accounting){over_text}")
        self.updated.emit(res)

    def _show_wall_time(self, est: dict) -> None:
        """The run's wall time from this machine's measured speed, with what freezing and
        sieving take off it; 'unknown' until a run or a calibration has measured it."""
        secs = est.get("seconds")
        measuring = self.calibration.running()
        self._show_calibrate(secs is None or measuring)
        if secs is None:
            self.values["wall"].setText("measuring…" if measuring else "unknown")
            self.values["wall"].setToolTip("\n\n".join(t for t in (est.get("why"), self._calibration_note) if t))
            return
        saves = [f"−{wall_time.duration(est[k])} {what}" for k, what in
                 (("freeze_saves_s", "freezing"), ("sieve_saves_s", "sieving")) if est.get(k)]
        self.values["wall"].setText(wall_time.duration(secs) + (f" ({', '.join(saves)})" if saves else ""))
        self.values["wall"].setToolTip(wall_time.describe(est))

    def _show_calibrate(self, show: bool) -> None:
        if show != self.calibrate_btn.isVisibleTo(self):
            self.calibrate_btn.setVisible(show)
            # the button takes a row: the rows above keep their height (the splitter gives way)
            self.setMinimumHeight(self.sizeHint().height())

    def calibrate(self) -> bool:
        """Measure this machine's speed for the configuration in view (False: none to measure,
        or a measurement already running)."""
        cfg = self._pending
        if cfg is None or not self.calibration.start(cfg):
            return False
        self._calibration_note = ""
        self.calibrate_btn.setEnabled(False)
        self.calibrate_btn.setText("Measuring… (loads PyTorch, trains a few batches)")
        self.values["wall"].setText("measuring…")
        return True

    def _calibrated(self, ok: bool, log_tail: str) -> None:
        self.calibrate_btn.setEnabled(True)
        self.calibrate_btn.setText("Measure this machine's speed (a few batches)")
        # a failed measurement (no such device, out of memory) leaves the estimate unknown; the
        # wall row's tooltip then gives the engine's last lines (shown only while unknown)
        self._calibration_note = (f"the last measurement {'ended' if ok else 'failed'}; the engine said:\n"
                                  f"{log_tail}")
        if self._pending is not None:
            self.schedule(self._pending)

    def set_process_memory(self, rss: float | None, running: bool) -> None:
        """The engine's resident memory beside the model's (from the hardware poll)."""
        self.values["process"].setText(fmt_bytes(rss) if running and rss else
                                       ("starting…" if running else "no run going"))

    def set_run_clock(self, text: str, tip: str = "") -> None:
        """When the run going started and should end (spfde_gui.model.run_state.clock_text)."""
        self.values["clock"].setText(text or "no run going")
        self.values["clock"].setToolTip(tip)

    def _set_suggestions(self, suggestions: dict[str, object]) -> None:
        self.suggestions = dict(suggestions)
        if "freeze.target" in self.suggestions:
            v = float(self.suggestions["freeze.target"])   # type: ignore[arg-type]
            self.fix_btn.setText(f"Use freeze target {100 * v:.1f}% (the reachable maximum)")
            self.fix_btn.setToolTip(f"Set freeze.target to {v} (the same as --set freeze.target={v})")
        elif self.suggestions:
            self.fix_btn.setText("Use " + ", ".join(f"{f} = {hints.shown(v)}" for f, v in self.suggestions.items()))
            self.fix_btn.setToolTip("The same as " + " ".join(hints.set_args(self.suggestions)))
        self.fix_btn.setVisible(bool(self.suggestions))
        # the button takes a row: the rows above keep their height (the splitter gives way)
        self.setMinimumHeight(self.sizeHint().height())

    def _apply_fix(self) -> None:
        for field, value in list(self.suggestions.items()):     # each emit re-validates the form
            self.fix_requested.emit(field, value)

    def _show_error(self, text: str, rejected: bool = False, suggestions: dict | None = None,
                    fields: list | None = None) -> None:
        self.result, self.error = None, text
        self.rejection = text if rejected else None
        self.rejected_fields = list(fields or [])
        self._set_suggestions(suggestions or {})
        for k, v in self.values.items():
            if k != "process":
                v.setText("–")
        self.bar.set_parts([])
        self._show_calibrate(self.calibration.running())    # nothing to measure until it projects
        self.message.setStyleSheet("color: #c0392b;")
        self.message.setText(text)
        self.updated.emit(None)
