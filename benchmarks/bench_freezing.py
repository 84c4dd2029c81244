"""Layer freezing: per-epoch training time and activation memory at 0/10/15/20/25% FLOPs targets.

Prints (and with --append adds to docs/benchmarks.md) a table in the form of the paper's
Table A11: average epoch time over the run, time saved, FLOPs saved by freezing (the plan's
``achieved``), and realised/expected = time saved / FLOPs saved.

Two measurements, both in this one process, on the same model and data:

* trainer: every target runs through the real Trainer (single-shot plan from
  ``engine.cost.projection.project``), in forward then reverse order (ABBA) so slow drift of a shared
  machine cancels; a run's epoch time is the mean of its ``epoch_end.epoch_time`` (training
  only, evaluation excluded) over all epochs after the first (warm-up), as the paper averages
  consecutive epochs. Its saving is the plan's saving over the same epochs.
* steps: the trainer's step (forward, loss, backward, SGD step) timed for every frozen
  prefix the plans use, round-robin over prefixes with many repetitions (median), then
  weighted by each plan's frozen_prefix. Less noisy than whole runs on a shared machine, and
  it isolates what freezing changes.

Memory: the bytes autograd keeps for backward in one training step (saved_tensors_hooks),
at no freezing and at each plan's largest frozen prefix; on CUDA also the peak allocated.

    .venv/bin/python benchmarks/bench_freezing.py              # small CPU setting, < 1 min
    .venv/bin/python benchmarks/bench_freezing.py --device cuda --train-size 20000 --image-size 32 --width 1
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
import torch.nn.functional as F  # noqa: E402

from engine.config import RunConfig  # noqa: E402
from engine.cost.projection import project  # noqa: E402
from engine.models import build_model  # noqa: E402
from engine.run import folder as run_dir_mod  # noqa: E402
from engine.run.telemetry import Emitter  # noqa: E402
from engine.training.trainer import Trainer  # noqa: E402

TARGETS = (0.0, 0.10, 0.15, 0.20, 0.25)
PAPER_A11 = {0.10: 8.93, 0.15: 13.66, 0.20: 18.83, 0.25: 23.67}


def _overrides(a) -> dict:
    from engine.config import parse_override
    return dict(parse_override(t) for t in getattr(a, "overrides", []))


def make_cfg(a, target: float) -> RunConfig:
    return RunConfig().replace(**{
        "name": f"bench-freeze-{target:g}", "seed": 0, "device": a.device, "epochs": a.epochs,
        "interval": a.interval, "batch_size": a.batch_size, "model.name": a.model, "model.width": a.width,
        "data.image_size": a.image_size, "data.train_size": a.train_size, "data.test_size": 32,
        "data.num_classes": 10, "data.augment": False, "sparsity.target": 0.0, "checkpoint.every": 0,
        "freeze.target": target, **_overrides(a)})


def run_epochs(a, target: float, tmp: Path) -> tuple[list[float], list[dict]]:
    """Per-epoch training times and memory records of one run."""
    cfg = make_cfg(a, target)
    d = run_dir_mod.create(cfg, tmp)
    records: list[dict] = []

    class Keep(Emitter):
        def emit(self, name, **fields):
            if name == "epoch_end":
                records.append(fields)
            return super().emit(name, **fields)

    emitter = Keep(d, stream=io.StringIO(), progress_bar=False)
    try:
        Trainer(cfg, d, emitter).fit()
    finally:
        emitter.close()
    return [r["epoch_time"] for r in records], [r["memory"] for r in records]


def step_times(a, prefixes: list[int], reps: int) -> dict[int, float]:
    """Median seconds of one training step per frozen prefix (round-robin over prefixes)."""
    cfg = make_cfg(a, 0.0)
    dev = torch.device(a.device if a.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(0)
    model = build_model(cfg, 10).to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(a.batch_size, 3, a.image_size, a.image_size, device=dev)
    y = torch.randint(0, 10, (a.batch_size,), device=dev)

    def step(k):
        for i, blk in enumerate(model.blocks):
            for p in blk.parameters():
                p.requires_grad_(i >= k)
        model.frozen_prefix = k
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    times: dict[int, list[float]] = {k: [] for k in prefixes}
    for k in prefixes:                      # warm-up
        step(k)
    for r in range(reps):
        order = prefixes if r % 2 == 0 else prefixes[::-1]
        for k in order:
            sync()
            t0 = time.perf_counter()
            step(k)
            sync()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}, model, x, y


def saved_activation_bytes(model, x, y, k: int) -> int:
    """Bytes of the tensors autograd saves for backward in one forward with k blocks frozen."""
    seen: dict[int, int] = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    for i, blk in enumerate(model.blocks):
        for p in blk.parameters():
            p.requires_grad_(i >= k)
    model.frozen_prefix = k
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(model(x), y)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    del loss
    return sum(n for ptr, n in seen.items() if ptr not in params)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--width", type=float, default=0.5)
    ap.add_argument("--image-size", type=int, default=16)
    ap.add_argument("--train-size", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--interval", type=int, default=1)
    ap.add_argument("--reps", type=int, default=20, help="repetitions of each step timing")
    ap.add_argument("--rounds", type=int, default=2, help="whole runs of each target (epoch time = fastest over rounds)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (0: leave as is; 1 suits a small model on a shared CPU)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="extra config fields for every run, e.g. precision=bf16 channels_last=true")
    ap.add_argument("--append", action="store_true", help="append the results to docs/benchmarks.md")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    t_all = time.monotonic()

    plans = {t: project(make_cfg(a, t))["freeze_plan"] for t in TARGETS}
    prefixes = {t: (p["frozen_prefix"] if p else [0] * a.epochs) for t, p in plans.items()}
    achieved = {t: (p["achieved"] if p else 0.0) for t, p in plans.items()}
    # The trainer figure skips epoch 0 (warm-up), so its expected saving is the plan's over
    # the same epochs.
    cfg0 = make_cfg(a, 0.0)
    plan0 = project(cfg0)
    per_epoch_cost = [r["flops"]["spent"] for r in plan0["epochs"]]
    achieved_tail = {t: (sum(p["epoch_saving"][1:]) / sum(per_epoch_cost[1:]) if p else 0.0)
                     for t, p in plans.items()}

    # ---- steps
    used = sorted({k for fp in prefixes.values() for k in fp})
    st, model, x, y = step_times(a, used, a.reps)
    step_epoch = {t: statistics.fmean(st[k] for k in fp) for t, fp in prefixes.items()}
    mem = {t: saved_activation_bytes(model, x, y, max(fp)) for t, fp in prefixes.items()}

    # ---- trainer: whole runs, in ABBA... order over --rounds; each epoch's time is the
    # fastest over the rounds (interference on a shared or virtual CPU only slows an epoch
    # down), then averaged over the epochs after the first.
    runs: dict[float, list[list[float]]] = {t: [] for t in TARGETS}
    cuda_peak: dict[float, list[int]] = {t: [] for t in TARGETS}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            for t in (TARGETS if r % 2 == 0 else TARGETS[::-1]):
                times, mems = run_epochs(a, t, Path(tmp))
                runs[t].append(times)
                if mems and mems[-1].get("kind") == "cuda":
                    cuda_peak[t].append(mems[-1]["peak_bytes"])
    run_epoch = {t: statistics.fmean(min(ep) for ep in list(zip(*v))[1:]) for t, v in runs.items()}

    dev = a.device
    if dev in ("cpu", "auto") and not torch.cuda.is_available():
        machine = f"CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"
    else:
        machine = f"GPU: {torch.cuda.get_device_name(0)}"
    setting = (f"{a.model} width {a.width:g}, {a.image_size}px, {a.train_size} samples, batch {a.batch_size}, "
               f"{a.epochs} epochs, interval {a.interval}, dense, no augmentation, {a.rounds} rounds; {machine}; "
               f"torch {torch.__version__}")
    lines = [f"Setting: {setting}.", "",
             "| FLOPs target | plan start epoch | FLOPs saved (run) | epoch time, trainer (s) | time saved, trainer | "
             "realised/expected, trainer | time saved, steps | realised/expected, steps | saved activations at max prefix | "
             "paper time saved |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    base_run, base_step, base_mem = run_epoch[0.0], step_epoch[0.0], mem[0.0]
    for t in TARGETS:
        p = plans[t]
        rs = 1 - run_epoch[t] / base_run
        ss = 1 - step_epoch[t] / base_step
        exp_run, exp_step = achieved_tail[t], achieved[t]
        lines.append(
            f"| {100 * t:g}% | {p['start_epoch'] if p else '-'} | {100 * achieved[t]:.2f}% | {run_epoch[t]:.3f} | "
            f"{100 * rs:.2f}% | {rs / exp_run if exp_run else float('nan'):.2f} | {100 * ss:.2f}% | "
            f"{ss / exp_step if exp_step else float('nan'):.2f} | {mem[t] / 2**20:.2f} MiB "
            f"({100 * (1 - mem[t] / base_mem):.0f}% less) | {PAPER_A11.get(t, '-')}{'%' if t in PAPER_A11 else ''} |")
    lines += ["", "Step timings (median s per training step) by frozen prefix: "
              + ", ".join(f"{k}: {st[k] * 1e3:.2f} ms" for k in used) + "."]
    if any(cuda_peak.values()):
        lines.append("CUDA peak allocated (last epoch): " + ", ".join(
            f"{100 * t:g}%: {statistics.median(v) / 2**20:.1f} MiB" for t, v in cuda_peak.items() if v) + ".")
    lines.append(f"Benchmark wall time: {time.monotonic() - t_all:.0f} s.")
    text = "\n".join(lines)
    print(text)
    if a.append:
        doc = ROOT / "docs" / "benchmarks.md"
        head = "" if doc.exists() else "# Benchmarks\n"
        with open(doc, "a", encoding="utf-8") as fh:
            fh.write(f"{head}\n## Layer freezing (benchmarks/bench_freezing.py)\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
