"""Models beyond the built-ins (docs/models.md), side by side in one run:

1. the planner's time for a measured model (ViT-S/16 and ConvNeXt-T at 224 px, 1000
   classes): measuring the cost table (build on the meta device + one counted forward),
   then ``project`` on the registered table, against ``project`` on the analytic ResNet-50;
   and ``spfde-train plan`` as a user runs it (a fresh process: imports included);
2. the FLOPs counter against hand counts: a linear-only and a conv-only toy, ViT-S/16
   (patch embedding + 12 x (12 N D^2 + 2 N^2 D) + classifier MACs), and the built-in
   ResNet-50 measured on its torch model against its analytic description;
3. the engine's overhead on a timm ResNet-18 against a plain PyTorch loop (the runs of
   benchmarks/bench_engine_overhead.py, alternating; goal: the same <= 3% as the built-ins).

    python benchmarks/bench_models.py                       # all three
    python benchmarks/bench_models.py --skip-overhead       # 1 and 2 only (seconds)
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))         # the toy factories (tests/toy_models)

import torch  # noqa: E402

from engine import config as C  # noqa: E402
from engine.cost import arch as arch_mod  # noqa: E402
from engine.cost import measured  # noqa: E402
from engine.cost.projection import project  # noqa: E402
from engine.models import build_network  # noqa: E402
from engine.models.measure import measure, measure_config  # noqa: E402

PLAN = {"epochs": 100, "interval": 5, "batch_size": 256,
        "data": {"name": "synthetic", "image_size": 224, "train_size": 50000, "num_classes": 1000},
        "sparsity": {"target": 0.8}, "freeze": {"target": 0.15}, "sieve": {"ratio": 0.2}}


def _best(fn, n: int = 5) -> float:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return min(out)


def planner_times() -> None:
    print("## 1. planner time (best of 5; 224 px, 1000 classes, 100 epochs, every technique on)\n")
    print("| model | measure cost table (meta build + counted forward) | project() on the table | "
          "`spfde-train plan` (fresh process) |")
    print("|---|---|---|---|")
    r50 = C.from_dict({**PLAN, "model": {"name": "resnet50"}})
    t_r50 = _best(lambda: project(r50))
    rows = [("resnet50 (analytic)", "-", t_r50, r50)]
    for name in ("timm:vit_small_patch16_224", "timm:convnext_tiny"):
        cfg = C.from_dict({**PLAN, "model": {"name": name}})
        measure_config(cfg.model, 1000, 224)                      # warm: timm imported, kernels loaded
        t_measure = _best(lambda cfg=cfg: measure_config(cfg.model, 1000, 224), 3)
        measured.register(cfg.model, 1000, 224, measure_config(cfg.model, 1000, 224))
        t_project = _best(lambda cfg=cfg: project(cfg))
        rows.append((name, f"{t_measure * 1000:,.0f} ms", t_project, cfg))
    for name, t_measure, t_project, cfg in rows:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "c.yaml"
            C.save(cfg, path)
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            t0 = time.perf_counter()
            r = subprocess.run([sys.executable, "-m", "engine", "plan", "--config", str(path)],
                               capture_output=True, text=True, env=env, cwd=ROOT)
            t_cli = time.perf_counter() - t0
            assert r.returncode == 0, r.stderr
        print(f"| {name} | {t_measure} | {t_project * 1000:,.1f} ms | {t_cli:,.2f} s |")
    print()


def _vit_hand(n_tokens: int, dim: int, depth: int, patch: int, classes: int) -> int:
    patch_embed = dim * 3 * patch * patch * (n_tokens - 1)
    block = 12 * n_tokens * dim * dim + 2 * n_tokens * n_tokens * dim   # qkv, proj, mlp (4x) + attention
    return patch_embed + depth * block + dim * classes


def flops_vs_hand() -> None:
    print("## 2. FLOPs counter vs hand count (forward, per image, 2 FLOPs per MAC)\n")
    print("| model | counted | hand count | ratio |")
    print("|---|---|---|---|")
    rows = []
    a = arch_mod.from_table(measure_config(C.ModelConfig("py:toy_models:linear_only", kwargs={"image_size": 8}), 4, 8))
    rows.append(("linear-only toy (192-16-4)", a.forward_flops_dense, 2 * (192 * 16 + 16 * 4)))
    a = arch_mod.from_table(measure_config(C.ModelConfig("py:toy_models:conv_only"), 3, 8))
    rows.append(("conv-only toy (3x3, 3x3/2, 1x1)", a.forward_flops_dense,
                 2 * (4 * 27 * 64 + 5 * 36 * 16 + 3 * 5 * 16)))
    a = arch_mod.from_table(measure_config(C.ModelConfig("timm:vit_small_patch16_224"), 1000, 224))
    rows.append(("ViT-S/16, 224 px", a.forward_flops_dense, 2 * _vit_hand(197, 384, 12, 16, 1000)))
    model = build_network(SimpleNamespace(model=C.ModelConfig("resnet50")), 1000)
    counted = arch_mod.from_table(measure(model, 224, "cpu", "resnet50")).forward_flops_dense
    rows.append(("ResNet-50 measured vs its analytic walk", counted,
                 arch_mod.describe(C.ModelConfig("resnet50"), 1000, 224).forward_flops_dense))
    for name, got, hand in rows:
        print(f"| {name} | {got:,.0f} | {hand:,.0f} | {got / hand:.6f} |")
    print()


def engine_overhead(a) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_engine_overhead as beo
    o = SimpleNamespace(device="cpu", model="timm:resnet18", width=1.0, image_size=a.image_size,
                        train_size=a.train_size, batch_size=a.batch_size, epochs=a.epochs)
    # the same fixed thread count for both loops (the engine's threads: auto would tune it)
    torch.set_num_threads(a.threads)
    cfg = lambda: beo.make_cfg(o, 0.0).replace(threads=str(a.threads))
    runs = {"plain PyTorch loop": lambda: beo.run_plain(cfg()),
            "engine, sparsity 0": lambda: beo.run_engine(cfg())}
    rates: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(a.rounds):
        for name, fn in runs.items():
            rates[name] += fn()[1:]
    print(f"## 3. engine overhead, timm:resnet18, synthetic {a.train_size} images {a.image_size} px, batch "
          f"{a.batch_size}, {a.epochs - 1} timed epochs x {a.rounds} rounds, {torch.get_num_threads()} threads\n")
    print("| run | images/s (median) | min | max | vs plain, median | vs plain, best epoch |")
    print("|---|---|---|---|---|---|")
    base, best = statistics.median(rates["plain PyTorch loop"]), max(rates["plain PyTorch loop"])
    for name, r in rates.items():
        med = statistics.median(r)
        print(f"| {name} | {med:,.0f} | {min(r):,.0f} | {max(r):,.0f} | {med / base:.3f} "
              f"({(base / med - 1) * 100:+.1f}% time) | {max(r) / best:.3f} ({(best / max(r) - 1) * 100:+.1f}% time) |")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-overhead", action="store_true")
    ap.add_argument("--only-overhead", action="store_true")
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--train-size", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3, help="per run; the first is warm-up")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="CPU threads of both loops")
    a = ap.parse_args()
    print(f"# bench_models: torch {torch.__version__}, {os.cpu_count()} CPUs, load average at start "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    if not a.only_overhead:
        planner_times()
        flops_vs_hand()
    if not a.skip_overhead:
        engine_overhead(a)
    print(f"# load average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
