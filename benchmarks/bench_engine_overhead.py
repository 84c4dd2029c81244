"""Engine overhead: the SpFDE trainer vs a plain PyTorch loop, side by side in one run.

Both train the same model (same seed, same initial weights) on the same in-memory data with
the same on-device augmentation, SGD settings and batch size; only the loop differs. The
engine runs with all its components present (freezer, sparsifier, sieve, ledger), events
written to a throw-away stream, checkpoints only at the end (outside the timed epochs):

* engine, sparsity 0, no freezing or sieving  vs  plain loop   (goal: at most 3% slower)
* engine, 90% sparsity masks (MEST EM&S)       vs  plain loop   (goal: at most 5% slower)

Throughput = training images per second of each epoch (the engine's ``epoch_time``, which
excludes evaluation; the plain loop is timed the same way), the first epoch of each run
discarded as warm-up, the median over the remaining epochs of all rounds. Runs alternate
(plain, engine, engine-sparse, plain, ...) so machine noise hits all of them alike.

    python benchmarks/bench_engine_overhead.py                       # CUDA if available
    python benchmarks/bench_engine_overhead.py --device cpu --train-size 2000 --image-size 16 --width 0.5
"""
from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from engine import config as C  # noqa: E402
from engine.data.loaders import Data, epoch_order, num_batches  # noqa: E402
from engine.models import build_model  # noqa: E402
from engine.run.telemetry import Emitter  # noqa: E402
from engine.training.trainer import Trainer, resolve_device  # noqa: E402


def make_cfg(a, sparsity: float) -> C.RunConfig:
    return C.from_dict({
        "name": "bench", "seed": 0, "device": a.device, "epochs": a.epochs, "batch_size": a.batch_size,
        "interval": a.epochs,                       # no mask update inside the timed epochs
        "model": {"name": a.model, "width": a.width},
        "data": {"name": "synthetic", "image_size": a.image_size, "train_size": a.train_size,
                 "test_size": 256, "num_classes": 10},
        "optim": {"lr": 0.05},
        "sparsity": {"target": sparsity},
        "freeze": {"target": 0.0}, "sieve": {"ratio": 0.0},
        "checkpoint": {"every": 0},
    })


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_engine(cfg) -> list[float]:
    """images/s of each training epoch of a full engine run."""
    with tempfile.TemporaryDirectory() as d:
        out = io.StringIO()
        tr = Trainer(cfg, d, Emitter(d, stream=out, progress_bar=False))
        tr.fit()
    evs = [json.loads(l) for l in out.getvalue().splitlines()]
    return [e["samples"] / e["epoch_time"] for e in evs if e["event"] == "epoch_end"]


def run_plain(cfg) -> list[float]:
    """The textbook loop on the same data pipeline."""
    device = resolve_device(cfg.device)
    data = Data(cfg, device)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, data.num_classes).to(device)
    o = cfg.optim
    opt = torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    ds, bs = data.train.ds, cfg.batch_size
    rates = []
    for epoch in range(cfg.epochs):
        model.train()
        order = epoch_order(torch.arange(data.train_size), cfg.seed, epoch).to(device)
        _sync(device)
        t0 = time.perf_counter()
        for b in range(num_batches(len(order), bs)):
            x, y = ds.batch(order[b * bs:(b + 1) * bs], cfg.data.augment, cfg.seed, epoch, b)
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        _sync(device)
        rates.append(len(order) / (time.perf_counter() - t0))
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--model", default="resnet32")
    ap.add_argument("--width", type=float, default=2.0)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--train-size", type=int, default=20000)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3, help="per run; the first is warm-up")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--sparse", type=float, default=0.9, help="sparsity of the masked engine run")
    a = ap.parse_args()
    if a.epochs < 2:
        ap.error("--epochs must be at least 2 (the first is discarded)")
    device = resolve_device(a.device)
    a.device = str(device)
    runs = {"plain PyTorch loop": lambda: run_plain(make_cfg(a, 0.0)),
            "engine, sparsity 0": lambda: run_engine(make_cfg(a, 0.0)),
            f"engine, sparsity {a.sparse:g}": lambda: run_engine(make_cfg(a, a.sparse))}
    rates: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(a.rounds):
        for name, fn in runs.items():
            rates[name] += fn()[1:]
    if device.type == "cuda":
        machine = torch.cuda.get_device_name(device)
    else:
        machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(f"# engine overhead: {a.model} x{a.width:g}, synthetic {a.train_size} images {a.image_size}px, "
          f"batch {a.batch_size}, {a.epochs - 1} timed epochs x {a.rounds} rounds")
    print(f"# device {device} ({machine}), torch {torch.__version__}")
    # Two estimators: the median, and the best epoch (on a shared or virtual CPU, interference
    # only ever slows an epoch down, so the fastest epoch is the least disturbed one).
    base = statistics.median(rates["plain PyTorch loop"])
    best_base = max(rates["plain PyTorch loop"])
    print("| run | images/s (median) | min | max | vs plain, median | vs plain, best epoch |")
    print("|---|---|---|---|---|---|")
    for name, r in rates.items():
        med = statistics.median(r)
        print(f"| {name} | {med:,.0f} | {min(r):,.0f} | {max(r):,.0f} | {med / base:.3f} "
              f"({(base / med - 1) * 100:+.1f}% time) | {max(r) / best_base:.3f} "
              f"({(best_base / max(r) - 1) * 100:+.1f}% time) |")


if __name__ == "__main__":
    main()
