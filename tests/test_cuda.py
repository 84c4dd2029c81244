"""The CUDA path of the engine (marked ``cuda``; skipped without an NVIDIA GPU). The CPU suite
cannot reach it, so benchmarks/gpu_check.sh runs these on a lent GPU machine:

    PYTHONPATH=. python3 -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from engine.config import from_dict  # noqa: E402

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU (CUDA)")]

ROOT = Path(__file__).resolve().parent.parent
BASE = {"name": "cuda", "seed": 0, "device": "cuda", "epochs": 4, "interval": 1, "batch_size": 64,
        "model": {"name": "resnet20", "width": 0.5},
        "data": {"name": "synthetic", "image_size": 16, "train_size": 512, "test_size": 128, "num_classes": 4},
        "sparsity": {"target": 0.8}, "freeze": {"target": 0.05}, "sieve": {"ratio": 0.2, "update_ratio": 0.5},
        "checkpoint": {"every": 1}}


def _run(tmp_path, **over):
    from engine.run.telemetry import Emitter
    from engine.training.trainer import Trainer
    d = dict(BASE)
    d.update(over)
    cfg = from_dict(d)
    em = Emitter(tmp_path, stream=open(os.devnull, "w"))  # noqa: SIM115 (the test process closes it)
    tr = Trainer(cfg, tmp_path, em)
    status = tr.fit()
    em.close()
    events = [json.loads(l) for l in (tmp_path / "events.jsonl").read_text().splitlines()]
    return tr, status, events


@pytest.mark.parametrize("precision, channels_last", [("fp32", False), ("bf16", True), ("fp16", True)])
def test_trains_on_the_gpu(tmp_path, precision, channels_last):
    tr, status, events = _run(tmp_path, precision=precision, channels_last=channels_last)
    assert status == "completed"
    assert tr.device.type == "cuda" and tr.data.train.ds.images.device.type == "cuda"   # data on the GPU
    ends = [e for e in events if e["event"] == "epoch_end"]
    assert len(ends) == 4 and all(e["train_loss"] is not None and e["train_loss"] < 10 for e in ends)
    assert ends[-1]["memory"]["kind"] == "cuda" and ends[-1]["memory"]["peak_bytes"] > 0
    assert any(e["event"] == "freeze" for e in events) and any(e["event"] == "sieve_update" for e in events)
    conv = next(m for m in tr.model.modules() if isinstance(m, torch.nn.Conv2d))
    if channels_last:
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    if precision == "fp16":
        assert tr.speed.scaler is not None and tr.speed.scaler.get_scale() > 0
    # every sparse layer keeps its mask through autocast and the scaler
    for name, m in tr.sparsifier.masks.items():
        w = dict(tr.model.named_modules())[name].weight
        assert not (w[~m.to(w.device)] != 0).any(), name


def test_autocast_dtype_on_the_gpu(tmp_path):
    from engine.training.precision import Speed
    cfg = from_dict(dict(BASE, precision="bf16", channels_last=True))
    sp = Speed(cfg, torch.device("cuda"))
    conv = sp.prepare(torch.nn.Conv2d(3, 8, 3).cuda())
    with sp.autocast():
        y = conv(sp.inputs(torch.randn(2, 3, 16, 16, device="cuda")))
    assert y.dtype == torch.bfloat16


def test_two_processes_on_the_gpus(tmp_path):
    """torchrun with 2 processes: nccl over 2 GPUs, or gloo on one shared GPU."""
    import yaml
    n = torch.cuda.device_count()
    d = dict(BASE, distributed={"nproc_per_node": 2, "backend": "nccl" if n >= 2 else "gloo"})
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(d))
    env = dict(os.environ, PYTHONPATH=str(ROOT), SPFDE_RANK_DUMP=str(tmp_path / "dump"))
    out = subprocess.run([sys.executable, "-m", "engine", "run", "--config", str(p), "--run-dir", str(tmp_path / "r")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    events = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
    assert next(e for e in events if e["event"] == "run_finished")["status"] == "completed"
    r0 = (tmp_path / "dump" / "rank0.jsonl").read_text()
    assert r0 and r0 == (tmp_path / "dump" / "rank1.jsonl").read_text()


def test_nvml_sees_this_process():
    pytest.importorskip("pynvml")
    from spfde_gui.system.gpu_info import list_gpus
    x = torch.empty(64 * 2**20, dtype=torch.uint8, device="cuda")   # 64 MiB held by this process
    torch.cuda.synchronize()
    gpus, why = list_gpus()
    assert why is None and len(gpus) == torch.cuda.device_count()
    g = gpus[torch.cuda.current_device()]
    assert g.name and g.total_bytes >= g.used_bytes >= 64 * 2**20      # our 64 MiB at least
    assert g.util_percent is None or 0 <= g.util_percent <= 100
    # The process list is best effort: inside a container NVML often lists host pids or none
    # (the nvml part of gpu_check.sh prints what it sees).
    assert all(p.pid > 0 for p in g.processes)
    del x


def test_compile_keeps_masks_and_frozen_prefix(tmp_path):
    # last in the file: compiling takes the longest (gpu_check.sh gives this file a time limit)
    # two epochs, prefix 0 then 1: two compiled graphs (evaluation runs eager)
    tr, status, events = _run(tmp_path, compile=True, epochs=2, freeze={"target": 0.02})
    assert status == "completed"
    assert tr.model.frozen_prefix == 1              # the plan's prefix of the last epoch
    frozen = tr.model.blocks[0]
    assert all(p.grad is None and not p.requires_grad for p in frozen.parameters())
    for name, m in tr.sparsifier.masks.items():
        w = dict(tr.model.named_modules())[name].weight
        assert not (w[~m.to(w.device)] != 0).any(), name
