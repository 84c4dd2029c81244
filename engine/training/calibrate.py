"""``spfde-train plan --calibrate``: a short measurement of this machine's speed for one
configuration (engine.cost.wall_time), when no run of it has recorded one yet.

A few training steps (forward, backward, SGD step) of the configured network on random
data of the configured image size and batch, on the configured device and thread policy,
after warm-up steps; the rate is the dense training FLOPs of a step (a mask computes its
layer densely) over the median step time. Evaluation and data loading are not in it, so
the first run's own recording (at its end) supersedes it.
"""
from __future__ import annotations

import statistics
import time

from engine.cost import costmodel, wall_time
from engine.cost.projection import describe_run

WARMUP_STEPS = 2
TIMED_STEPS = 6


def calibrate(cfg, steps: int = TIMED_STEPS) -> dict:
    """Measure, record and return {flops_per_s, device, step_s, source}."""
    import torch

    from engine.models import build_network
    from engine.training.trainer import resolve_device
    sizes, arch = describe_run(cfg)
    device = resolve_device(cfg.device)
    model = build_network(cfg, sizes["num_classes"]).to(device)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    px = sizes["image_size"]
    x = torch.randn(cfg.batch_size, 3, px, px, generator=g).to(device)
    y = torch.randint(0, sizes["num_classes"], (cfg.batch_size,), generator=g).to(device)
    times = []
    for i in range(WARMUP_STEPS + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= WARMUP_STEPS:
            times.append(time.perf_counter() - t0)
    step = statistics.median(times)
    rate = costmodel.training_flops_per_sample(arch) * cfg.batch_size / step
    source = f"calibration ({steps} steps) on {time.strftime('%Y-%m-%d')}"
    wall_time.record(cfg, device.type, rate, source)
    return {"flops_per_s": rate, "device": device.type, "step_s": step, "source": source}
