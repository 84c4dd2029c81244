"""Data sieving: per-epoch time at 0/10/15/20/25% removal, and the forgetting-tracking overhead.

Prints (and with --append adds to docs/benchmarks.md) a table in the form of the paper's
Table A12: epoch time, time saved, FLOPs saved by the sieve, and realised/expected. All
configurations run in this one process through the real trainer (one Trainer each, stepped
with its internal ``_train_epoch`` so they can interleave), on the same data and model:
every configuration trains epoch e before any trains e + 1, in alternating order, so load
from other jobs on a shared machine hits them alike. Time saved is measured on this
thread's CPU time (the least disturbed epoch after the first) and on wall time (median over
the epochs after the first of 1 - time / the baseline's time in the same round).

The overhead of forgetting tracking is measured twice:
* A/B: the same run (20% removed, no update falls inside it, so the active set is fixed)
  with tracking forced on and off;
* directly: the time of one ``ForgettingTracker.update`` call at this batch size, times the
  batches of an epoch, over the epoch time (the A/B figure is noisier than 1% on a shared
  machine; this one is not).

    .venv/bin/python benchmarks/bench_sieving.py              # small CPU setting, < 1 min
    .venv/bin/python benchmarks/bench_sieving.py --device cuda --train-size 20000 --image-size 32 --width 1
"""
from __future__ import annotations

import argparse
import io
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from engine.config import RunConfig  # noqa: E402
from engine.run import folder as run_dir_mod  # noqa: E402
from engine.run.telemetry import Emitter  # noqa: E402
from engine.sieving.forgetting import ForgettingTracker  # noqa: E402
from engine.training.trainer import Trainer  # noqa: E402

RATIOS = (0.0, 0.10, 0.15, 0.20, 0.25)
PAPER_A12 = {0.10: 9.14, 0.15: 14.38, 0.20: 19.09, 0.25: 24.39}


def _overrides(a) -> dict:
    from engine.config import parse_override
    return dict(parse_override(t) for t in getattr(a, "overrides", []))


def make_cfg(a, ratio: float) -> RunConfig:
    return RunConfig().replace(**{
        "name": f"bench-sieve-{ratio:g}", "seed": 0, "device": a.device, "epochs": a.epochs,
        "interval": a.epochs,           # no sieve update inside the run: a fixed active set
        "batch_size": a.batch_size, "model.name": a.model, "model.width": a.width,
        "data.image_size": a.image_size, "data.train_size": a.train_size, "data.test_size": 32,
        "data.num_classes": 10, "sparsity.target": 0.0, "checkpoint.every": 0,
        "sieve.ratio": ratio, **_overrides(a)})


class Timed:
    """One configuration's trainer, stepped an epoch at a time, with per-epoch timings."""

    def __init__(self, a, ratio: float, tracking: bool | None, tmp: Path):
        cfg = make_cfg(a, ratio)
        d = run_dir_mod.create(cfg, tmp)
        self.emitter = Emitter(d, stream=io.StringIO())
        self.trainer = tr = Trainer(cfg, d, self.emitter)
        if tracking is not None:
            tr.sieve._needs_tracking = lambda epoch: tracking
        # CPU time from the epoch's first batch to its evaluation: on a machine shared with
        # other jobs wall time mostly measures the neighbours; with one torch thread all of
        # the training runs on this thread, so its CPU time is the work done.
        self.cpu: list[float] = []
        self.wall: list[float] = []
        epoch_indices, evaluate, emit = tr.sieve.epoch_indices, tr.evaluate, tr.emit
        marks = {}

        def mark_start(epoch):
            idx = epoch_indices(epoch)
            marks["t0"] = time.thread_time()
            return idx

        def mark_end(*args, **kw):
            self.cpu.append(time.thread_time() - marks.pop("t0"))
            return evaluate(*args, **kw)

        def capture(name, **fields):
            if name == "epoch_end":
                self.wall.append(fields["epoch_time"])
                self.active = fields["active_samples"]
            return emit(name, **fields)
        tr.sieve.epoch_indices, tr.evaluate, tr.emit = mark_start, mark_end, capture
        for c in tr.components:          # what Trainer.fit does before its first epoch
            c.on_run_start(tr)

    def epoch(self, e: int) -> None:
        tr = self.trainer
        tr.epoch, tr.batch = e, 0         # as Trainer.fit positions each epoch
        tr._train_epoch(e)


def interleaved(a, variants, tmp: Path) -> dict:
    """Every variant trains epoch e before any trains e + 1 (order reversed every round), so a
    neighbour's load hits all variants alike. CPU time: the least disturbed epoch after the
    first (other jobs only ever add to it); wall time: the median over the rounds after the
    first of each variant's time relative to the first variant's in the same round."""
    runs = {v: Timed(a, *v, tmp) for v in variants}
    for e in range(a.epochs):
        for v in (variants if e % 2 == 0 else variants[::-1]):
            runs[v].epoch(e)
    for r in runs.values():
        r.emitter.close()
    ref = runs[variants[0]]
    out = {}
    for v, r in runs.items():
        rel_w = [w / w0 for w, w0 in zip(r.wall[1:], ref.wall[1:])]
        out[v] = {"cpu": min(r.cpu[1:]), "wall": statistics.median(r.wall[1:]),
                  "rel_cpu": min(r.cpu[1:]) / min(ref.cpu[1:]), "rel_wall": statistics.median(rel_w),
                  "active": r.active}
    return out


def tracker_update_seconds(a, device: torch.device) -> float:
    n = a.train_size
    t = ForgettingTracker(n, device)
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randperm(n, generator=g)[:a.batch_size].to(device),
                (torch.rand(a.batch_size, generator=g) < 0.7).to(device)) for _ in range(64)]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for idx, c in batches:
        t.update(idx, c)
    sync()
    clock = time.perf_counter if device.type == "cuda" else time.thread_time
    reps = 20
    t0 = clock()
    for _ in range(reps):
        for idx, c in batches:
            t.update(idx, c)
    sync()
    return (clock() - t0) / (reps * len(batches))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        import psutil
        cores = f"{psutil.cpu_count(logical=False)} cores / {psutil.cpu_count()} threads"
    except Exception:  # noqa: BLE001
        cores = ""
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    try:
        import os
        load = f", load average {os.getloadavg()[0]:.1f} (other jobs share the machine)"
    except (AttributeError, OSError):
        load = ""
    return f"{platform.system()} {cpu} {cores}{gpu}, torch {torch.__version__}{load}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--image-size", type=int, default=16)
    ap.add_argument("--train-size", type=int, default=1024)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1,
                    help="CPU threads (1 gives steadier timings on a shared machine)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="extra config fields for every run, e.g. precision=bf16 channels_last=true")
    ap.add_argument("--append", action="store_true", help="append the figures to docs/benchmarks.md")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    t_start = time.monotonic()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        res = interleaved(a, [(r, None) for r in RATIOS], tmp)
        track = interleaved(a, [(0.2, False), (0.2, True)], tmp)
    dev = torch.device(a.device)
    per_update = tracker_update_seconds(a, dev)

    n = a.train_size
    lines = [
        "| removal | active samples | batches | epoch CPU time (s) | time saved | FLOPs saved "
        "| realised/expected | wall epoch time (s) | wall time saved | paper (Table A12) |",
        "|---|---|---|---|---|---|---|---|---|---|"]
    for r in RATIOS:
        m = res[(r, None)]
        batches = -(-m["active"] // a.batch_size)
        if r == 0:
            lines.append(f"| baseline | {m['active']} | {batches} | {m['cpu']:.3f} | - | - | - | "
                         f"{m['wall']:.3f} | - | 46.94 s/epoch |")
            continue
        saved_c, saved_w = 1 - m["rel_cpu"], 1 - m["rel_wall"]
        saved_f = (n - m["active"]) / n      # training FLOPs scale with the samples trained on
        lines.append(f"| {r:.0%} | {m['active']} | {batches} | {m['cpu']:.3f} | {saved_c:.2%} | {saved_f:.2%} | "
                     f"{saved_c / saved_f:.2f} | {m['wall']:.3f} | {saved_w:.2%} | {PAPER_A12[r]:.2f}% faster |")
    on, off = track[(0.2, True)], track[(0.2, False)]
    batches = -(-on["active"] // a.batch_size)
    direct = per_update * batches / off["cpu"]
    lines += [
        "",
        f"Forgetting tracking (20% removed, {on['active']} active samples, {batches} batches/epoch): "
        f"epoch CPU time tracking on {on['cpu']:.3f} s, off {off['cpu']:.3f} s; paired A/B overhead "
        f"{on['rel_cpu'] - 1:+.2%} CPU time ({on['rel_wall'] - 1:+.2%} wall); "
        f"one `update` call {per_update * 1e6:.1f} us x {batches} batches = {direct:.2%} of the epoch "
        f"(goal <= 1%).",
    ]
    setting = (f"{a.model} width {a.width}, synthetic {a.train_size} samples at {a.image_size}px, "
               f"batch {a.batch_size}, {a.epochs} epochs per configuration, interleaved epoch by epoch "
               f"(CPU time: fastest of epochs 2..{a.epochs}; wall: median over epochs 2..{a.epochs} of the time "
               f"relative to the baseline's same epoch), device {a.device}, {a.threads} CPU thread(s), "
               "dense (no sparsity), real trainer")
    text = "\n".join(lines)
    wall = time.monotonic() - t_start
    print(f"{setting}\nmachine: {machine()}\n\n{text}\n\n(benchmark wall time {wall:.0f} s)")
    if a.append:
        doc = ROOT / "docs" / "benchmarks.md"
        head = "" if doc.exists() else "# Benchmarks\n\nEach section is appended by its benchmark script.\n"
        with doc.open("a", encoding="utf-8") as fh:
            fh.write(f"{head}\n## Data sieving (benchmarks/bench_sieving.py)\n\n"
                     f"{time.strftime('%Y-%m-%d', time.gmtime())}; {setting}.\n"
                     f"Machine: {machine()}.\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
