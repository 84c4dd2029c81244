"""Live cost preview beside the form: engine.plan.project (pure Python, in process) run off
the GUI thread, debounced, showing projected FLOPs by source against dense, memory and the
freeze start epoch, or why the configuration cannot be projected."""
from __future__ import annotations

import itertools

from PySide6.QtCore import QObject, QRectF, QRunnable, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from engine import config as cfgmod

DEBOUNCE_MS = 250
# One colour per FLOPs source, shared by every view that splits FLOPs.
SOURCE_COLORS = {"spent": "#3b6fb6", "sparsity": "#7fb77e", "freeze": "#e6a23c", "sieve": "#b57edc"}
SOURCE_LABELS = {"spent": "spent", "sparsity": "saved by sparsity", "freeze": "saved by freezing",
                 "sieve": "saved by sieving"}


def fmt_flops(x: float | None) -> str:
    if x is None or x != x:
        return "–"
    for unit, scale in (("EFLOPs", 1e18), ("PFLOPs", 1e15), ("TFLOPs", 1e12), ("GFLOPs", 1e9), ("MFLOPs", 1e6)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.3g} FLOPs"


def fmt_bytes(b: float | None) -> str:
    if b is None or b != b:
        return "–"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(b) >= scale:
            return f"{b / scale:.1f} {unit}"
    return f"{b:.0f} B"


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


class _Signals(QObject):
    done = Signal(int, object, str)   # sequence, result ({} on error), error text ("" if none)


class _ProjectTask(QRunnable):
    def __init__(self, seq: int, cfg: cfgmod.RunConfig, signals: _Signals):
        super().__init__()
        self.seq, self.cfg, self.signals = seq, cfg, signals

    def run(self) -> None:
        try:
            from engine import plan
            res = plan.project(self.cfg)
            res["per_gpu"] = per_gpu(self.cfg, plan.project)
            self.signals.done.emit(self.seq, res, "")
        except cfgmod.ConfigError as exc:
            self.signals.done.emit(self.seq, {}, "; ".join(f"{f}: {m}" for f, m in exc.errors))
        except Exception as exc:  # the planner is another team's code: show, do not crash
            self.signals.done.emit(self.seq, {}, f"{type(exc).__name__}: {exc}")


class CostPreview(QWidget):
    updated = Signal(object)   # the projection dict, or None on error

    def __init__(self, parent=None):
        super().__init__(parent)
        self._seq = itertools.count(1)
        self._latest = 0
        self._pending: cfgmod.RunConfig | None = None
        self.result: dict | None = None
        self.error: str | None = None
        self._signals = _Signals()
        self._signals.done.connect(self._on_done)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
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
        rows = [("spent", "Training FLOPs"), ("dense", "Dense equivalent"), ("sparsity", SOURCE_LABELS["sparsity"]),
                ("freeze", SOURCE_LABELS["freeze"]), ("sieve", SOURCE_LABELS["sieve"]),
                ("peak", "Peak memory"), ("average", "Average memory"), ("freeze_start", "Freeze starts at epoch"),
                ("per_gpu", "Per GPU (process)")]
        for i, (key, text) in enumerate(rows):
            sw = QLabel()
            if key in SOURCE_COLORS:
                sw.setFixedSize(10, 10)
                sw.setStyleSheet(f"background: {SOURCE_COLORS[key]};")
            grid.addWidget(sw, i, 0)
            grid.addWidget(QLabel(text), i, 1)
            v = QLabel("–")
            v.setObjectName("preview:" + key)
            v.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
            v.setTextInteractionFlags(Qt.TextSelectableByMouse)
            grid.addWidget(v, i, 2)
            self.values[key] = v
        lay.addLayout(grid)
        self.message = QLabel()
        self.message.setObjectName("preview:message")
        self.message.setWordWrap(True)
        lay.addWidget(self.message)
        lay.addStretch(1)

    # ------------------------------------------------------------------ input
    def schedule(self, cfg: cfgmod.RunConfig | None, errors: list[tuple[str, str]] | None = None) -> None:
        """Project ``cfg`` after the debounce delay; with no config, show the errors."""
        self._pending = cfg
        if cfg is None:
            self._timer.stop()
            self._latest = next(self._seq)   # drop any projection still on its way
            self._show_error("Fix the configuration: " + "; ".join(f"{f}: {m}" for f, m in (errors or [])[:3]))
            return
        self.message.setText("<i>updating…</i>")
        self._timer.start()

    def _run(self) -> None:
        if self._pending is None:
            return
        self._latest = next(self._seq)
        self._pool.start(_ProjectTask(self._latest, self._pending, self._signals))

    def wait_idle(self, ms: int = 5000) -> None:
        self._pool.waitForDone(ms)

    # ------------------------------------------------------------------ output
    def _on_done(self, seq: int, res, err) -> None:
        if seq != self._latest:
            return   # a newer configuration is already on its way
        if err:
            self._show_error(err)
            return
        self.result, self.error = res, None
        f, m = res.get("flops", {}), res.get("memory", {})
        saved = f.get("saved", {})
        dense = f.get("dense") or 0.0
        pct = lambda x: f" ({100 * x / dense:.1f}%)" if dense else ""
        self.values["spent"].setText(fmt_flops(f.get("total")) + pct(f.get("total") or 0.0))
        self.values["dense"].setText(fmt_flops(dense))
        for k in ("sparsity", "freeze", "sieve"):
            self.values[k].setText(fmt_flops(saved.get(k)) + pct(saved.get(k) or 0.0))
        self.values["peak"].setText(fmt_bytes(m.get("peak_bytes")))
        self.values["average"].setText(fmt_bytes(m.get("average_bytes")))
        pg = res.get("per_gpu") or {}
        self.values["per_gpu"].setText(f"{pg['processes']} x batch {pg['batch_size']}, peak {fmt_bytes(pg['peak_bytes'])}"
                                       if pg else "1 process")
        fp = res.get("freeze_plan")
        self.values["freeze_start"].setText(str(fp.get("start_epoch")) if fp else "off")
        self.bar.set_parts([("spent", f.get("total") or 0.0)] + [(k, saved.get(k) or 0.0) for k in ("sparsity", "freeze", "sieve")])
        self.message.setStyleSheet("color: #555;")
        self.message.setText(f"{res.get('model', {}).get('name', '')}, "
                             f"{res.get('dataset', {}).get('train_size', '?')} training samples; memory at 32-bit, "
                             f"batch {m.get('batch_size', '?')}")
        self.updated.emit(res)

    def _show_error(self, text: str) -> None:
        self.result, self.error = None, text
        for v in self.values.values():
            v.setText("–")
        self.bar.set_parts([])
        self.message.setStyleSheet("color: #c0392b;")
        self.message.setText(text)
        self.updated.emit(None)
