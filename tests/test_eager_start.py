"""A run that does not compile never imports torch._dynamo (engine/training/eager_start.py),
trains exactly as torch's own wrappers would, keeps the optimizer's step hooks, and a
compiling run gets torch's wrappers back. Each case runs in a fresh interpreter: the switch
changes process-wide torch state, and whether Dynamo was imported is a per-process fact."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TRAIN = r"""
import io, json, sys, tempfile
from engine import config as C
from engine.run.telemetry import Emitter
from engine.training.trainer import Trainer
import torch
cfg = C.from_dict({"device": "cpu", "seed": 3, "epochs": 2, "interval": 1, "batch_size": 16, "threads": 1,
                   "model": {"width": 0.25}, "optim": {"momentum": 0.9, "weight_decay": 5e-4},
                   "data": {"image_size": 8, "train_size": 64, "test_size": 32, "num_classes": 4},
                   "sparsity": {"target": 0.5}, "freeze": {"target": 0}, "sieve": {"ratio": 0},
                   "checkpoint": {"every": 0}, "analysis": {"enabled": False}})
with tempfile.TemporaryDirectory() as d:
    t = Trainer(cfg, d, Emitter(d, stream=io.StringIO(), progress_bar=False))
    t.fit()
    weights = [p.detach().double().sum().item() for p in t.model.parameters()]
print(json.dumps({"dynamo": "torch._dynamo" in sys.modules, "weights": weights}))
"""

SWITCH = r"""
import json, torch
from engine.training import eager_start
sgd = torch.optim.SGD
calls = []
opt = sgd([torch.nn.Parameter(torch.ones(3, dtype=torch.float64))], lr=0.1)
as_shipped = sgd.step         # with the hooks layer the first optimizer added
opt.register_step_pre_hook(lambda o, a, k: calls.append(("pre", torch.is_grad_enabled())))
opt.register_step_post_hook(lambda o, a, k: calls.append("post"))
opt.param_groups[0]["params"][0].grad = torch.ones(3, dtype=torch.float64)
out = {"changed": eager_start.configure(False, sgd)}
out["swapped"] = sgd.step is not as_shipped
with torch.enable_grad():
    opt.step()
out["after"] = opt.param_groups[0]["params"][0].detach().tolist()
out["grad_mode_restored"] = torch.is_grad_enabled()
out["calls"] = calls
out["restored"] = eager_start.configure(True, sgd)
out["same_step"] = sgd.step is as_shipped
out["marks_left"] = sum(1 for _ in eager_start._candidates() if "__dynamo_disable" in vars(_)
                        and vars(_)["__dynamo_disable"] is _)
print(json.dumps(out))
"""


def child(code: str, **env) -> dict:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **env})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_an_eager_run_skips_dynamo_and_trains_bit_for_bit_as_torch_ships():
    eager = child(TRAIN)
    shipped = child(TRAIN, SPFDE_EAGER_START="0")
    assert eager["dynamo"] is False
    assert shipped["dynamo"] is True          # the baseline does import it: the check can fail
    assert eager["weights"] == shipped["weights"]


def test_the_switch_keeps_step_hooks_and_grad_mode_and_compile_takes_it_back():
    out = child(SWITCH)
    assert out["changed"] >= 1 and out["swapped"], out
    assert out["after"] == [0.9, 0.9, 0.9]    # lr 0.1, grad 1: the step ran
    # the pre-hook runs outside the grad-mode layer (as shipped); the step ran without grad (an
    # in-place update of a leaf that requires grad raises otherwise)
    assert out["calls"] == [["pre", True], "post"] and out["grad_mode_restored"] is True
    assert out["restored"] >= 1 and out["same_step"] and out["marks_left"] == 0
