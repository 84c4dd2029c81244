"""GPU speed settings and DDP scaling, measured through the real engine, side by side.

    python benchmarks/bench_gpu.py speed --model resnet32 --width 2 --image-size 32 --train-size 50000 --classes 100
    python benchmarks/bench_gpu.py speed --model resnet50 --image-size 224 --train-size 2560 --batch-size 128
    python benchmarks/bench_gpu.py ddp --model resnet32 --width 2 --train-size 50000 --classes 100

speed: one Trainer per setting (precision fp32/bf16 x channels_last off/on; on the CPU fp32
and bf16 only, as channels_last is CUDA-only), each for --epochs epochs; images/s = training
samples / ``epoch_time`` (the engine synchronises the GPU at the epoch end), the first epoch
discarded (cudnn autotuning, allocator warm-up), the median of the rest.

ddp: ``spfde-train run`` with ``distributed.nproc_per_node`` = 1 and = N (every GPU of the
machine; 2 processes with gloo on the CPU), reading images/s from the rank-0 epoch_end events
(the global batch is split over the processes). Scaling efficiency = rate(N) / (N x rate(1)).

Prints Markdown tables, the machine and the load average.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from engine.config import RunConfig  # noqa: E402


def make_cfg(a, **over) -> RunConfig:
    fields = {"name": "bench-gpu", "seed": 0, "device": a.device, "epochs": a.epochs, "interval": a.epochs,
              "batch_size": a.batch_size, "model.name": a.model, "model.width": a.width,
              "data.image_size": a.image_size, "data.train_size": a.train_size, "data.test_size": 256,
              "data.num_classes": a.classes, "data.augment": True, "sparsity.target": a.sparsity,
              "checkpoint.every": 0}
    fields.update(over)
    return RunConfig().replace(**fields)


def machine(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    import platform
    return f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def rates_of(events: list[dict]) -> tuple[list[float], int]:
    ends = [e for e in events if e.get("event") == "epoch_end"]
    peak = max((int(e["memory"].get("peak_bytes", 0)) for e in ends), default=0)
    return [e["samples"] / e["epoch_time"] for e in ends if e["epoch_time"] > 0], peak


def run_trainer(cfg) -> tuple[list[float], int]:
    from engine.run.telemetry import Emitter
    from engine.training.trainer import Trainer
    with tempfile.TemporaryDirectory() as d:
        out = io.StringIO()
        em = Emitter(d, stream=out, progress_bar=False, stream_events=True)
        Trainer(cfg, d, em).fit()
        em.close()
    return rates_of([json.loads(l) for l in out.getvalue().splitlines() if l.startswith("{")])


def cmd_speed(a) -> None:
    cuda = a.device.startswith("cuda")
    settings = [("fp32", False), ("bf16", False)] + ([("fp32", True), ("bf16", True)] if cuda else [])
    print(f"### Speed settings: {a.model} x{a.width:g}, {a.image_size}px, {a.train_size} synthetic images, "
          f"{a.classes} classes, batch {a.batch_size}, {a.epochs} epochs (first discarded)\n")
    print(f"Machine: {machine(a.device)}; torch {torch.__version__}; load average {os.getloadavg()[0]:.2f}\n")
    print("| precision | channels_last | images/s (median) | vs fp32 NCHW | peak memory (MiB) |")
    print("|---|---|---|---|---|")
    base = None
    for prec, cl in settings:
        t0 = time.monotonic()
        rates, peak = run_trainer(make_cfg(a, precision=prec, channels_last=cl))
        r = statistics.median(rates[1:] or rates)
        base = base or r
        print(f"| {prec} | {'on' if cl else 'off'} | {r:,.0f} | {r / base:.2f} | {peak / 2**20:,.0f} |", flush=True)
        print(f"<!-- {prec} cl={cl}: epochs {[round(x) for x in rates]}, {time.monotonic() - t0:.0f} s -->", flush=True)


def run_cli(cfg_path: Path, runs: Path, nproc: int, extra: list[str], cpu: bool = False) -> tuple[list[float], int, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if cpu:   # one thread per process for every count: scaling by processes, not by threads
        env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "engine", "run", "--config", str(cfg_path), "--run-dir", str(runs),
           "--set", f"distributed.nproc_per_node={nproc}", *extra]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    events = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    rates, peak = rates_of(events)
    return rates, p.returncode, p.stderr[-1500:]


def cmd_ddp(a) -> None:
    import yaml
    cuda = a.device.startswith("cuda") and torch.cuda.is_available()
    n = torch.cuda.device_count() if cuda else 2
    if a.nproc:
        n = a.nproc
    print(f"### DDP scaling: {a.model} x{a.width:g}, {a.image_size}px, {a.train_size} synthetic images, global batch "
          f"{a.batch_size}, precision {a.precision}, {a.epochs} epochs (first discarded)\n")
    print(f"Machine: {machine(a.device)}; backend {'nccl' if cuda else 'gloo, 1 thread per process'}; torch {torch.__version__}; "
          f"load average {os.getloadavg()[0]:.2f}\n")
    cfg = make_cfg(a, precision=a.precision)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cfg.yaml"
        path.write_text(yaml.safe_dump(cfg.to_dict()))
        print("| processes | images/s (median) | per process | scaling efficiency |")
        print("|---|---|---|---|")
        one = None
        for k in ([1, n] if n > 1 else [1]):
            extra = [] if a.batch_size % k == 0 else ["--set", f"batch_size={a.batch_size // k * k}"]
            rates, rc, err = run_cli(path, Path(tmp) / "runs", k, extra, cpu=not cuda)
            if rc != 0 or not rates:
                print(f"| {k} | failed (exit {rc}) | | |\n\n```\n{err}\n```")
                continue
            r = statistics.median(rates[1:] or rates)
            one = one or r
            print(f"| {k} | {r:,.0f} | {r / k:,.0f} | {r / (k * one):.2f} |", flush=True)
        if n == 1:
            print("\nOne GPU: scaling over GPUs cannot be measured on this machine.")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["speed", "ddp"])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--model", default="resnet32")
    ap.add_argument("--width", type=float, default=2.0)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--train-size", type=int, default=50000)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--sparsity", type=float, default=0.0)
    ap.add_argument("--precision", default="fp32", help="ddp: the precision of both runs")
    ap.add_argument("--nproc", type=int, default=0, help="ddp: processes of the second run (default: every GPU)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    t = time.monotonic()
    (cmd_speed if a.what == "speed" else cmd_ddp)(a)
    print(f"\nBenchmark wall time: {time.monotonic() - t:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
