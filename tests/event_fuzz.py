"""Malformed and mutated event lines for the event-fuzz suite and benchmarks/event_fuzz.py."""
from __future__ import annotations

import copy
import json
import random

from engine.run.events import make_event

HOSTILE_LINES = [
    {"event": ["epoch_end"], "time": 1.0},                                  # type is a list
    {"event": "run_started", "model": "resnet"},                             # model a string
    {"event": "epoch_end", "epoch": 0, "flops": "x"},
    {"event": "epoch_end", "epoch": 0, "flops": {"saved": 3}},
    {"event": "epoch_end", "epoch": 0, "memory": [1, 2]},
    {"event": "epoch_end", "epoch": 0, "frozen_blocks": 5},
    {"event": "epoch_end", "epoch": 0, "frozen_blocks": [-1]},
    {"event": "epoch_end", "epoch": 0, "frozen_blocks": [30000000]},
    {"event": "run_started", "freeze_plan": "all"},
    {"event": "run_started", "config": {"model": "resnet", "data": 3}},
    {"event": "run_started", "model": {"blocks": ["b0", 3]}},
    {"event": "epoch_end", "epoch": 1e300},
    {"event": "freeze", "block": {"a": 1}, "epoch": "x"},
    {"event": "analysis", "epoch": 0, "measured": True, "grad_norm": [1]},
    {"event": "run_finished", "flops": {"saved": "x"}, "final": 3},
]
DEEP_LINE = "[" * 100_000 + "]" * 100_000


def real_events() -> list[dict]:
    blocks = [{"name": f"b{i}", "params": 10, "forward_flops": 100, "layers": [f"l{i}"]} for i in range(3)]
    cfg = {"name": "fz", "epochs": 3, "model": {"name": "mlp"}, "data": {"name": "synthetic"},
           "freeze": {"scheme": "fixed"}}
    evs = [make_event("run_started", run_id="r", run_dir="/tmp/r", config=cfg, device="cpu",
                      dataset={"name": "synthetic"}, model={"name": "mlp", "params": 30, "blocks": blocks},
                      freeze_plan={"frozen_prefix": [0, 1, 2], "scheme": "fixed"},
                      projected={"flops": 1.0}, resumed=False, start_epoch=0)]
    for e in range(3):
        fl = {"spent": 10.0 * (e + 1), "dense": 20.0 * (e + 1), "saved": {"sparsity": 1.0, "freeze": 2.0, "sieve": 0.5}}
        evs.append(make_event("epoch_end", epoch=e, epochs=3, train_loss=1.0, train_acc=0.5, test_loss=1.0,
                              test_acc=0.5, lr=0.1, lrs={"b0": 0.1}, epoch_time=1.0, samples=10,
                              samples_total=10 * (e + 1), memory={"kind": "cpu", "peak_bytes": 1, "rss_bytes": 2},
                              flops=fl, flops_epoch=fl, density=0.5, frozen_blocks=list(range(e)),
                              active_samples=10))
        evs.append(make_event("freeze", epoch=e, block=f"b{e}", block_index=e, flops_saved=1.0))
        evs.append(make_event("mask_update", epoch=e, layers=[{"name": "l0", "density": 0.5, "changed": 0.1}],
                              density=0.5))
        evs.append(make_event("sieve_update", epoch=e, active_size=8, removed_size=2, k=2, initial_waiting=0,
                              histogram={"edges": [0, 1, 2], "counts": [3, 4]}, swapped_in=[1], swapped_out=[2]))
        evs.append(make_event("analysis", epoch=e, measured=True, grad_norm={"b0": 1.0, "b1": None},
                              cka={"b0": 0.9}, similarity_to_final={"b0": [0.1, 0.2]}, measure_epochs=[0, 1]))
        evs.append(make_event("checkpoint", epoch=e, batch=0, path="checkpoints/last.pt", reason="periodic", bytes=10))
    evs.append(make_event("run_finished", status="completed", epochs_completed=3, final={"test_acc": 0.5},
                          flops={"spent": 30.0, "dense": 60.0, "saved": {"sparsity": 1.0, "freeze": 2.0, "sieve": 0.5}},
                          wall_time=3.0))
    return evs


_ODD = [None, True, -1, 0, 2**70, 1e308, float("nan"), "", "x" * 300, [], [1, "a", None], {}, {"k": [1]},
        [[[]]], -(10**9), 30000000]


def mutate(ev: dict, rng: random.Random) -> dict:
    """One event with one random field (possibly nested) replaced, removed or added."""
    ev = copy.deepcopy(ev)
    target = ev
    for _ in range(rng.randint(0, 2)):             # walk into a nested dict sometimes
        inner = [k for k, v in target.items() if isinstance(v, dict) and v]
        if not inner:
            break
        target = target[rng.choice(inner)]
    keys = list(target)
    op = rng.random()
    if op < 0.15 and keys:
        del target[rng.choice(keys)]
    elif op < 0.25:
        target[rng.choice(["frozen_blocks", "model", "config", "freeze_plan", "flops", "memory", "blocks"])] = rng.choice(_ODD)
    elif keys:
        target[rng.choice(keys)] = copy.deepcopy(rng.choice(_ODD))
    return ev


def mutated_lines(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    base = real_events()
    return [json.dumps(mutate(rng.choice(base), rng), allow_nan=True) for _ in range(n)]
