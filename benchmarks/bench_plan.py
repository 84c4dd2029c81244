"""The planner's cost: ``engine.cost.projection.project`` on the CIFAR-100 presets at 160 epochs and
stretched to 1,000 / 10,000 / 100,000 epochs (goal: under 50 ms for the preset, under 200 ms
at 100,000 epochs), beside the per-epoch reference walk it replaced, so the two are measured
side by side in one run. Pure Python, no torch.

    .venv/bin/python benchmarks/bench_plan.py
"""
from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.config import load_preset  # noqa: E402
from engine.cost import arch as arch_mod  # noqa: E402
from engine.cost import projection as plan_mod  # noqa: E402

CASES = [("cifar100_resnet32x2_spfde", []), ("cifar100_resnet32x2_mest", []),
         ("cifar100_resnet32x2_rigl", ["freeze.target=0.2", "sieve.ratio=0.2"]),
         ("cifar100_resnet32x2_spfde", ["freeze.scheme=periodic"])]
EPOCHS = (160, 1000, 10_000, 100_000)


def timed(fn, reps: int) -> float:
    fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def reference_walk(cfg) -> None:
    """The per-epoch walk the segment pricing replaced (densities and prices every epoch)."""
    p = plan_mod.project(cfg)
    a = arch_mod.describe(cfg.model, 100, 32)
    prefix = p["freeze_plan"]["frozen_prefix"] if p["freeze_plan"] else [0] * cfg.epochs
    dens = plan_mod._with_frozen_masks(cfg, a, plan_mod._scheduled(cfg, a), prefix)
    from engine.cost import costmodel
    for d, k in zip(dens, prefix):
        costmodel.memory(a, d, k, cfg.batch_size)


def main() -> int:
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; load average at start {os.getloadavg()[0]:.2f}")
    print(f"\n{'preset':<28}{'overrides':<34}{'epochs':>8}{'plan ms':>10}{'goal ms':>9}{'ratio':>7}"
          f"{'segments':>10}{'per-epoch ms':>14}")
    ok = True
    for name, over in CASES:
        for epochs in EPOCHS:
            cfg = load_preset(name, over + [f"epochs={epochs}"])
            periodic = "freeze.scheme=periodic" in over
            if periodic and epochs > 10_000:
                continue        # periodic schemes change the prefix every epoch: see docs
            reps = 5 if epochs <= 10_000 else 3
            t = timed(lambda: plan_mod.project(cfg), reps)  # noqa: B023 (called at once)
            goal = 0.05 if epochs == 160 else 0.2 if epochs == 100_000 else None
            ref = timed(lambda: reference_walk(cfg), 1)  # noqa: B023 (called at once) if epochs <= 1000 else float("nan")
            segs = len(plan_mod.project(cfg)["segments"])
            ratio = f"{t / goal:.2f}" if goal else "-"
            if goal and not periodic:
                ok &= t <= goal
            print(f"{name:<28}{' '.join(over) or '-':<34}{epochs:>8}{1e3 * t:>10.1f}"
                  f"{(f'{1e3 * goal:.0f}' if goal else '-'):>9}{ratio:>7}{segs:>10}{1e3 * ref:>14.1f}")
    print(f"\nsingle-shot presets within their goals: {'yes' if ok else 'NO'}; "
          f"load average at end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
