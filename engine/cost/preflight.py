"""Before a run starts: will it fit in memory, and on disk?

Pure Python (no torch): ``validate`` and ``run`` call it before anything is built. The
estimates are deliberately simple upper-bound-ish sums of what the engine holds:

* memory: the in-memory dataset (synthetic/CIFAR images as uint8 on the training device,
  plus the generator's float temporaries), the model in float32 with its gradients,
  momentum buffers and masks, the planner's training memory for one batch, and a fixed
  allowance for the Python/torch runtime;
* disk: one checkpoint (weights + momentum + masks + sieve and forgetting state) times the
  files kept at once (last.pt, ``checkpoint.keep`` epoch files and one being written), plus
  events.jsonl (a few KiB per epoch).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from engine.config import ConfigError, RunConfig
from engine.cost import arch as arch_mod
from engine.cost import costmodel
from engine.data.sizes import dataset_sizes

RUNTIME_BYTES = 600 * 2**20          # interpreter, torch, libraries
EVENT_BYTES_PER_EPOCH = 16 * 2**10   # epoch_end + updates + progress lines
SAMPLE_STATE_BYTES = 40              # sieve queue/active + forgetting tracker, per training sample
SYNTH_TEMP_FACTOR = 4                # synthetic generation: float32 temporaries per uint8 pixel (chunked)
IN_MEMORY_COPIES = 1                 # the N,H,W,3 array, shared by DeviceDataset (batches permuted one by one)


def total_memory() -> int | None:
    """Memory this process may use, in bytes: the machine's physical memory, or a container's
    cgroup limit when lower (None when unknown)."""
    phys = None
    try:
        import psutil
        phys = int(psutil.virtual_memory().total)
    except Exception:  # noqa: BLE001 - psutil missing or no /proc
        try:
            phys = int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        except (ValueError, OSError, AttributeError):
            pass
    limit = _cgroup_limit()
    if limit is not None and (phys is None or limit < phys):
        return limit
    return phys


def _cgroup_limit() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:      # "max" or a huge number: no limit
            return int(text)
    return None


def estimate(cfg: RunConfig, sizes: dict, params: int, batch_bytes: float) -> dict:
    """Bytes a run needs: {dataset, model, batch, runtime, total, checkpoint, events, disk}."""
    n_train, n_test = sizes["train_size"], sizes["test_size"]
    px = 3 * sizes["image_size"] ** 2
    if cfg.data.name == "imagefolder":
        dataset = (n_train + n_test) * 300                     # paths and labels; decoded per batch
    else:
        # One copy: DeviceDataset shares the loader's N,H,W,3 array and permutes each batch
        # (it used to keep an N,3,H,W copy beside it: 1M samples measured 6.53 GiB).
        dataset = (n_train + n_test) * px * IN_MEMORY_COPIES
        if cfg.data.name == "synthetic":
            dataset += min(n_train, 4096) * px * SYNTH_TEMP_FACTOR
    dataset += n_train * SAMPLE_STATE_BYTES
    model = params * 4 * 4                                     # weights, grads, momentum, masks/scores
    checkpoint = params * 4 * 2 + params + n_train * SAMPLE_STATE_BYTES + 64 * 2**10
    files = cfg.checkpoint.keep + 2
    events = cfg.epochs * EVENT_BYTES_PER_EPOCH
    total = dataset + model + int(batch_bytes) + RUNTIME_BYTES
    per_sample = dataset / max(1, n_train + n_test)
    return {"dataset": int(dataset), "dataset_train": int(per_sample * n_train),
            "dataset_test": int(per_sample * n_test), "model": int(model), "batch": int(batch_bytes), "runtime": RUNTIME_BYTES,
            "total": int(total), "checkpoint": int(checkpoint), "checkpoint_files": files,
            "events": int(events), "disk": int(checkpoint * files + events)}


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _driving_field(est: dict) -> str:
    """The configuration field behind the largest part of the estimate (what to lower)."""
    parts = {"data.train_size": est.get("dataset_train", est["dataset"]), "data.test_size": est.get("dataset_test", 0),
             "batch_size": est["batch"], "model.width": est["model"]}
    return max(parts, key=lambda k: parts[k])


def check_memory(est: dict, available: int | None = None) -> None:
    """ConfigError when the run cannot fit in the machine's memory (device=cpu/auto)."""
    mem = total_memory() if available is None else available
    if mem is None or est["total"] <= mem:
        return
    raise ConfigError([(_driving_field(est),
                        f"the run needs about {_gib(est['total'])} of memory (dataset {_gib(est['dataset'])}, "
                        f"model and optimizer {_gib(est['model'])}, one batch {_gib(est['batch'])}, runtime "
                        f"{_gib(est['runtime'])}) but this machine has {_gib(mem)}")])


CUDA_CONTEXT_BYTES = 500 * 2**20     # the CUDA context and cuDNN/cuBLAS workspaces


def check_gpu_memory(est: dict, device: str, free: int, total: int) -> None:
    """ConfigError when the run cannot fit in the free memory of GPU ``device``: an in-memory
    dataset is copied onto it, with the model, optimizer state and one batch."""
    need = est["dataset"] + est["model"] + est["batch"] + CUDA_CONTEXT_BYTES
    if need <= free:
        return
    raise ConfigError([(_driving_field(est),
                        f"the run needs about {_gib(need)} of GPU memory on {device} (dataset {_gib(est['dataset'])}, "
                        f"model and optimizer {_gib(est['model'])}, one batch {_gib(est['batch'])}, CUDA context "
                        f"{_gib(CUDA_CONTEXT_BYTES)}) but {_gib(free)} of its {_gib(total)} are free")])


def check_disk(est: dict, folder: str | Path) -> str | None:
    """Refuse (ConfigError) when not even one checkpoint fits in the free space of ``folder``;
    return a warning when the projected checkpoints and events do not."""
    p = Path(folder).expanduser()
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        free = shutil.disk_usage(p).free
    except OSError:
        return None
    need_one = est["checkpoint"] + est["events"] // max(1, est["checkpoint_files"]) + 2**20
    if free < need_one:
        raise ConfigError([("run_dir", f"only {_gib(free)} free on {p}; one checkpoint needs about "
                                       f"{_gib(est['checkpoint'])} (the run would fail at its first checkpoint)")])
    if free < est["disk"]:
        return (f"only {_gib(free)} free on {p}; the run projects {_gib(est['disk'])} "
                f"({est['checkpoint_files']} checkpoint files of {_gib(est['checkpoint'])} and "
                f"{_gib(est['events'])} of events)")
    return None


def preflight(cfg: RunConfig) -> dict:
    """The estimate for a configuration, and a ConfigError if it cannot fit in memory."""
    sizes = dataset_sizes(cfg)
    arch = arch_mod.describe(cfg.model, sizes["num_classes"], sizes["image_size"])
    batch = costmodel.memory(arch, {}, 0, cfg.batch_size, 32)["total"]
    est = estimate(cfg, sizes, arch.params, batch)
    if not cfg.device.startswith(("cuda", "mps")):
        check_memory(est)
    return est
