"""The Section 3 analyses (engine.analysis): linear CKA and structural similarity against
hand-made inputs, the adaptive freezing rule, the probe set across a resume, and the
analysis cost in plan and ledger."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from helpers import StopAfter

from engine import config as C
from engine.analysis import adaptive, metrics, schedule
from engine.cost.projection import project

TINY = {
    "name": "an", "seed": 5, "device": "cpu", "epochs": 4, "batch_size": 32, "interval": 1,
    "model": {"name": "resnet20", "width": 0.25},
    "data": {"name": "synthetic", "image_size": 12, "train_size": 192, "test_size": 32,
             "num_classes": 4, "label_noise": 0.05, "augment": False},
    "sparsity": {"target": 0.8},
    "freeze": {"target": 0.1},
    "checkpoint": {"every": 0},
    "analysis": {"enabled": True, "probe_size": 48},
}


# ----------------------------------------------------------------------------- CKA

def _direct_cka(x: np.ndarray, y: np.ndarray) -> float:
    """||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F) in float64 numpy: the feature form."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    return float(np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc)))


def test_cka_equals_the_direct_formula_on_hand_made_features():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 7))
    y = np.tanh(x @ rng.normal(size=(7, 5))) + 0.3 * rng.normal(size=(20, 5))
    got = metrics.linear_cka(torch.from_numpy(x), torch.from_numpy(y))
    assert got == pytest.approx(_direct_cka(x, y), rel=1e-12)
    # a tiny case by hand: x = (0, 1, 2), y = (0, 1, 4): centred 1-d features, CKA = cos^2
    a, b = np.array([[-1.0], [0.0], [1.0]]), np.array([[-5 / 3], [-2 / 3], [7 / 3]])
    cos2 = (a.ravel() @ b.ravel()) ** 2 / ((a.ravel() @ a.ravel()) * (b.ravel() @ b.ravel()))
    f64 = torch.float64
    assert metrics.linear_cka(torch.tensor([[0.0], [1.0], [2.0]], dtype=f64), torch.tensor([[0.0], [1.0], [4.0]], dtype=f64)) \
        == pytest.approx(cos2, rel=1e-12)
    assert 0 < cos2 < 1
    # float32 block outputs (the engine's case): the Gram product in float32, the rest in float64
    assert metrics.linear_cka(torch.from_numpy(x).float(), torch.from_numpy(y).float()) == \
        pytest.approx(_direct_cka(x, y), rel=1e-5)


def test_cka_is_one_for_identical_features_and_invariant_to_rotation_and_scale():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(32, 3, 4, 4, generator=g, dtype=torch.float64)   # a block output: 48 features
    y = torch.randn(32, 10, generator=g, dtype=torch.float64) + x.flatten(1)[:, :10]
    assert metrics.linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    q, _ = torch.linalg.qr(torch.randn(48, 48, generator=g, dtype=torch.float64))
    rotated = x.flatten(1) @ q
    base = metrics.linear_cka(x, y)
    assert 0.05 < base < 0.99
    assert metrics.linear_cka(rotated, y) == pytest.approx(base, rel=1e-9)
    assert metrics.linear_cka(7.5 * x, y) == pytest.approx(base, rel=1e-9)
    assert metrics.linear_cka(x + 100.0, y) == pytest.approx(base, rel=1e-9)   # centring
    with pytest.raises(ValueError, match="same number of samples"):
        metrics.linear_cka(x, y[:5])


# ----------------------------------------------------------------------------- similarity

def test_top_half_takes_the_largest_kept_weights():
    w = torch.tensor([[0.5, -3.0, 0.0, 2.0], [1.0, -0.1, 4.0, 0.0]])
    mask = torch.tensor([[1, 1, 0, 1], [1, 1, 1, 0]], dtype=torch.bool)
    # kept non-zero: 0.5, -3, 2, 1, -0.1, 4 (6 weights): top 3 by magnitude = 4, -3, 2
    assert metrics.top_half(w, mask).tolist() == [[False, True, False, True], [False, False, True, False]]
    # an odd count rounds up; a masked-out weight never counts even if large
    mask2 = mask.clone()
    mask2[1, 2] = False
    assert metrics.top_half(w, mask2).tolist() == [[False, True, False, True], [True, False, False, False]]
    assert not metrics.top_half(torch.zeros(3, 3)).any()


def test_structural_similarity_on_hand_made_masks():
    a = torch.tensor([1, 1, 0, 0, 1, 0, 1, 0], dtype=torch.bool)
    b = torch.tensor([1, 0, 0, 1, 1, 0, 0, 1], dtype=torch.bool)
    assert metrics.overlap(a, b) == pytest.approx(2 / 4)
    assert metrics.overlap(a, a) == 1.0
    assert metrics.overlap(a, ~a) == 0.0
    assert metrics.overlap(a, torch.zeros(8, dtype=torch.bool)) is None
    # weights whose top half moves by one position out of three
    w1 = torch.tensor([9.0, 8.0, 7.0, 1.0, 1.0, 1.0])
    w2 = torch.tensor([9.0, 8.0, 1.0, 7.5, 1.0, 1.0])
    assert metrics.overlap(metrics.top_half(w1), metrics.top_half(w2)) == pytest.approx(2 / 3)
    for n in (1, 7, 8, 13):
        bits = torch.rand(n, generator=torch.Generator().manual_seed(n)) < 0.5
        assert torch.equal(metrics.unpack(metrics.pack(bits), n), bits)


# ----------------------------------------------------------------------------- adaptive rule

def test_adaptive_rule_needs_both_measures_for_patience_measurements():
    assert adaptive.stable([None, 0.99, 0.98], [None, 0.95, 0.97], 0.97, 0.9, 2)
    assert not adaptive.stable([None, 0.99, 0.96], [None, 0.95, 0.97], 0.97, 0.9, 2)   # CKA dipped
    assert not adaptive.stable([None, 0.99, 0.98], [None, 0.85, 0.97], 0.97, 0.9, 2)   # mask moved
    assert not adaptive.stable([None, 0.99], [None, 0.95], 0.97, 0.9, 2)               # too few
    assert adaptive.stable([None, 0.99, 0.99], [None, None, None], 0.97, 0.9, 2)       # no sparse layer
    hist = {0: [None, 0.99, 0.99], 1: [None, 0.99, 0.99]}
    sims = {0: [None, 1.0, 1.0], 1: [None, 1.0, 1.0]}
    assert adaptive.next_prefix(0, 2, hist, sims, 0.97, 0.9, 2) == 1   # one block per measurement
    assert adaptive.next_prefix(2, 2, hist, sims, 0.97, 0.9, 2) == 2   # never past the freezable blocks
    # measurements at the end of epochs 1, 3, 5, 7, 9 (T=10): block k frozen from after measurement 2+k
    assert adaptive.earliest_prefix(10, [1, 3, 5, 7, 9], 3, 2) == [0, 0, 0, 0, 0, 0, 1, 1, 2, 2]
    # two anneal epochs before each freeze: block 0 found stable after epoch 5 freezes at 8
    assert adaptive.earliest_prefix(10, [1, 3, 5, 7, 9], 3, 2, anneal=2) == [0] * 8 + [1, 1]


def test_plan_reports_the_range_of_adaptive_savings():
    cfg = C.from_dict({**TINY, "epochs": 12, "interval": 2,
                       "freeze": {"target": 0.05, "scheme": "adaptive", "adaptive": {"patience": 1}}})
    fp = project(cfg)["freeze_plan"]
    single = project(cfg.replace(**{"freeze.scheme": "single_shot"}))["freeze_plan"]
    a = fp["adaptive"]
    assert fp["frozen_prefix"] == single["frozen_prefix"]          # the deadline is the single-shot plan
    assert a["min_saving"] == pytest.approx(single["achieved"]) and a["min_saving"] >= 0.05 * (1 - 1e-9)
    assert a["max_saving"] > a["min_saving"]
    assert max(a["earliest_prefix"]) <= fp["freezable_blocks"]
    with pytest.raises(C.ConfigError, match="analysis.enabled"):
        C.from_dict({**TINY, "freeze": {"target": 0.1, "scheme": "adaptive"}, "analysis": {"enabled": False}})
    with pytest.raises(C.ConfigError, match="freeze.adaptive.cka"):
        C.from_dict({**TINY, "freeze": {"target": 0.1, "adaptive": {"cka": 1.5}}})


# ----------------------------------------------------------------------------- cost in the plan

def test_plan_counts_the_probe_forwards_as_analysis_overhead():
    from engine.cost import costmodel
    from engine.cost.arch import describe
    cfg = C.from_dict({**TINY, "epochs": 5, "interval": 2, "freeze": {"target": 0.05}})
    plan = project(cfg)
    assert schedule.measure_epochs(cfg) == [1, 3, 4]              # every interval, and the last epoch
    arch = describe(cfg.model, 4, 12)
    per_epoch = [r["flops"].get("overhead", {}).get("analysis", 0.0) for r in plan["epochs"]]
    for e, _row in enumerate(plan["epochs"]):
        # at the epoch's planned densities: recompute them from the plan's own density row
        assert (per_epoch[e] > 0) == (e in (1, 3, 4))
    assert plan["flops"]["overhead"]["analysis"] == pytest.approx(sum(per_epoch))
    assert per_epoch[1] <= 48 * costmodel.forward_flops(arch) and per_epoch[1] > 0.05 * 48 * costmodel.forward_flops(arch)
    off = project(cfg.replace(**{"analysis.enabled": False}))
    assert not any(off["flops"]["overhead"].values())
    assert plan["flops"]["spent"] - off["flops"]["spent"] == pytest.approx(plan["flops"]["overhead"]["analysis"])
    assert plan["flops"]["saved"] == off["flops"]["saved"] and plan["flops"]["dense"] == off["flops"]["dense"]


# ----------------------------------------------------------------------------- in the engine



def _trainer(tmp_path, name, cfg, commands=None):
    from engine.run.telemetry import Emitter
    from engine.training.trainer import Trainer
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    out = io.StringIO()
    return Trainer(cfg, d, Emitter(d, stream=out, progress_bar=False), commands), out


def _events(out) -> list[dict]:
    return [json.loads(l) for l in out.getvalue().splitlines()]


@pytest.mark.slow
def test_probe_set_and_measurements_survive_a_resume_and_the_ledger_counts_them(tmp_path):
    cfg = C.from_dict(TINY)
    ref, ref_out = _trainer(tmp_path, "ref", cfg)
    assert ref.fit() == "completed"
    probe = ref.analysis.probe.clone()
    assert len(probe) == 48 and len(set(probe.tolist())) == 48 and int(probe.max()) < 192
    # 6 batches an epoch: stop in epoch 2, after measurements at epochs 0 and 1
    stopped, _ = _trainer(tmp_path, "stop", cfg, StopAfter(6 + 1 + 6 + 1 + 3 + 1))
    assert stopped.fit() == "stopped"
    resumed, out = _trainer(tmp_path, "stop", cfg)
    resumed.load_checkpoint()
    assert torch.equal(resumed.analysis.probe, probe)              # restored and identical
    assert resumed.fit() == "completed"
    assert torch.equal(resumed.analysis.probe, probe)

    ref_an = {e["epoch"]: e for e in _events(ref_out) if e["event"] == "analysis"}
    res_an = {e["epoch"]: e for e in _events(out) if e["event"] == "analysis"}
    assert sorted(ref_an) == [0, 1, 2, 3] and sorted(res_an) == [2, 3]
    for e in (2, 3):
        for key in ("cka", "mask_similarity", "grad_norm"):
            a, b = res_an[e][key], ref_an[e][key]
            assert a.keys() == b.keys() and all((a[k] is None) == (b[k] is None) for k in a), (e, key)
            assert {k: v for k, v in a.items() if v is not None} == \
                pytest.approx({k: v for k, v in b.items() if v is not None}, rel=1e-4, abs=1e-6), (e, key)
        assert res_an[e]["flops"] == ref_an[e]["flops"]
    assert ref_an[0]["cka"]["head"] is None and ref_an[1]["cka"]["head"] is not None
    assert ref_an[3]["measure_epochs"] == [0, 1, 2, 3]
    final = ref_an[3]["similarity_to_final"]
    assert final and all(v[-1] == 1.0 for v in final.values())
    frozen = [e for e in _events(ref_out) if e["event"] == "freeze"]
    assert frozen and all(ref_an[f["epoch"]]["grad_norm"][f["block"]] is None for f in frozen)

    # the ledger counted exactly the probe forwards, and the plan projected the same
    fin = [e for e in _events(out) if e["event"] == "run_finished"][0]["flops"]
    counted = sum(a["flops"] for a in ref_an.values())
    assert fin["overhead"]["analysis"] == pytest.approx(counted, rel=1e-12)
    assert project(cfg)["flops"]["overhead"]["analysis"] == pytest.approx(counted, rel=0.005)


@pytest.mark.slow
def test_adaptive_freezing_freezes_stable_blocks_early_front_to_back(tmp_path):
    cfg = C.from_dict({**TINY, "epochs": 5, "freeze": {"target": 0.05, "scheme": "adaptive",
                                                       "adaptive": {"cka": 0.0, "mask_similarity": 0.0, "patience": 1,
                                                                    "anneal_epochs": 0}}})
    plan = project(cfg)["freeze_plan"]
    tr, out = _trainer(tmp_path, "adaptive", cfg)
    assert tr.fit() == "completed"
    evs = _events(out)
    frozen = [(e["epoch"], e["block_index"], e["reason"]) for e in evs if e["event"] == "freeze"]
    # thresholds 0: every block is stable at its first CKA (measurement 1), one per measurement
    assert frozen[0] == (2, 0, "stable") and [b for _, b, _ in frozen] == list(range(len(frozen)))
    assert len(frozen) <= plan["freezable_blocks"]
    assert any(r == "stable" for *_, r in frozen)
    deadline = plan["frozen_prefix"]
    ends = {e["epoch"]: len(e["frozen_blocks"]) for e in evs if e["event"] == "epoch_end"}
    assert all(ends[e] >= deadline[e] for e in ends)                # never later than the budget's deadline
    fin = [e for e in evs if e["event"] == "run_finished"][0]["flops"]
    assert fin["saved"]["freeze"] > project(cfg)["flops"]["saved"]["freeze"]


@pytest.mark.slow
def test_adaptive_freezing_reaches_each_blocks_end_lr_at_its_actual_freeze_epoch(tmp_path):
    """Each block frozen early by the adaptive rule trains on for anneal_epochs while its LR
    follows a cosine from the LR it had when found stable to end_lr at its freeze epoch
    (computed here from the cosine formula, independently of the engine)."""
    import math
    epochs, anneal = 8, 2
    cfg = C.from_dict({**TINY, "epochs": epochs, "optim": {**TINY.get("optim", {}), "end_lr": 0.001},
                       "freeze": {"target": 0.05, "scheme": "adaptive",
                                  "adaptive": {"cka": 0.0, "mask_similarity": 0.0, "patience": 1,
                                               "anneal_epochs": anneal}}})
    tr, out = _trainer(tmp_path, "anneal", cfg)
    assert tr.fit() == "completed"
    evs = _events(out)
    lrs = {e["epoch"]: e["lrs"] for e in evs if e["event"] == "epoch_end"}
    stable = [(e["epoch"], e["block"]) for e in evs if e["event"] == "freeze" and e["reason"] == "stable"]
    assert stable, "thresholds 0 must freeze some block early"
    end = cfg.optim.end_lr
    for f, block in stable:
        m = f - anneal - 1                       # the epoch after which it was found stable
        lr_m = lrs[m][block]
        for e in range(m + 1, f):
            want = end + 0.5 * (lr_m - end) * (1 + math.cos(math.pi * (e - m) / (f - m)))
            assert lrs[e][block] == pytest.approx(want, rel=1e-9), (block, e)
        # the cosine continued to f would give exactly end_lr there: the block freezes annealed
        assert end + 0.5 * (lr_m - end) * (1 + math.cos(math.pi)) == pytest.approx(end)
        assert lrs[f - 1][block] < lr_m
        # frozen from f on: no epoch_end after f trains it (its LR is no longer used)
        frozen_at = [e for e in evs if e["event"] == "epoch_end" and e["epoch"] >= f]
        assert all(block in e["frozen_blocks"] for e in frozen_at)

    # stopped inside the first anneal (epoch 3; 6 batches an epoch) and resumed: the same LRs
    stopped, _ = _trainer(tmp_path, "stop", cfg, StopAfter(4 * (6 + 1) - 3))
    assert stopped.fit() == "stopped"
    resumed, rout = _trainer(tmp_path, "stop", cfg)
    resumed.load_checkpoint()
    assert resumed.fit() == "completed"
    res = {e["epoch"]: e["lrs"] for e in _events(rout) if e["event"] == "epoch_end"}
    assert min(res) == 3 and all(res[e] == pytest.approx(lrs[e], rel=1e-12) for e in res)
