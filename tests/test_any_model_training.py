"""Any network trains with SpFDE: a tiny timm ResNet, a tiny timm ViT and a factory of the
user's (tests/toy_models) each train 2 epochs on synthetic data with MEST, freezing and
sieving; their blocks freeze front to back, the ledger equals the plan, and a run stopped
mid-epoch and resumed reproduces the uninterrupted one exactly (CPU)."""
from __future__ import annotations

import importlib.util
import io
import json

import pytest
from helpers import StopAfter

from engine import config as C
from engine.cost.projection import project
from engine.run.telemetry import Emitter

# A mark rather than pytest.importorskip: collecting this module must not import timm, which
# takes 3.6 s of CPU in every test worker whether or not it runs these tests.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("timm") is None, reason="timm is not installed")

BASE = {
    "name": "any", "seed": 5, "device": "cpu", "epochs": 2, "batch_size": 16, "interval": 1,
    "data": {"name": "synthetic", "image_size": 16, "train_size": 96, "test_size": 32, "num_classes": 4,
             "augment": True},
    "sparsity": {"target": 0.8, "algorithm": "mest_ems"},
    "freeze": {"target": 0.01},
    "sieve": {"ratio": 0.25},
    "checkpoint": {"every": 1, "keep": 1},
}
MODELS = {
    "timm_resnet": {"name": "timm:test_resnet"},
    "timm_vit": {"name": "timm:test_vit", "kwargs": {"img_size": 16, "patch_size": 4}},
    "factory": {"name": "py:toy_models:small_convnet", "kwargs": {"width": 6}},
}
# epoch_end fields a resumed run must reproduce exactly
SAME = ("train_loss", "train_acc", "test_loss", "test_acc", "density", "lr", "samples", "samples_total",
        "active_samples", "frozen_blocks", "flops", "flops_epoch")


def _cfg(model: str) -> C.RunConfig:
    return C.from_dict({**BASE, "model": MODELS[model]})


def _trainer(cfg, d, commands=None):
    from engine.training.trainer import Trainer
    d.mkdir(exist_ok=True)
    out = io.StringIO()
    return Trainer(cfg, d, Emitter(d, stream=out, progress_bar=False), commands), out


def _events(out) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.parametrize("model", list(MODELS))
def test_any_model_trains_freezes_front_to_back_matches_its_plan_and_resumes_exactly(model, tmp_path):
    cfg = _cfg(model)
    ref, ref_out = _trainer(cfg, tmp_path / "ref")
    assert ref.fit() == "completed"
    evs = _events(ref_out)
    names = ref.model.block_names
    assert len(names) >= 3

    # blocks freeze front to back, as planned
    plan = project(cfg)
    frozen = [(e["epoch"], e["block_index"]) for e in evs if e["event"] == "freeze"]
    assert frozen, "the plan freezes at least the first block within the 2 epochs"
    assert [b for _, b in frozen] == list(range(len(frozen)))
    assert [e["frozen_blocks"] for e in evs if e["event"] == "epoch_end"] == \
        [names[:p] for p in plan["freeze_plan"]["frozen_prefix"]]
    # frozen blocks' parameters get no gradient
    assert all(not p.requires_grad for p in ref.model.blocks[0].parameters())

    # the ledger equals the projection (exact mask counts vs planned densities: within 0.5%)
    counted = next(e for e in evs if e["event"] == "run_finished")["flops"]
    projected = plan["flops"]
    assert counted["dense"] == pytest.approx(projected["dense"], rel=1e-9)
    assert counted["spent"] == pytest.approx(projected["spent"], rel=0.005)
    for source in ("sparsity", "freeze", "sieve"):
        assert counted["saved"][source] == pytest.approx(projected["saved"][source], rel=0.005), source
    assert projected["saved"]["freeze"] > 0 and projected["saved"]["sieve"] > 0

    # stopped after the second batch of epoch 1 (polls: 6 batches + 2 + 1), resumed: identical
    stopped, out = _trainer(cfg, tmp_path / "stop", StopAfter(6 + 2 + 1))
    assert stopped.fit() == "stopped"
    resumed, out2 = _trainer(cfg, tmp_path / "stop")
    resumed.load_checkpoint()
    assert resumed.fit() == "completed"
    ref_ep = {e["epoch"]: e for e in evs if e["event"] == "epoch_end"}
    got = {e["epoch"]: e for e in _events(out2) if e["event"] == "epoch_end"}
    assert set(got) == {1}
    for f in SAME:
        assert got[1][f] == ref_ep[1][f], f
    import torch
    for (k, a), (k2, b) in zip(ref.model.state_dict().items(), resumed.model.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k


def test_a_model_without_declared_blocks_warns_and_trains_on_its_top_level_modules(tmp_path):
    cfg = C.from_dict({**BASE, "model": {"name": "py:toy_models:plain_sequential"}})
    t, out = _trainer(cfg, tmp_path / "r")
    assert t.fit() == "completed"
    evs = _events(out)
    warning = [e for e in evs if e["event"] == "warning"]
    assert warning and warning[0]["source"] == "model"
    assert "top-level modules" in warning[0]["message"] and "model.blocks" in warning[0]["message"]
    assert t.model.block_names == ["0", "2", "6"]
    started = next(e for e in evs if e["event"] == "run_started")
    assert started["model"]["blocks_from"].startswith("top-level modules")
