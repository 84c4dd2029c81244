"""Dynamic sparse training: exact masks, the MEST schedule, masked gradients/momentum,
ERK, kept-dense layers, freezing and checkpoints. A SimpleNamespace stands in for the trainer."""
import math
from types import SimpleNamespace

import pytest
import torch

from engine.component import LoopState
from engine.config import from_dict
from engine.models import build_model
from engine.sparsity import Sparsifier
from engine.sparsity import masks as M
from engine.sparsity import schedule as S
from engine.training.seeding import gen


def _cfg(**kw):
    d = {"seed": 3, "epochs": 20, "interval": 2, "model": {"name": "resnet20", "width": 0.25},
         "data": {"image_size": 8, "num_classes": 4},
         "optim": {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3}}
    for key, value in kw.items():
        cur = d
        *parts, last = key.split("__")
        for p in parts:
            cur = cur.setdefault(p, {})
        cur[last] = value
    return from_dict(d)


def _trainer(cfg):
    torch.manual_seed(0)
    model = build_model(cfg, 4)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.optim.lr, momentum=cfg.optim.momentum,
                          weight_decay=cfg.optim.weight_decay)
    events = []
    t = SimpleNamespace(cfg=cfg, model=model, optimizer=opt, state=LoopState(), events=events,
                        emit=lambda name, **f: events.append((name, f)))
    sp = Sparsifier(cfg)
    t.sparsifier = sp
    return t, sp


def _steps(t, sp, n=2, check=None):
    x = torch.randn(4, 3, 8, 8)
    y = torch.randint(0, 4, (4,))
    for _ in range(n):
        t.optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(t.model(x), y).backward()
        sp.after_backward(t)
        if check:
            check("grad")
        t.optimizer.step()
        sp.after_step(t)
        if check:
            check("step")


def _expected_counts(cfg, sp, sparsity):
    dens = S.layer_densities(cfg, sp._schedule_layers, sparsity)
    return {n: M.keep_count(sp._numel[n], dens[n]) for n in sp._numel}


def _weights(t):
    return dict(t.model.prunable())


# ------------------------------------------------------------------ masks.py

@pytest.mark.parametrize("density", [0.0, 0.013, 0.1, 0.5, 0.97, 1.0])
def test_prune_and_grow_are_exact(density):
    g = torch.Generator().manual_seed(1)
    w = torch.randn(17, 9, 3, 3, generator=g)
    mask = M.random_mask(w.shape, 0.8, gen(0, "t"))
    assert int(mask.sum()) == M.keep_count(w.numel(), 0.8)
    kept = M.prune(w, mask, min(density, 0.8))
    assert int(kept.sum()) == M.keep_count(w.numel(), min(density, 0.8))
    assert not (kept & ~mask).any(), "prune keeps only positions that were kept"
    # the kept ones are the largest magnitudes among the previously kept positions
    if 0 < int(kept.sum()) < int(mask.sum()):
        assert w.abs()[kept].min() >= w.abs()[mask & ~kept].max()
    grown = M.grow(kept, density, gen(0, "grow", 1, "x"))
    assert int(grown.sum()) == max(M.keep_count(w.numel(), density), int(kept.sum()))
    assert not (kept & ~grown).any(), "grow never removes"


def test_prune_score_uses_gradient():
    w = torch.tensor([1.0, 0.5, 0.2, 0.1])
    g = torch.tensor([0.0, 0.0, 0.0, 10.0])
    mask = torch.ones(4, dtype=torch.bool)
    assert M.prune(w, mask, 0.5).tolist() == [True, True, False, False]
    assert M.prune(w, mask, 0.5, grad=g, score_lambda=1.0).tolist() == [True, False, False, True]


def test_grow_is_keyed_and_uniform_over_zeros():
    mask = torch.zeros(1000, dtype=torch.bool)
    mask[:100] = True
    a = M.grow(mask, 0.3, gen(5, "grow", 10, "l"))
    b = M.grow(mask, 0.3, gen(5, "grow", 10, "l"))
    c = M.grow(mask, 0.3, gen(5, "grow", 15, "l"))
    assert torch.equal(a, b) and not torch.equal(a, c)
    new = a & ~mask
    assert int(new.sum()) == 200
    # spread over the zero positions, not bunched at one end
    assert 50 < int(new[100:550].sum()) < 150


# ------------------------------------------------------------------ schedule and densities

def test_schedule_160_epochs_matches_table_a3():
    cfg = from_dict({"epochs": 160, "interval": 5, "sparsity": {"target": 0.9}})
    assert S.boundaries(cfg) == (90, 120)
    assert S.update_epochs(cfg) == list(range(5, 121, 5))
    for e in range(160):
        expect = 0.85 if e < 90 else 0.875 if e < 120 else 0.9
        assert S.training_sparsity(cfg, e) == pytest.approx(expect), e
    assert S.mask_update(cfg, 5) == pytest.approx((0.9, 0.85))
    assert S.mask_update(cfg, 85) == pytest.approx((0.9, 0.85))
    assert S.mask_update(cfg, 90) == pytest.approx((0.9, 0.875))
    assert S.mask_update(cfg, 115) == pytest.approx((0.9, 0.875))
    assert S.mask_update(cfg, 120) == pytest.approx((0.9, 0.9))
    assert S.mask_update(cfg, 0) is None and S.mask_update(cfg, 7) is None and S.mask_update(cfg, 125) is None


def test_schedule_em_static_dense_and_short_runs():
    em = from_dict({"epochs": 160, "interval": 5, "sparsity": {"algorithm": "mest_em", "target": 0.9}})
    assert S.update_epochs(em) == list(range(5, 120, 5))
    assert S.mask_update(em, 10) == pytest.approx((0.92, 0.9))      # MEST's bounds (test_fidelity.py)
    assert S.mask_update(em, 90) == pytest.approx((0.91, 0.9))
    assert all(S.training_sparsity(em, e) == 0.9 for e in range(160))
    st = from_dict({"epochs": 160, "sparsity": {"algorithm": "static"}})
    assert S.update_epochs(st) == [] and S.training_sparsity(st, 3) == 0.9
    dense = from_dict({"epochs": 160, "sparsity": {"target": 0.0}})
    assert S.update_epochs(dense) == [] and S.training_sparsity(dense, 0) == 0.0
    # search_end = 1 would put the last RM(s) past the end: it is pulled inside the run
    late = from_dict({"epochs": 20, "interval": 5, "sparsity": {"search_end": 1.0, "late_start": 1.0}})
    assert S.boundaries(late) == (15, 15) and S.mask_update(late, 15) == pytest.approx((0.9, 0.9))
    assert S.training_sparsity(late, 19) == 0.9


def _model_layers(cfg):
    m = build_model(cfg, 100)
    tags = m.layer_tags()
    return [(n, tuple(mod.weight.shape), tags[n]) for n, mod in m.prunable()]


@pytest.mark.parametrize("s", [0.5, 0.8, 0.9, 0.98])
def test_erk_densities_average_to_target(s):
    cfg = from_dict({"model": {"name": "resnet32", "width": 2.0},
                     "sparsity": {"distribution": "erk", "target": s, "dense_layers": ["stem"]}})
    layers = _model_layers(cfg)
    dens = S.layer_densities(cfg, layers)
    sparse = [(n, math.prod(sh)) for n, sh, _ in layers if n != "stem.conv"]
    assert dens["stem.conv"] == 1.0
    assert all(0 < dens[n] <= 1.0 for n, _ in sparse)
    kept = sum(dens[n] * k for n, k in sparse) / sum(k for _, k in sparse)
    assert kept == pytest.approx(1 - s, rel=1e-9)
    # ERK favours small layers: the shortcut 1x1 conv is denser than a 3x3 conv of the stage
    assert dens["layer2.0.shortcut.0"] > dens["layer2.1.conv1"]
    if s == 0.5:
        assert any(dens[n] == 1.0 for n, _ in sparse), "s=0.5 makes ERK cap some layer at 1"


def test_uniform_and_erk_with_dense_layers():
    for dist in ("uniform", "erk"):
        cfg = from_dict({"sparsity": {"distribution": dist, "target": 0.9,
                                      "dense_layers": ["stem", "shortcut", "layer1.0.conv2"]}})
        layers = _model_layers(cfg)
        dens = S.layer_densities(cfg, layers)
        dense = {"stem.conv", "layer2.0.shortcut.0", "layer3.0.shortcut.0", "layer1.0.conv2"}
        assert {n for n, d in dens.items() if d == 1.0} == dense
        if dist == "uniform":
            assert all(dens[n] == pytest.approx(0.1) for n in dens if n not in dense)
    bad = from_dict({"sparsity": {"dense_layers": ["stem", "layer9.conv"]}})
    with pytest.raises(ValueError, match=r"layer9\.conv.*layer1\.0\.conv1"):
        S.layer_densities(bad, _model_layers(bad))


def test_dst_schedule_imports_no_torch():
    import subprocess
    import sys
    code = "import sys, engine.sparsity.schedule; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------ the sparsifier

@pytest.mark.parametrize("dist", ["uniform", "erk"])
def test_ems_run_soft_bound_exact_masks_and_zero_pruned(dist):
    cfg = _cfg(epochs=12, sparsity__distribution=dist)
    t, sp = _trainer(cfg)
    sp.on_run_start(t)
    layers = _weights(t)
    updates = S.update_epochs(cfg)
    assert S.boundaries(cfg) == (6, 10)  # 0.5625 * 12 = 6.75 -> 6, 0.75 * 12 = 9 -> 10
    assert updates == [2, 4, 6, 8, 10]

    def check(stage):
        for n, fm in sp._fmask.items():
            w = layers[n].weight
            off = fm == 0
            if stage == "grad":
                assert (w.grad[off] == 0).all(), n
            else:
                assert (w[off] == 0).all(), n

    for epoch in range(cfg.epochs):
        before = sp.masks
        sp.on_epoch_start(t, epoch)
        s_train = S.training_sparsity(cfg, epoch)
        # exact per-layer counts at the training sparsity, and its overall density
        counts = {n: int(m.sum()) for n, m in sp.masks.items()}
        assert counts == _expected_counts(cfg, sp, s_train), epoch
        assert sp.overall_density() == pytest.approx(1 - s_train, abs=2e-3)
        if epoch in updates:
            name, ev = t.events[-1]
            assert name == "mask_update" and ev["epoch"] == epoch
            assert ev["density"] == pytest.approx(sp.overall_density())
            assert {l["name"] for l in ev["layers"]} == set(sp._numel)
            grown = {n: sp.masks[n] & ~before[n] for n in before}
            # regrowth at every update but the last, which only prunes to the target
            assert (sum(int(g.sum()) for g in grown.values()) > 0) == (epoch < 10)
            for n, g in grown.items():
                assert (layers[n].weight[g] == 0).all(), "grown weights start at exactly 0"
                buf = t.optimizer.state[layers[n].weight]["momentum_buffer"]
                assert (buf[g] == 0).all() and (buf[~sp.masks[n]] == 0).all()
            assert any(l["changed"] > 0 for l in ev["layers"])
        _steps(t, sp, 1, check)
    assert len([e for e in t.events if e[0] == "mask_update"]) == len(updates)
    # ends at exactly the target in every sparse layer
    final = _expected_counts(cfg, sp, cfg.sparsity.target)
    for n, fm in sp._fmask.items():
        assert int(fm.sum()) == final[n]
        assert int((layers[n].weight != 0).sum()) <= final[n]
    if dist == "uniform":
        for n in final:
            assert final[n] == round(0.1 * sp._numel[n])
    assert set(sp.densities()) == set(layers) and sp.densities()["stem.conv"] == 1.0


def test_pruned_weights_stay_zero_without_remask():
    # masked gradients + cleared momentum alone keep pruned weights at zero under SGD
    # with momentum and weight decay; the re-mask after the step is only a safety net
    cfg = _cfg()
    t, sp = _trainer(cfg)
    sp.on_run_start(t)
    sp.on_epoch_start(t, 0)
    _steps(t, sp, 2)
    sp.on_epoch_start(t, 1)
    sp.on_epoch_start(t, 2)  # an update: pruning clears the momentum of pruned positions
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 4, (4,))
    for _ in range(3):
        t.optimizer.zero_grad()
        torch.nn.functional.cross_entropy(t.model(x), y).backward()
        sp.after_backward(t)
        t.optimizer.step()  # no after_step
    for n, m in _weights(t).items():
        if n in sp._fmask:
            assert (m.weight[sp._fmask[n] == 0] == 0).all(), n


def test_mest_em_prunes_beyond_and_trains_at_target():
    cfg = _cfg(sparsity__algorithm="mest_em")
    t, sp = _trainer(cfg)
    sp.on_run_start(t)
    target = _expected_counts(cfg, sp, 0.9)
    for epoch in range(cfg.epochs):
        sp.on_epoch_start(t, epoch)
        assert {n: int(m.sum()) for n, m in sp.masks.items()} == target
        _steps(t, sp, 1)
    evs = [f for name, f in t.events if name == "mask_update"]
    assert [f["epoch"] for f in evs] == S.update_epochs(cfg)
    assert all(f["prune_to"] == pytest.approx(S.mask_update(cfg, f["epoch"])[0]) for f in evs)
    assert {round(f["prune_to"], 9) for f in evs} <= {0.92, 0.91}
    assert any(l["changed"] > 0 for l in evs[0]["layers"])


def test_static_mask_never_changes():
    cfg = _cfg(sparsity__algorithm="static")
    t, sp = _trainer(cfg)
    sp.on_run_start(t)
    first = sp.masks
    for epoch in range(6):
        sp.on_epoch_start(t, epoch)
        _steps(t, sp, 1)
    assert not t.events
    assert all(torch.equal(first[n], m) for n, m in sp.masks.items())
    assert sp.overall_density() == pytest.approx(0.1, abs=1e-3)


def test_dense_run_has_no_masks():
    cfg = _cfg(sparsity__target=0.0)
    t, sp = _trainer(cfg)
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    sp.on_run_start(t)
    for epoch in range(3):
        sp.on_epoch_start(t, epoch)
    assert all(torch.equal(before[k], v) for k, v in t.model.state_dict().items())
    assert sp.masks == {} and sp.state_dict() == {} and not sp._active_w
    assert sp.overall_density() == 1.0 and set(sp.densities().values()) == {1.0}
    _steps(t, sp, 1)
    assert not t.events


def _freeze_at(t, k):
    t.model.frozen_prefix = k
    t.state.frozen_prefix = k


def test_frozen_blocks_are_pruned_to_target_then_keep_their_masks():
    # MEST EM&S trains at density 0.15 until the late segment (target 0.1): a block that
    # freezes at the epoch-2 update is pruned to its target count at once (RM(s) early),
    # momentum cleared where it pruned, and its mask then stays through later updates.
    cfg = _cfg()
    t, sp = _trainer(cfg)
    sp.on_run_start(t)
    sp.on_epoch_start(t, 0)
    _steps(t, sp, 2)
    before = sp.masks
    w = _weights(t)
    mags = {n: w[n].weight.detach().abs().clone() for n in before}
    _freeze_at(t, 4)  # stem, layer1.*
    sp.on_epoch_start(t, 2)
    frozen = {n for n in before if sp._block_of[n] < 4}
    target = _expected_counts(cfg, sp, 0.9)
    assert frozen and all(int(before[n].sum()) > target[n] for n in frozen)
    for n in frozen:
        new = sp.masks[n]
        assert int(new.sum()) == target[n] and not (new & ~before[n]).any(), n
        assert mags[n][new].min() >= mags[n][before[n] & ~new].max(), n   # largest |w| kept
        assert not w[n].weight[~new].any()
        buf = t.optimizer.state[w[n].weight]["momentum_buffer"]
        assert not buf[~new].any(), n
    assert any(t.optimizer.state[w[n].weight]["momentum_buffer"][new].any() for n in frozen)
    ev = t.events[-1][1]
    recs = {l["name"]: l for l in ev["layers"]}
    assert {n for n, l in recs.items() if l["frozen"]} == frozen
    assert all(recs[n].get("reason") == "freeze" and recs[n]["changed"] > 0 for n in frozen)
    assert not any(l.get("reason") for n, l in recs.items() if n not in frozen)
    assert not any(sp._block_of[n] < 4 for n in sp._active_names)
    pruned = sp.masks
    _steps(t, sp, 1)  # frozen layers have no grads; the hot path skips them
    sp.on_epoch_start(t, 3)   # no scheduled update, nothing left to prune: no event
    assert len(t.events) == 1
    sp.on_epoch_start(t, 4)   # a later update leaves the frozen masks alone
    assert all(torch.equal(pruned[n], sp.masks[n]) for n in frozen)
    assert not any(l.get("reason") for l in t.events[-1][1]["layers"])
    assert any(not torch.equal(pruned[n], sp.masks[n]) for n in pruned if n not in frozen)


def test_freeze_between_updates_prunes_once_and_resumes_without_pruning_again():
    cfg = _cfg()
    t, sp = _trainer(cfg)
    sp.on_run_start(t)
    for epoch in range(3):
        sp.on_epoch_start(t, epoch)
        _steps(t, sp, 1)
    state, model_state = sp.state_dict(), {k: v.clone() for k, v in t.model.state_dict().items()}
    n_events = len(t.events)
    _freeze_at(t, 4)
    sp.on_epoch_start(t, 3)   # epoch 3 has no scheduled update: a freeze-only mask_update
    ev = t.events[-1][1]
    assert len(t.events) == n_events + 1 and ev["reason"] == "freeze" and ev["prune_to"] == 0.9
    frozen = {n for n in sp.masks if sp._block_of[n] < 4}
    assert {l["name"] for l in ev["layers"]} == frozen
    target = _expected_counts(cfg, sp, 0.9)
    assert all(int(sp.masks[n].sum()) == target[n] for n in frozen)
    assert all(int(sp.masks[n].sum()) > target[n] for n in sp.masks if n not in frozen)
    sp.on_epoch_start(t, 3)   # the same epoch again (resume inside it): nothing pruned twice
    assert len(t.events) == n_events + 1
    # a run resumed from the checkpoint before epoch 3 makes exactly the same prune
    t2, sp2 = _trainer(cfg)
    t2.model.load_state_dict(model_state)
    sp2.load_state_dict(state)
    sp2.on_run_start(t2)
    _freeze_at(t2, 4)
    sp2.on_epoch_start(t2, 3)
    assert all(torch.equal(sp.masks[n], sp2.masks[n]) for n in sp.masks)
    assert [l["changed"] for l in t2.events[-1][1]["layers"]] == [l["changed"] for l in ev["layers"]]
    # mid-epoch resume: the checkpoint holds the pruned masks, on_epoch_start prunes nothing
    t3, sp3 = _trainer(cfg)
    t3.model.load_state_dict(t.model.state_dict())
    sp3.load_state_dict(sp.state_dict())
    sp3.on_run_start(t3)
    _freeze_at(t3, 4)
    sp3.on_epoch_start(t3, 3)
    assert not t3.events and all(torch.equal(sp.masks[n], sp3.masks[n]) for n in sp.masks)


def test_checkpoint_roundtrip_and_midepoch_resume():
    cfg = _cfg(sparsity__score_lambda=0.5)
    t, sp = _trainer(cfg)
    sp.on_run_start(t)
    for epoch in range(3):
        sp.on_epoch_start(t, epoch)
        _steps(t, sp, 1)
    state = sp.state_dict()
    assert all(m.dtype == torch.bool for m in state["masks"].values())
    assert state["last_update"] == 2
    model_state = t.model.state_dict()

    t2, sp2 = _trainer(cfg)
    t2.model.load_state_dict(model_state)
    sp2.load_state_dict(state)  # before on_run_start, as the trainer does on resume
    sp2.on_run_start(t2)
    assert all(torch.equal(sp.masks[n], sp2.masks[n]) for n in sp.masks)
    sp2.on_epoch_start(t2, 2)  # resumed inside epoch 2: the update is not applied again
    assert not t2.events
    assert all(torch.equal(sp.masks[n], sp2.masks[n]) for n in sp.masks)
    # the gradient kept for the next update's score (lambda > 0) survives the checkpoint
    sp.on_epoch_start(t, 3)
    _steps(t, sp, 1)
    assert set(sp.state_dict()["grads"]) == set(sp.masks)
    # both runs make the same (keyed) decisions at the next update
    sp2.load_state_dict(sp.state_dict())
    t2.model.load_state_dict(t.model.state_dict())
    sp.on_epoch_start(t, 4)
    sp2.on_epoch_start(t2, 4)
    assert all(torch.equal(sp.masks[n], sp2.masks[n]) for n in sp.masks)


def test_initial_mask_is_keyed_by_seed():
    a_t, a = _trainer(_cfg())
    b_t, b = _trainer(_cfg())
    c_t, c = _trainer(_cfg(seed=4))
    for t, sp in ((a_t, a), (b_t, b), (c_t, c)):
        sp.on_run_start(t)
    assert all(torch.equal(a.masks[n], b.masks[n]) for n in a.masks)
    assert any(not torch.equal(a.masks[n], c.masks[n]) for n in a.masks)


def test_unknown_dense_layer_is_an_error_at_run_start():
    cfg = _cfg(sparsity__dense_layers=["stem", "layer1.0.conv9"])
    t, sp = _trainer(cfg)
    with pytest.raises(ValueError, match="layer1.0.conv9"):
        sp.on_run_start(t)
