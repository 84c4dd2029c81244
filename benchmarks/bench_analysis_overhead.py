"""The analyses' cost: training with ``analysis.enabled`` on and off, side by side.

Goal (issue 12): at the default settings (``analysis.every`` = the DST interval,
``analysis.probe_size`` = 512) the analyses cost at most 2% of the training time.

Each setting runs the real Trainer twice per round, analysis off then on (reversed every
other round so drift of a shared machine cancels), and reports

* wall time of the whole run (training, evaluation, analyses), fastest over the rounds,
  and the on/off ratio;
* the analyses' own time, measured inside the run: the probe measurements (the
  ``analysis`` events' ``seconds``) plus the per-step gradient norms (the hook timed on
  the run's own model and gradients, times the steps), as a share of the training time
  (the ``epoch_end`` events' ``epoch_time``; evaluation excluded). This is the figure the
  goal is about: whole-run differences on a loaded machine are noisier than it.

Settings: ``default`` is RunConfig's defaults (ResNet-20 at width 1 on the synthetic set,
5000 samples, interval 5), ``demo`` the demo preset (width 0.5, interval 2). ``--train-size``,
``--epochs`` and ``--every`` shorten the timed runs; the last column then rebuilds the
shipped setting's share from the parts measured in them (training time per sample, one
measurement, the hook per step), since a measurement costs the same whatever the
training set's size.

    .venv/bin/python benchmarks/bench_analysis_overhead.py            # ~4 min on 2 cores
    .venv/bin/python benchmarks/bench_analysis_overhead.py --device cuda --rounds 3
"""
from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from engine.config import RunConfig, load_preset  # noqa: E402
from engine.run import folder as run_dir_mod  # noqa: E402
from engine.run.telemetry import Emitter  # noqa: E402
from engine.training.trainer import Trainer  # noqa: E402


def settings(a) -> dict:
    """name -> (the setting as shipped, the run actually timed: shortened by the flags)."""
    common = {"device": a.device, "checkpoint.every": 0, "freeze.target": 0.0}
    short = {"data.test_size": 200, "epochs": a.epochs}
    if a.width:
        short["model.width"] = a.width
    if a.train_size:
        short["data.train_size"] = a.train_size
    if a.every:
        short["analysis.every"] = a.every
    out = {}
    for name, make in (("default", RunConfig), ("demo", lambda: load_preset("demo"))):
        full = make().replace(**{**common, "name": f"bench-analysis-{name}"})
        timed = {**short, "interval": min(full.interval, a.epochs)}
        out[name] = (lambda full=full, timed=timed: (full, full.replace(**timed)))
    return out


def one_run(cfg: RunConfig, tmp: Path) -> dict:
    d = run_dir_mod.create(cfg, tmp)
    evs: list[tuple[str, dict]] = []

    class Keep(Emitter):
        def emit(self, name, **fields):
            if name in ("epoch_end", "analysis"):
                evs.append((name, fields))
            return super().emit(name, **fields)

    emitter = Keep(d, stream=io.StringIO(), progress_bar=False)
    tr = Trainer(cfg, d, emitter)
    t0 = time.perf_counter()
    try:
        tr.fit()
    finally:
        emitter.close()
    wall = time.perf_counter() - t0
    train = sum(f["epoch_time"] for n, f in evs if n == "epoch_end")
    measure = sum(f.get("seconds", 0.0) for n, f in evs if n == "analysis")
    steps = sum(f.get("steps", 0) for n, f in evs if n == "analysis")
    samples = sum(f["samples"] for n, f in evs if n == "epoch_end")
    return {"wall": wall, "train": train, "measure": measure, "steps": steps, "trainer": tr, "samples": samples,
            "measurements": sum(1 for n, f in evs if n == "analysis" and f["measured"])}


def hook_seconds(tr: Trainer, reps: int = 200) -> float:
    """Seconds per call of the analysis' per-step hook on the run's model, with gradients."""
    import torch.nn.functional as F
    an = tr.analysis
    an.on_epoch_start(tr, 0)
    x = next(iter(tr.data.probe_batches(an.probe, tr.cfg.batch_size)))
    y = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    tr.model.train()
    F.cross_entropy(tr.model(x), y).backward()
    for _ in range(10):
        an.after_backward(tr)
    if x.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        an.after_backward(tr)
    if x.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--width", type=float, default=0.0, help="shorten: model.width (default: the setting's own)")
    ap.add_argument("--epochs", type=int, default=5, help="epochs per run (default: one measurement interval)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", choices=("default", "demo"), default=None)
    ap.add_argument("--train-size", type=int, default=0, help="shorten: training samples of the timed runs")
    ap.add_argument("--every", type=int, default=0, help="shorten: analysis.every of the timed runs")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    t_all = time.monotonic()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in settings(a).items():
            if a.only and name != a.only:
                continue
            full, cfg = make()
            on_cfg = cfg.replace(**{"analysis.enabled": True})
            off_cfg = cfg.replace(**{"analysis.enabled": False})
            res = {"off": [], "on": []}
            for r in range(a.rounds):
                for k in (("off", "on") if r % 2 == 0 else ("on", "off")):
                    res[k].append(one_run(on_cfg if k == "on" else off_cfg, Path(tmp)))
            on = min(res["on"], key=lambda x: x["wall"])
            off = min(res["off"], key=lambda x: x["wall"])
            per_step = hook_seconds(on["trainer"])
            grad = per_step * on["steps"]
            rows.append((name, full, cfg, off, on, grad, per_step))
    load = os.getloadavg()
    if a.device == "cpu" or not torch.cuda.is_available():
        machine = (f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                   f"{torch.get_num_threads()} torch threads")
    else:
        machine = f"GPU {torch.cuda.get_device_name(0)}"
    print(f"Machine: {machine}; torch {torch.__version__}; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} "
          f"(other jobs share the machine); {a.rounds} rounds, fastest run kept.")
    print("")
    print("| setting (timed run) | every / probe | measurements | run wall off (s) | run wall on (s) | on/off | "
          "probe measurements (s) | gradient norms (s, per step) | analyses / training time, timed run | "
          "same, at the shipped setting |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, full, cfg, off, on, grad, per_step in rows:
        every = cfg.analysis.every or cfg.interval
        share = (on["measure"] + grad) / on["train"]
        # The shipped setting's share from the same measured parts: training time per sample
        # and step, one probe measurement, the hook per step (one measurement per `every` epochs).
        per_sample = on["train"] / max(1, on["samples"])
        per_meas = on["measure"] / max(1, on["measurements"])
        n = full.data.train_size * (1 - full.sieve.ratio)
        f_every = full.analysis.every or full.interval
        full_share = (per_meas + f_every * (-(-n // full.batch_size)) * per_step) / (f_every * n * per_sample)
        print(f"| {name} ({cfg.model.name} w{cfg.model.width:g}, {cfg.data.train_size} samples, {cfg.epochs} epochs) "
              f"| {every} / {cfg.analysis.probe_size} | {on['measurements']} | {off['wall']:.2f} | {on['wall']:.2f} "
              f"| {on['wall'] / off['wall']:.3f} | {on['measure']:.3f} | {grad:.3f} ({per_step * 1e6:.0f} us) "
              f"| {100 * share:.2f}% | {100 * full_share:.2f}% ({full.data.train_size} samples, every {f_every}, "
              f"probe {full.analysis.probe_size}, width {cfg.model.width:g}) |")
    print(f"\nBenchmark wall time: {time.monotonic() - t_all:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
