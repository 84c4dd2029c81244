"""Hardware: GPU memory from NVML (device used/total and the engine process's own), CPU and
RSS of the engine process tree from psutil, sampled on a 1 s timer (``poll``), plus the
peak memory the engine itself reported per epoch (so past runs show something too)."""
from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from spfde_gui import palette as P
from spfde_gui.fmt import fmt_bytes
from spfde_gui.model.run_model import RunModel
from spfde_gui.report.export_figure import install_save_actions
from spfde_gui.system.hw_monitor import HardwareMonitor
from spfde_gui.views.base import HoverReadout, RunView, apply_headroom, curve, keep_headroom, make_plot, set_long_data

HISTORY = 900   # samples kept (15 minutes at 1 Hz)


def gpu_lines(gpus: list[dict], engine_running: bool) -> str:
    """One line per GPU (memory, utilisation) and the memory of each engine process on it."""
    if len(gpus) < 2 and not any(len(g.get("processes") or {}) > 1 for g in gpus):
        return ""          # one GPU, one process: the labels above say it all
    out = []
    for g in gpus:
        if "error" in g:
            out.append(f"GPU {g['index']}: {g['error']}")
            continue
        util = f", {g['util']}% busy" if g.get("util") is not None else ""
        line = f"GPU {g['index']} {g['name']}: {fmt_bytes(g['used'])} / {fmt_bytes(g['total'])}{util}"
        procs = g.get("processes") or {}
        if procs:
            line += "; engine: " + ", ".join(f"pid {pid} {fmt_bytes(b) if b is not None else '?'}"
                                              for pid, b in sorted(procs.items()))
        elif engine_running:
            line += "; engine: none"
        out.append(line)
    return "\n".join(out)


class HardwareView(RunView):
    title = "Hardware"

    def __init__(self, parent=None, monitor: HardwareMonitor | None = None):
        super().__init__(parent)
        self.monitor = monitor or HardwareMonitor()
        self.pid: int | None = None
        self._t0 = time.time()
        self._hist = np.full((4, HISTORY), np.nan)   # t, cpu %, rss, gpu process bytes
        self._n = 0
        box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        grid = QGridLayout()
        self.labels: dict[str, QLabel] = {}
        for i, (key, text) in enumerate((("gpu", "GPU"), ("gpu_mem", "GPU memory (device)"),
                                         ("gpu_proc", "GPU memory (engine)"), ("cpu", "Engine CPU"),
                                         ("rss", "Engine RAM (RSS, process tree)"),
                                         ("peak", "Engine-reported peak memory"))):
            grid.addWidget(QLabel(text), i // 3 * 2, i % 3)
            v = QLabel("–")
            v.setObjectName("hw:" + key)
            v.setStyleSheet("font-size: 15px; font-weight: bold;")
            grid.addWidget(v, i // 3 * 2 + 1, i % 3)
            self.labels[key] = v
        lay.addLayout(grid)
        # Every GPU and, under distributed training, each engine process (rank) on it.
        self.gpu_detail = QLabel("")
        self.gpu_detail.setObjectName("hw:gpu_detail")
        self.gpu_detail.setWordWrap(True)
        lay.addWidget(self.gpu_detail)
        self.glw = pg.GraphicsLayoutWidget()
        self.save_figure = install_save_actions(self, self.glw)   # right-click: Save figure…
        self.live_plot = make_plot(self.glw, 0, 0, "Engine process (live)", "seconds", "CPU %", legend=False)
        self.c_cpu = curve(self.live_plot, P.BLUE, "CPU %")
        self.mem_plot = make_plot(self.glw, 0, 1, "Engine memory (live)", "seconds", "MiB")
        self.c_rss = curve(self.mem_plot, P.GREEN, "RSS")
        self.c_gpu = curve(self.mem_plot, P.RED, "GPU (process)")
        self.epoch_plot = make_plot(self.glw, 1, 0, "Peak memory per epoch (engine)", "epoch", "MiB")
        self.glw.ci.layout.setRowStretchFactor(1, 1)
        self.c_peak = curve(self.epoch_plot, P.PURPLE, "peak")
        self.c_erss = curve(self.epoch_plot, P.BROWN, "RSS")
        for p in (self.mem_plot, self.epoch_plot):      # the legends sit above the curves
            keep_headroom(p)
        self.hovers = [HoverReadout(p) for p in (self.live_plot, self.mem_plot, self.epoch_plot)]
        lay.addWidget(self.glw, 1)
        self.set_content(box)
        self._show_devices(self.monitor.sample(None))

    def has_data(self, m: RunModel) -> bool:
        return True   # device state is always worth showing

    def set_pid(self, pid: int | None) -> None:
        if pid != self.pid:
            self.pid = pid
            if pid:
                self._hist[:] = np.nan
                self._n = 0
                self._t0 = time.time()

    def poll(self) -> dict:
        """One 1 s sample (called by the window's hardware timer, not by the redraw)."""
        s = self.monitor.sample(self.pid)
        self._show_devices(s)
        proc = s["proc"]
        if proc is not None:
            gpu_own = sum(g.get("process") or 0 for g in s["gpus"]) if self.monitor.has_gpu else np.nan
            row = (s["time"] - self._t0, proc["cpu_percent"], proc["rss"] / 2**20, gpu_own / 2**20)
            if self._n == HISTORY:
                self._hist[:, :-1] = self._hist[:, 1:]
                self._n -= 1
            self._hist[:, self._n] = row
            self._n += 1
            t = self._hist[0, :self._n]
            self.c_cpu.setData(t, self._hist[1, :self._n])
            self.c_rss.setData(t, self._hist[2, :self._n])
            if self.monitor.has_gpu:
                self.c_gpu.setData(t, self._hist[3, :self._n])
            apply_headroom(self.mem_plot, self._hist[2, :self._n], self._hist[3, :self._n])
        return s

    def _show_devices(self, s: dict) -> None:
        L = self.labels
        if s["gpus"]:
            g = s["gpus"][0]
            extra = f" (+{len(s['gpus']) - 1} more)" if len(s["gpus"]) > 1 else ""
            L["gpu"].setText(f"{g.get('name', '?')}{extra}")
            if "error" in g:
                L["gpu_mem"].setText(g["error"])
            else:
                util = f", {g['util']}% busy" if g.get("util") is not None else ""
                L["gpu_mem"].setText(f"{fmt_bytes(g['used'])} / {fmt_bytes(g['total'])}{util}")
            own = [x.get("process") for x in s["gpus"]]
            if not self.pid:
                L["gpu_proc"].setText("no engine running")
            elif any(o is None for o in own):
                L["gpu_proc"].setText("not reported by the driver")
            else:
                L["gpu_proc"].setText(fmt_bytes(sum(own)))
        else:
            L["gpu"].setText(s.get("gpu_error") or "no NVIDIA GPU")
            L["gpu"].setStyleSheet("font-size: 13px; font-weight: bold; color: #a05a00;")
            L["gpu_mem"].setText("n/a (CPU only)")
            L["gpu_proc"].setText("n/a (CPU only)")
        self.gpu_detail.setText(gpu_lines(s["gpus"], bool(self.pid)))
        proc = s["proc"]
        if proc is None:
            L["cpu"].setText("no engine running")
            L["rss"].setText("–")
        else:
            L["cpu"].setText(f"{proc['cpu_percent']:.0f}% of one core ({proc['n']} process{'es' if proc['n'] != 1 else ''}, "
                             f"{s['cpu_count']} cores)")
            L["rss"].setText(fmt_bytes(proc["rss"]))

    def redraw(self, m: RunModel) -> None:
        if m.n_epochs:
            ep = m.epoch_axis()
            peak = m.column("memory_peak")
            set_long_data(self.c_peak, ep, peak / 2**20)
            set_long_data(self.c_erss, ep, m.column("memory_rss") / 2**20)
            apply_headroom(self.epoch_plot, peak / 2**20, m.column("memory_rss") / 2**20)
            top = np.nanmax(peak) if np.isfinite(peak).any() else None
            self.labels["peak"].setText(fmt_bytes(float(top) if top is not None else None))
        else:
            set_long_data(self.c_peak, [], [])
            set_long_data(self.c_erss, [], [])
            self.labels["peak"].setText("no epoch yet")

    def refresh(self, force: bool = False) -> bool:
        if self.model is None:   # device state shows even before any run
            self._stack.setCurrentIndex(1)
            set_long_data(self.c_peak, [], [])
            set_long_data(self.c_erss, [], [])
            self.labels["peak"].setText("no run open")
            self._drawn_version = -2
            return False
        return super().refresh(force)
