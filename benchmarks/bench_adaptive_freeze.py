"""MEST alone, single-shot freezing and adaptive freezing at the same FLOPs target, over seeds.

Every run is the real Trainer on the demo preset's schedule (ResNet-20 at half width, MEST
EM&S at 90% sparsity, ``analysis.enabled`` in all three so they pay the same measurement
cost; sieving off so freezing is the only difference):

* ``mest``: no freezing;
* ``single_shot``: ``freeze.target`` (default 20%) with the paper's single-shot scheme;
* ``adaptive``: the same target as a deadline, blocks freezing earlier once their CKA and
  mask similarity stay above ``freeze.adaptive`` (engine.analysis.adaptive).

Datasets: the demo's synthetic set, and the 8x8 handwritten digits bundled with
scikit-learn (1797 real images, no download: they ship inside the package), written once
to a temporary ImageFolder tree (train/val split 80/20, seeded) and upscaled to 32 px.
Without scikit-learn the digits rows are skipped with a message.

Prints test accuracy (final epoch, mean +- std over seeds), training FLOPs spent (ledger,
analysis overhead included) with the freeze share achieved, and wall time, side by side.

    python benchmarks/bench_adaptive_freeze.py --device cuda             # ~4 min on one GPU
    python benchmarks/bench_adaptive_freeze.py --device cpu --epochs 6 --train-size 512   # smoke test
"""
from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from engine.config import load_preset  # noqa: E402
from engine.run import folder as run_dir_mod  # noqa: E402
from engine.run.telemetry import Emitter  # noqa: E402
from engine.training.trainer import Trainer  # noqa: E402

METHODS = ("mest", "single_shot", "adaptive")


def digits_folder(root: Path, seed: int = 0) -> Path | None:
    """scikit-learn's bundled digits as an ImageFolder tree (train/ and val/), or None."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        print("scikit-learn is not installed: the digits rows are skipped", file=sys.stderr)
        return None
    import numpy as np
    from PIL import Image
    d = load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(d.target))
    n_train = int(0.8 * len(order))
    for split, idx in (("train", order[:n_train]), ("val", order[n_train:])):
        for i in idx:
            folder = root / split / str(int(d.target[i]))
            folder.mkdir(parents=True, exist_ok=True)
            img = (d.images[i] / 16.0 * 255).astype(np.uint8)
            Image.fromarray(img, "L").resize((32, 32), Image.BILINEAR).convert("RGB").save(folder / f"{i}.png")
    return root


def make_cfg(a, method: str, seed: int, dataset: str, digits: Path | None):
    over = {"name": f"adaptive-bench-{dataset}-{method}-{seed}", "seed": seed, "device": a.device,
            "epochs": a.epochs, "checkpoint.every": 0, "sieve.ratio": 0.0, "analysis.enabled": True,
            "freeze.target": 0.0 if method == "mest" else a.target,
            "freeze.scheme": "adaptive" if method == "adaptive" else "single_shot"}
    if a.every:
        over["analysis.every"] = a.every
    if a.probe_size:
        over["analysis.probe_size"] = a.probe_size
    if a.width:
        over["model.width"] = a.width
    if a.image_size:
        over["data.image_size"] = a.image_size
    if dataset == "synthetic":
        over["data.train_size"] = a.train_size
        over["data.test_size"] = a.test_size
    else:
        over.update({"data.name": "imagefolder", "data.root": str(digits), "data.augment": False,
                     "data.workers": a.workers})
    return load_preset("demo").replace(**over)


def one_run(cfg, tmp: Path) -> dict:
    d = run_dir_mod.create(cfg, tmp)
    evs: list[tuple[str, dict]] = []

    class Keep(Emitter):
        def emit(self, name, **fields):
            if name in ("epoch_end", "run_finished", "freeze"):
                evs.append((name, fields))
            return super().emit(name, **fields)

    emitter = Keep(d, stream=io.StringIO(), progress_bar=False)
    t0 = time.perf_counter()
    try:
        Trainer(cfg, d, emitter).fit()
    finally:
        emitter.close()
    wall = time.perf_counter() - t0
    last = [f for n, f in evs if n == "epoch_end"][-1]
    fin = [f for n, f in evs if n == "run_finished"][-1]["flops"]
    train_spent = fin["spent"] - sum(fin.get("overhead", {}).values())
    freezes = [f for n, f in evs if n == "freeze"]
    return {"acc": last["test_acc"], "spent": fin["spent"], "dense": fin["dense"],
            "freeze_share": fin["saved"]["freeze"] / (train_spent + fin["saved"]["freeze"]),
            "wall": wall, "frozen": len(freezes), "early": sum(1 for f in freezes if f.get("reason") == "stable"),
            "first_freeze": min((f["epoch"] for f in freezes), default=None)}


def _ms(xs):
    return (statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--epochs", type=int, default=28, help="the demo preset's 28 by default")
    ap.add_argument("--train-size", type=int, default=5000, help="synthetic training samples")
    ap.add_argument("--target", type=float, default=0.2, help="freeze.target of the freezing runs")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--datasets", default="synthetic,digits")
    ap.add_argument("--test-size", type=int, default=1000, help="synthetic test samples")
    ap.add_argument("--width", type=float, default=0.0, help="model.width (default: the preset's 0.5)")
    ap.add_argument("--image-size", type=int, default=0, help="data.image_size (default: the preset's 32)")
    ap.add_argument("--every", type=int, default=0, help="analysis.every (default: the interval)")
    ap.add_argument("--probe-size", type=int, default=0, help="analysis.probe_size (default 512)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    t_all = time.monotonic()
    results: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        digits = digits_folder(tmp / "digits") if "digits" in a.datasets else None
        for dataset in a.datasets.split(","):
            if dataset == "digits" and digits is None:
                continue
            for seed in range(a.seeds):
                for method in METHODS:   # interleaved, so drift of the machine spreads evenly
                    r = one_run(make_cfg(a, method, seed, dataset, digits), tmp / "runs")
                    results.setdefault((dataset, method), []).append(r)
                    print(f"{dataset} {method} seed {seed}: acc {r['acc']:.4f}, spent {r['spent']:.4g}, "
                          f"freeze share {100 * r['freeze_share']:.1f}%, {r['frozen']} frozen "
                          f"({r['early']} early, first at {r['first_freeze']}), {r['wall']:.1f} s", flush=True)
    dev = a.device if a.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    machine = torch.cuda.get_device_name(0) if dev.startswith("cuda") else \
        f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    load = os.getloadavg()
    print(f"\nMachine: {machine}; torch {torch.__version__}; load average {load[0]:.1f}; demo preset, "
          f"{a.epochs} epochs, width {a.width or 0.5:g}, {a.image_size or 32} px, synthetic {a.train_size} samples, "
          f"freeze target {100 * a.target:g}%, {a.seeds} seeds, sieving off, analyses on "
          f"(every {a.every or 'interval'}, probe {a.probe_size or 512}).\n")
    print("| dataset | method | test accuracy (%) | FLOPs spent (x 1e12) | of MEST alone | freeze share | "
          "blocks frozen (early) | first freeze epoch | wall time (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (dataset, method), rs in results.items():
        acc_m, acc_s = _ms([100 * r["acc"] for r in rs])
        spent = statistics.fmean(r["spent"] for r in rs)
        base = statistics.fmean(r["spent"] for r in results[(dataset, "mest")])
        wall_m, wall_s = _ms([r["wall"] for r in rs])
        firsts = [r["first_freeze"] for r in rs if r["first_freeze"] is not None]
        print(f"| {dataset} | {method} | {acc_m:.2f} ± {acc_s:.2f} | {spent / 1e12:.4f} | {100 * spent / base:.1f}% | "
              f"{100 * statistics.fmean(r['freeze_share'] for r in rs):.1f}% | "
              f"{statistics.fmean(r['frozen'] for r in rs):.1f} ({statistics.fmean(r['early'] for r in rs):.1f}) | "
              f"{', '.join(str(f) for f in firsts) or '-'} | {wall_m:.1f} ± {wall_s:.1f} |")
    print(f"\nBenchmark wall time: {time.monotonic() - t_all:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
