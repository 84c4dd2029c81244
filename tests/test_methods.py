"""The sparse-training method plug-ins (engine.sparsity.methods): each rule against its
definition on small hand-built layers, their schedules and costs (Table 2, RigL's formula),
their config fields, and an exact resume after a kill for every method."""
from __future__ import annotations

import io
import json
import math

import pytest
import torch

from engine.config import ConfigError, from_dict
from engine.cost import arch as arch_mod
from engine.cost import costmodel
from engine.cost.projection import project
from engine.sparsity import schedule as dst_schedule
from engine.sparsity.methods import METHODS, method_for
from engine.sparsity.methods.grasp import GraSP
from engine.sparsity.methods.rigl import RigL
from engine.sparsity.methods.set import SET
from engine.sparsity.methods.snip import SNIP

PAPER = {"epochs": 160, "interval": 5, "model": {"name": "resnet32", "width": 2},
         "data": {"name": "cifar100", "root": "/nonexistent/cifar100"}}


def paper(sparsity, **sections):
    d = dict(PAPER, sparsity=sparsity)
    d.update(sections)
    return from_dict(d)


# ------------------------------------------------------------------ costs (pure Python)

@pytest.mark.parametrize("algorithm", ["snip", "grasp", "set"])
@pytest.mark.parametrize("s, expected", [(0.90, 1.32e15), (0.95, 0.66e15), (0.98, 0.26e15)])
def test_table2_cost_column(algorithm, s, expected):
    """SpFDE Table 2, 2x ResNet-32 on CIFAR-100, 160 epochs: training FLOPs within 2%; the
    scoring pass of SNIP/GraSP is shown on its own line and not part of the figure."""
    p = project(paper({"target": s, "algorithm": algorithm, "dense_layers": []}))
    f = p["flops"]
    training = f["spent"] - sum(f["overhead"].values())
    assert abs(training - expected) <= 0.02 * expected, training
    scoring = f["overhead"]["mask_scoring"]
    if algorithm == "set":
        assert scoring == 0
    else:   # one batch of 128 scored densely: 3 (SNIP) or 9 (GraSP) forward passes per sample
        passes = 3 if algorithm == "snip" else 9
        assert scoring == pytest.approx(passes * 128 * f["forward_dense_per_sample"], rel=1e-12)
        assert p["epochs"][0]["flops"]["overhead"]["mask_scoring"] == scoring
        assert p["epochs"][1]["flops"]["overhead"]["mask_scoring"] == 0


def test_rigl_dense_gradient_cost_follows_its_formula():
    """Independent computation: per step (3 f_S dT + 2 f_S + f_D) / (dT + 1) until 75% of
    the steps, 3 f_S after; f_S at RigL's default ERK densities."""
    p = project(paper({"target": 0.9, "algorithm": "rigl", "dense_layers": []}))
    a = arch_mod.describe(from_dict(PAPER).model, 100, 32)
    shapes = [(l.name, l.weight_shape) for l in a.layers]
    numel = {n: math.prod(s) for n, s in shapes}
    # ERK by hand: density_l = eps (sum shape / prod shape), capped at 1 and re-solved
    raw = {n: sum(s) / numel[n] for n, s in shapes}
    dense: set = set()
    while True:
        free = [n for n in numel if n not in dense]
        eps = (0.1 * sum(numel.values()) - sum(numel[n] for n in dense)) / sum(raw[n] * numel[n] for n in free)
        over = [n for n in free if eps * raw[n] > 1]
        if not over:
            break
        dense.update(over)
    dens = {n: 1.0 if n in dense else eps * raw[n] for n in numel}
    f_s = sum(2.0 * l.macs * round(dens[l.name] * l.params) / l.params for l in a.layers)
    f_d = a.forward_flops_dense
    steps_per_epoch = math.ceil(50000 / 128)
    t_end = int(0.75 * 160 * steps_per_epoch)
    dt = 100
    assert t_end % steps_per_epoch == 0    # T_end falls on an epoch boundary here (epoch 120)
    n_phase = t_end // steps_per_epoch * 50000
    per_step = (3 * f_s * dt + 2 * f_s + f_d) / (dt + 1)
    expected = n_phase * per_step + (160 * 50000 - n_phase) * 3 * f_s
    assert p["flops"]["spent"] == pytest.approx(expected, rel=1e-9)
    assert p["flops"]["overhead"]["dst_dense_grad"] == pytest.approx(n_phase * (per_step - 3 * f_s), rel=1e-9)
    assert p["method"] == {"name": "rigl", "exact": True, "distribution": "erk"}


def test_rigl_schedule_cosine_decay_and_end():
    cfg = from_dict({"epochs": 10, "batch_size": 10, "data": {"train_size": 95},
                     "sparsity": {"algorithm": "rigl", "update_steps": 4, "update_fraction": 0.4}})
    m = method_for(cfg, [95] * 10)        # 10 steps per epoch, 100 in all, T_end 75
    assert m.end_step() == 75 and m.epoch_start_step(3) == 30
    for t in range(0, 100):
        got = m.step_update(t)
        if t > 0 and t % 4 == 0 and t < 75:
            assert got == pytest.approx(0.2 * (1 + math.cos(math.pi * t / 75)))
        else:
            assert got is None
    # the epoch holding T_end pays the dense gradient for its first 5 steps only
    assert m.phase_samples(7, 95) == 50 and m.phase_samples(6, 95) == 95 and m.phase_samples(8, 95) == 0


def test_set_and_mest_schedules():
    cfg = from_dict({"epochs": 20, "interval": 3, "sparsity": {"algorithm": "set"}})
    assert dst_schedule.update_epochs(cfg) == [3, 6, 9, 12, 15, 18]
    assert {dst_schedule.training_sparsity(cfg, e) for e in range(20)} == {0.9}
    # SET's paper updates after every epoch; freezing and sieving keep the interval's cadence
    every = from_dict({"epochs": 6, "interval": 3, "sparsity": {"algorithm": "set", "update_every": 1}})
    assert dst_schedule.update_epochs(every) == [1, 2, 3, 4, 5]
    assert dst_schedule.mask_update(every, 1) == (0.9, 0.9) and every.interval == 3
    with pytest.raises(ConfigError, match="sparsity.update_every.*does not apply"):
        from_dict({"epochs": 6, "sparsity": {"algorithm": "mest_ems", "update_every": 1}})
    ems = from_dict({"epochs": 160, "interval": 5})
    # MEST EM&S on the plug-in: the schedule of ALGORITHMS.md section 1, unchanged
    assert dst_schedule.update_epochs(ems) == list(range(5, 125, 5))
    assert dst_schedule.mask_update(ems, 120) == (0.9, 0.9) and dst_schedule.mask_update(ems, 95) == (0.9, 0.875)
    for name in ("static", "snip", "grasp"):
        c = from_dict({"epochs": 20, "sparsity": {"algorithm": name}})
        assert dst_schedule.update_epochs(c) == [] and dst_schedule.mask_update(c, 5) is None


def test_segment_plan_equals_the_per_epoch_walk():
    """project() prices by segments; the per-epoch reference (_with_frozen_masks) agrees."""
    from engine.cost import projection as plan_mod
    for sp, fr, sv in [({"target": 0.9}, {"target": 0.2}, {"ratio": 0.2}),
                       ({"target": 0.9}, {"target": 0.1, "scheme": "periodic"}, {"ratio": 0.24, "mode": "oneshot"}),
                       ({"target": 0.9}, {"target": 0.15, "scheme": "single_shot_resume"}, {"ratio": 0.0}),
                       ({"target": 0.9, "algorithm": "rigl"}, {"target": 0.2}, {"ratio": 0.2})]:
        cfg = paper(sp, freeze=fr, sieve=sv)
        p = project(cfg)
        a = arch_mod.describe(cfg.model, 100, 32)
        prefix = p["freeze_plan"]["frozen_prefix"]
        ref = plan_mod._with_frozen_masks(cfg, a, plan_mod._scheduled(cfg, a), prefix)
        m = method_for(cfg, [r["samples"] for r in p["epochs"]])
        total = 0.0
        for e, r in enumerate(p["epochs"]):
            blocks = costmodel.block_forward_flops(a, ref[e])
            dense = costmodel.block_forward_flops(a, {})
            k = prefix[e]
            over = sum(m.overhead(e, r["samples"], sum(blocks[k:]), sum(dense[k:]), a.forward_flops_dense,
                                  50000).values())
            spent = r["samples"] * (3 * sum(blocks) - 2 * sum(blocks[:k])) + over
            assert r["flops"]["spent"] == pytest.approx(spent, rel=1e-12), (sp, fr, e)
            total += spent
        assert p["flops"]["spent"] == pytest.approx(total, rel=1e-9)
        assert sum(sg["end"] - sg["start"] for sg in p["segments"]) == 160


# ------------------------------------------------------------------ config fields

@pytest.mark.parametrize("algorithm, field, value", [
    ("mest_ems", "update_steps", 50), ("set", "slack", 0.1), ("rigl", "score_batches", 2),
    ("snip", "update_fraction", 0.2), ("static", "em_delta", 0.1), ("grasp", "distribution", "erk")])
def test_a_field_of_another_method_is_an_error_naming_it(algorithm, field, value):
    with pytest.raises(ConfigError) as ei:
        from_dict({"sparsity": {"algorithm": algorithm, field: value}})
    errs = dict(ei.value.errors)
    assert f"sparsity.{field}" in errs and algorithm in errs[f"sparsity.{field}"]


def test_method_field_ranges_and_model_checks():
    with pytest.raises(ConfigError) as ei:
        from_dict({"sparsity": {"algorithm": "set", "update_fraction": 1.5}})
    assert "< 1" in dict(ei.value.errors)["sparsity.update_fraction"]
    with pytest.raises(ConfigError) as ei:
        from_dict({"epochs": 100001})
    assert "100000" in dict(ei.value.errors)["epochs"]
    # before training: RigL that would never update, SNIP with nothing to score
    with pytest.raises(ConfigError) as ei:
        project(from_dict({"epochs": 2, "interval": 1, "data": {"train_size": 256},
                           "sparsity": {"algorithm": "rigl", "update_steps": 3}}))
    assert "sparsity.update_steps" in dict(ei.value.errors)
    # the default (never set by the user) is named as such, with a value that would work
    with pytest.raises(ConfigError) as ei:
        project(from_dict({"epochs": 2, "interval": 1, "data": {"train_size": 256},
                           "sparsity": {"algorithm": "rigl"}}))
    msg = dict(ei.value.errors)["sparsity.update_steps"]
    assert "(the default)" in msg and "set it below" in msg
    with pytest.raises(ConfigError) as ei:
        project(from_dict({"sparsity": {"algorithm": "snip", "dense_layers": ["stem", "head", "shortcut",
                                                                              *[f"layer{i}" for i in range(1)]]}}))
    # (layer1 is not a layer name: the message lists the real ones)
    assert "sparsity.dense_layers" in dict(ei.value.errors)
    assert set(METHODS) == {"mest_ems", "mest_em", "static", "set", "rigl", "snip", "grasp"}


# ------------------------------------------------------------------ rules on hand-built layers

def _layer(seed=0, shape=(8, 10), active=40):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g)
    mask = torch.zeros(w.numel(), dtype=torch.bool)
    mask[torch.randperm(w.numel(), generator=g)[:active]] = True
    mask = mask.view(shape)
    return w * mask, mask, g


def test_set_drops_the_smallest_magnitudes_and_regrows_as_many_at_random():
    """Per sign (positive and negative apart, tests/test_fidelity.py has the counts)."""
    w, mask, g = _layer()
    keep, new = SET(from_dict({"sparsity": {"algorithm": "set"}})).update_layer(w, mask, None, None, g)
    dropped = mask & ~keep
    pos, neg = int((mask & (w > 0)).sum()), int((mask & (w < 0)).sum())
    assert int(dropped.sum()) == int(0.3 * pos) + int(0.3 * neg) and int(new.sum()) == 40   # exact count
    for side in (w > 0, w < 0):
        assert float(w[dropped & side].abs().max()) <= float(w[keep & side].abs().min())
    assert not (new & ~keep & mask & ~dropped).any() and (keep <= new).all()


def test_rigl_grows_exactly_the_top_gradient_zero_positions():
    w, mask, g = _layer(1)
    grad = torch.randn(w.shape, generator=g)
    keep, new = RigL(from_dict({"sparsity": {"algorithm": "rigl"}})).step_layer(w, mask, grad, 0.25)
    assert int((mask & ~keep).sum()) == 10 and int(new.sum()) == 40
    assert float(w[mask & ~keep].abs().max()) <= float(w[keep].abs().min())
    grown = new & ~keep
    zeros = ~keep
    top = torch.topk(grad.abs()[zeros], 10).values
    assert sorted(grad.abs()[grown].tolist()) == sorted(top.tolist())


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = torch.nn.Linear(4, 5, bias=False)
        self.b = torch.nn.Linear(5, 3, bias=False)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x)))


def _batches():
    g = torch.Generator().manual_seed(2)
    return [(torch.randn(6, 4, generator=g), torch.randint(0, 3, (6,), generator=g)) for _ in range(2)]


def _loss_of(flat, model, batches):
    wa, wb = flat[:20].view(5, 4), flat[20:].view(3, 5)
    return sum(torch.nn.functional.cross_entropy(torch.tanh(x @ wa.T) @ wb.T, y) for x, y in batches)


def test_snip_and_grasp_scores_equal_a_direct_computation():
    model, batches = _Tiny(), _batches()
    weights = [model.a.weight, model.b.weight]
    flat = torch.cat([w.detach().flatten() for w in weights])
    g = torch.autograd.functional.jacobian(lambda f: _loss_of(f, model, batches), flat)
    h = torch.autograd.functional.hessian(lambda f: _loss_of(f, model, batches), flat)
    snip = torch.cat([s.flatten() for s in SNIP(from_dict({})).scores(model, weights, batches)])
    assert torch.allclose(snip, (g * flat).abs(), atol=1e-6)
    # T = 1 here; the official T = 200 is checked in test_fidelity.py
    t1 = from_dict({"sparsity": {"algorithm": "grasp", "temperature": 1.0, "reinit_fc": False}})
    grasp = torch.cat([s.flatten() for s in GraSP(t1).scores(model, weights, batches)])
    assert torch.allclose(grasp, -flat * (h @ g), atol=1e-5)
    # one global threshold, exact count: SNIP keeps the largest, GraSP removes the largest
    for cls, scores, largest in ((SNIP, snip, True), (GraSP, grasp, False)):
        masks = cls(t1 if cls is GraSP else from_dict({})).masks(model, weights, batches, 9)
        kept = torch.cat([m.flatten() for m in masks])
        assert int(kept.sum()) == 9
        worst_kept = scores[kept].min() if largest else scores[kept].max()
        best_dropped = scores[~kept].max() if largest else scores[~kept].min()
        assert (worst_kept >= best_dropped) if largest else (worst_kept <= best_dropped)


# ------------------------------------------------------------------ resume after a kill

TINY = {"name": "m", "seed": 1, "device": "cpu", "epochs": 4, "batch_size": 32, "interval": 1,
        "model": {"name": "resnet20", "width": 0.25},
        "data": {"name": "synthetic", "image_size": 8, "train_size": 128, "test_size": 32, "num_classes": 4,
                 "augment": False},
        "freeze": {"target": 0.05}, "sieve": {"ratio": 0.25},
        "checkpoint": {"every": 1, "keep": 1}}
EXTRA = {"rigl": {"update_steps": 2}, "snip": {}, "grasp": {}}


class _Killed(Exception):
    pass


class _KillAfter:
    """Dies (no stop checkpoint, like SIGKILL) after a number of batches: only files survive."""

    def __init__(self, batches):
        self.left = batches

    @property
    def should_stop(self):
        self.left -= 1
        if self.left < 0:
            raise _Killed
        return False

    def take_checkpoint_request(self):
        return False


def _trainer(cfg, d, commands=None):
    from engine.run.telemetry import Emitter
    from engine.training.trainer import Trainer
    out = io.StringIO()
    return Trainer(cfg, d, Emitter(d, stream=out, progress_bar=False), commands), out


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", sorted(METHODS))
def test_resume_after_a_kill_is_exact(algorithm, tmp_path):
    d = json.loads(json.dumps(TINY))
    d["sparsity"] = {"target": 0.8, "algorithm": algorithm, **EXTRA.get(algorithm, {})}
    cfg = from_dict(d)
    (tmp_path / "ref").mkdir()
    (tmp_path / "kill").mkdir()
    ref, ref_out = _trainer(cfg, tmp_path / "ref")
    assert ref.fit() == "completed"
    # epochs of 3 batches (96 active samples): die inside epoch 2, after its first batch
    dying, _ = _trainer(cfg, tmp_path / "kill", _KillAfter(3 + 1 + 3 + 1 + 1 + 1))
    with pytest.raises(_Killed):
        dying.fit()
    resumed, out = _trainer(cfg, tmp_path / "kill")
    resumed.load_checkpoint()
    assert resumed.epoch == 2 and resumed.batch == 0
    assert resumed.fit() == "completed"
    ref_evs = [json.loads(l) for l in ref_out.getvalue().splitlines()]
    res_evs = [json.loads(l) for l in out.getvalue().splitlines()]
    by = lambda evs: {e["epoch"]: e for e in evs if e["event"] == "epoch_end"}
    for e in (2, 3):
        for f in ("train_loss", "test_acc", "density", "flops", "flops_epoch", "frozen_blocks", "samples"):
            assert by(res_evs)[e][f] == by(ref_evs)[e][f], (algorithm, e, f)
    assert {n: m.tolist() for n, m in resumed.sparsifier.masks.items()} == \
        {n: m.tolist() for n, m in ref.sparsifier.masks.items()}
    # the ledger's overhead is the plan's, to the FLOP; its spent agrees as for MEST (0.5%)
    counted, planned = by(ref_evs)[3]["flops"], project(cfg)["flops"]
    for k, v in planned["overhead"].items():
        assert counted["overhead"][k] == pytest.approx(v, rel=1e-9, abs=1e-6), (algorithm, k)
    if METHODS[algorithm].exact_plan:
        assert counted["spent"] == pytest.approx(planned["spent"], rel=0.005), algorithm
    # every method keeps its sparsity exactly, frozen blocks included
    assert ref.sparsifier.overall_density() == pytest.approx(0.2, abs=0.01)
    updates = [e for e in ref_evs if e["event"] == "mask_update"]
    if algorithm in ("set", "mest_ems", "mest_em", "rigl"):
        assert updates
    if algorithm == "rigl":
        assert all("step" in u for u in updates)
        fl = by(ref_evs)[3]["flops"]
        assert fl["overhead"]["dst_dense_grad"] > 0
    if algorithm in ("snip", "grasp"):
        assert by(ref_evs)[3]["flops"]["overhead"]["mask_scoring"] > 0
