"""Which NVIDIA GPUs this machine has, through NVML: name, memory, utilisation and the
processes on each. No Qt and no torch: the GPU selector, the hardware view and
benchmarks/gpu_check.sh (on a machine without Qt) all read it.

A machine without an NVIDIA driver or without nvidia-ml-py is a normal state: ``list_gpus``
returns ``([], "no NVIDIA GPU (...)")``, never raises.
"""
from __future__ import annotations

from dataclasses import dataclass, field

try:  # nvidia-ml-py
    import pynvml
except Exception:  # pragma: no cover - depends on the install
    pynvml = None


@dataclass
class GpuProcess:
    pid: int
    used_bytes: int | None          # None: the driver does not say (e.g. inside a container)
    name: str = ""


@dataclass
class Gpu:
    index: int
    name: str
    total_bytes: int
    used_bytes: int
    util_percent: int | None
    processes: list[GpuProcess] = field(default_factory=list)

    @property
    def free_bytes(self) -> int:
        return max(0, self.total_bytes - self.used_bytes)

    def label(self) -> str:
        util = "?" if self.util_percent is None else f"{self.util_percent}%"
        return (f"GPU {self.index}: {self.name}, {self.used_bytes / 2**30:.1f} / {self.total_bytes / 2**30:.1f} GiB, "
                f"{util} busy, {len(self.processes)} process{'es' if len(self.processes) != 1 else ''}")


def _text(v) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.replace("NVML Shared Library Not Found", "NVML library not found")


def _processes(h) -> list[GpuProcess]:
    out: dict[int, GpuProcess] = {}
    for getter in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
        try:
            procs = getattr(pynvml, getter)(h)
        except Exception:  # noqa: BLE001 - not supported on this driver
            continue
        for p in procs:
            used = p.usedGpuMemory if isinstance(p.usedGpuMemory, int) else None
            name = ""
            try:
                name = _text(pynvml.nvmlSystemGetProcessName(p.pid)).rsplit("/", 1)[-1]
            except Exception:  # noqa: BLE001 - another container's process
                pass
            out.setdefault(p.pid, GpuProcess(p.pid, used, name))
    return list(out.values())


def list_gpus() -> tuple[list[Gpu], str | None]:
    """(the GPUs, None) or ([], why there are none)."""
    if pynvml is None:
        return [], "no NVIDIA GPU (nvidia-ml-py is not installed)"
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return [], f"no NVIDIA GPU ({_reason(exc)})"
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            try:
                util = int(pynvml.nvmlDeviceGetUtilizationRates(h).gpu)
            except Exception:  # noqa: BLE001
                util = None
            gpus.append(Gpu(i, _text(pynvml.nvmlDeviceGetName(h)), int(mem.total), int(mem.used), util,
                            _processes(h)))
        return gpus, (None if gpus else "no NVIDIA GPU (NVML found no devices)")
    except Exception as exc:  # noqa: BLE001
        return [], f"no NVIDIA GPU ({_reason(exc)})"
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass


def per_gpu_batch(batch_size: int, processes: int) -> int:
    """The batch each process (GPU) trains on: ``batch_size`` is the global batch."""
    return batch_size // max(1, processes)


def main() -> int:
    """``python -m spfde_gui.system.gpu_info``: print what NVML sees (used by gpu_check.sh)."""
    gpus, why = list_gpus()
    if why:
        print(why)
    for g in gpus:
        print(g.label())
        for p in g.processes:
            used = "?" if p.used_bytes is None else f"{p.used_bytes / 2**20:.0f} MiB"
            print(f"    pid {p.pid} {p.name}: {used}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
