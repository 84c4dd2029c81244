"""Hardware readings for the engine process: GPU memory through NVML, CPU and RAM of the
process tree through psutil. No Qt: the hardware view polls ``sample`` on a 1 s timer.

A machine without an NVIDIA driver is a normal state (``gpu_error`` says why), never a crash.
"""
from __future__ import annotations

import time

import psutil

try:  # nvidia-ml-py; absent or driverless machines fall back to "no NVIDIA GPU"
    import pynvml
except Exception:  # pragma: no cover - depends on the install
    pynvml = None


class HardwareMonitor:
    def __init__(self):
        self.gpu_error: str | None = None
        self._handles: list = []
        self._procs: dict[int, psutil.Process] = {}   # kept so cpu_percent has a baseline
        self._init_nvml()

    def _init_nvml(self) -> None:
        if pynvml is None:
            self.gpu_error = "no NVIDIA GPU (nvidia-ml-py not installed)"
            return
        try:
            pynvml.nvmlInit()
            n = pynvml.nvmlDeviceGetCount()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(n)]
            if not self._handles:
                self.gpu_error = "no NVIDIA GPU (NVML found no devices)"
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            self.gpu_error = f"no NVIDIA GPU ({_nvml_reason(exc)})"
            self._handles = []

    @property
    def has_gpu(self) -> bool:
        return bool(self._handles)

    def gpus(self, pids: set[int]) -> list[dict]:
        """Per device: name, used/total bytes and the bytes held by ``pids`` (None when the
        driver does not report per-process figures)."""
        out = []
        for i, h in enumerate(self._handles):
            try:
                mem = pynvml.nvmlDeviceGetMemoryInfo(h)
                name = pynvml.nvmlDeviceGetName(h)
                if isinstance(name, bytes):
                    name = name.decode(errors="replace")
                own = None
                per_pid: dict[int, int | None] = {}
                try:
                    procs = pynvml.nvmlDeviceGetComputeRunningProcesses(h)
                    per_pid = {p.pid: (p.usedGpuMemory if isinstance(p.usedGpuMemory, int) else None)
                               for p in procs if p.pid in pids}
                    mine = [p.usedGpuMemory for p in procs if p.pid in pids]
                    if mine and all(isinstance(m, int) for m in mine):
                        own = sum(mine)
                    elif not mine:
                        own = 0
                except Exception:
                    own = None
                util = None
                try:
                    util = pynvml.nvmlDeviceGetUtilizationRates(h).gpu
                except Exception:
                    pass
                out.append({"index": i, "name": name, "used": mem.used, "total": mem.total,
                            "process": own, "util": util, "processes": per_pid})
            except Exception as exc:
                out.append({"index": i, "name": "?", "error": _nvml_reason(exc)})
        return out

    def process_tree(self, pid: int | None) -> dict | None:
        """CPU % (sum over the tree, 100 = one core) and RSS bytes of a process and its children."""
        if not pid:
            self._procs.clear()
            return None
        try:
            root = psutil.Process(pid)
            tree = [root] + root.children(recursive=True)
        except psutil.Error:
            self._procs.clear()
            return None
        cpu = rss = 0.0
        alive = {}
        for p in tree:
            proc = self._procs.get(p.pid, p)
            try:
                cpu += proc.cpu_percent(None)
                rss += proc.memory_info().rss
                alive[p.pid] = proc
            except psutil.Error:
                continue
        self._procs = alive
        return {"cpu_percent": cpu, "rss": rss, "pids": set(alive), "n": len(alive)}

    def sample(self, pid: int | None) -> dict:
        tree = self.process_tree(pid)
        pids = tree["pids"] if tree else set()
        return {"time": time.time(), "proc": tree, "gpus": self.gpus(pids),
                "gpu_error": self.gpu_error, "cpu_count": psutil.cpu_count() or 1}

    def close(self) -> None:
        if self._handles and pynvml is not None:
            try:
                pynvml.nvmlShutdown()
            except Exception:
                pass
            self._handles = []


def _nvml_reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.replace("NVML Shared Library Not Found", "NVML library not found")
