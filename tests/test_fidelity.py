"""Figures with a paper's name, each against an independent computation written from the
paper's formula (docs/fidelity.md): Fig. 1a's structural similarity, GraSP with the official
temperature and Hessian-gradient product over every weight, MEST EM's delta schedule."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from engine.analysis import metrics
from engine.config import ConfigError, from_dict
from engine.cost.projection import project
from engine.sparsity import schedule as dst_schedule
from engine.sparsity.methods.grasp import GraSP

# ----------------------------------------------------------------------------- Fig. 1a


def _brute_fig1a(w_e: np.ndarray, mask_e: np.ndarray, final_mask: np.ndarray) -> float:
    """Section 3.1 literally: rank epoch e's kept non-zero weights by |w| (ties by position),
    take the ceil(k/2) largest, count how many are non-zero in the final mask."""
    alive = [i for i in range(w_e.size) if w_e.flat[i] != 0 and mask_e.flat[i]]
    alive.sort(key=lambda i: (-abs(w_e.flat[i]), i))
    top = alive[:(len(alive) + 1) // 2]
    return sum(1 for i in top if final_mask.flat[i]) / len(top)


def test_structural_similarity_is_the_share_of_the_top_half_kept_by_the_final_mask():
    rng = np.random.default_rng(3)
    for _ in range(20):
        w = rng.normal(size=(6, 7))
        mask = rng.random((6, 7)) < 0.5
        final = rng.random((6, 7)) < 0.4
        top = metrics.top_half(torch.from_numpy(w), torch.from_numpy(mask))
        got = metrics.kept_share(top.flatten(), torch.from_numpy(final).flatten())
        assert got == pytest.approx(_brute_fig1a(w, mask, final), abs=1e-12)
    # a ranking that changed completely, inside a mask that did not: Fig. 1a is 1, the
    # rank overlap (kept under its own name) is 0
    early, late = torch.tensor([4.0, 3.0, 0.1, 0.2]), torch.tensor([0.1, 0.2, 4.0, 3.0])
    top_e, top_l = metrics.top_half(early), metrics.top_half(late)
    assert metrics.kept_share(top_e, torch.ones(4, dtype=torch.bool)) == 1.0
    assert metrics.overlap(top_e, top_l) == 0.0


TINY = {
    "name": "fid", "seed": 5, "device": "cpu", "epochs": 3, "batch_size": 32, "interval": 1,
    "model": {"name": "resnet20", "width": 0.25},
    "data": {"name": "synthetic", "image_size": 8, "train_size": 96, "test_size": 32,
             "num_classes": 4, "augment": False},
    "sparsity": {"target": 0.8, "algorithm": "static"},
    "checkpoint": {"every": 0},
    "analysis": {"enabled": True, "probe_size": 16},
}


def _run(tmp_path, cfg):
    from engine.run.telemetry import Emitter
    from engine.training.trainer import Trainer
    out = io.StringIO()
    t = Trainer(cfg, tmp_path, Emitter(tmp_path, stream=out, progress_bar=False), None)
    assert t.fit() == "completed"
    return t, [json.loads(line) for line in out.getvalue().splitlines()]


def test_structural_similarity_is_one_at_every_epoch_when_the_mask_never_changes(tmp_path):
    _, events = _run(tmp_path, from_dict(TINY))
    last = [e for e in events if e["event"] == "analysis"][-1]
    fig1a = last["similarity_to_final"]
    assert fig1a and all(v == [1.0, 1.0, 1.0] for v in fig1a.values())
    # the ranking does move while the weights train: the rank overlap is its own, other figure
    ranks = last["rank_overlap_to_final"]
    assert ranks.keys() == fig1a.keys() and any(v[0] < 1.0 for v in ranks.values())
    # Fig. 1b: CKA with the final model, from the Grams kept on disk, in numpy's Gram form
    cka = last["cka_to_final"]
    assert cka and all(len(v) == 3 and v[-1] == pytest.approx(1.0, abs=1e-9) for v in cka.values())
    grams = [torch.load(tmp_path / "analysis" / f"gram_e{e}.pt") for e in (0, 1, 2)]
    for block, values in cka.items():
        kf = grams[2][block].numpy()
        for e, got in enumerate(values):
            k = grams[e][block].numpy()
            want = float((k * kf).sum() / (np.linalg.norm(k) * np.linalg.norm(kf)))
            assert got == pytest.approx(want, abs=2e-6)


def test_cka_to_final_equals_the_feature_form_on_hand_made_activations(tmp_path):
    """GramStore scores kept measurements against the final one: Kornblith's feature form."""
    from engine.analysis.final import GramStore
    rng = np.random.default_rng(4)
    feats = [rng.normal(size=(12, 9)) for _ in range(3)]
    store = GramStore(tmp_path)
    for e, x in enumerate(feats):
        store.save(e * 2, {"blk": metrics.centered_gram(torch.from_numpy(x))})
    final = {"blk": metrics.centered_gram(torch.from_numpy(feats[-1]))}
    got = store.against_final([0, 2, 4, 6], final)["blk"]

    def direct(x, y):
        xc, yc = x - x.mean(0), y - y.mean(0)
        return np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    assert got[:3] == pytest.approx([direct(x, feats[-1]) for x in feats], abs=1e-6) and got[3] is None

# ----------------------------------------------------------------------------- GraSP


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


def _loss(flat, batches, t):
    """The official GraSP loss: cross-entropy of logits / T, written on the flat weights."""
    wa, wb = flat[:20].view(5, 4), flat[20:].view(3, 5)
    return sum(torch.nn.functional.cross_entropy(torch.tanh(x @ wa.T) @ wb.T / t, y) for x, y in batches)


@pytest.mark.parametrize("t", [1.0, 200.0])
def test_grasp_scores_with_the_temperature_equal_a_direct_hessian(t):
    model, batches = _Tiny(), _batches()
    flat = torch.cat([model.a.weight.detach().flatten(), model.b.weight.detach().flatten()]).double()
    batches_d = [(x.double(), y) for x, y in batches]
    g = torch.autograd.functional.jacobian(lambda f: _loss(f, batches_d, t), flat)
    h = torch.autograd.functional.hessian(lambda f: _loss(f, batches_d, t), flat)
    want = -flat * (h @ g)
    grasp = GraSP(from_dict({"sparsity": {"algorithm": "grasp", "temperature": t, "reinit_fc": False}}))
    model = model.double()
    got = grasp.scores(model, [model.a.weight, model.b.weight], batches_d)
    assert torch.allclose(torch.cat([s.flatten() for s in got]), want, rtol=1e-6, atol=1e-12 * want.abs().max())
    # only layer b sparse (a kept dense): H g still runs over both layers' weights
    only_b = grasp.scores(model, [model.b.weight], batches_d)
    assert torch.allclose(only_b[0].flatten(), want[20:], rtol=1e-6, atol=1e-12 * want.abs().max())


def test_grasp_scores_a_copy_with_xavier_normal_linear_weights_as_the_official_reinit():
    """reinit=True in alecwangcq/GraSP: the scores are -w * Hg of a deep copy whose Linear
    weights were re-drawn with xavier_normal; the model keeps its own weights."""
    from engine.training.seeding import gen
    model, batches = _Tiny().double(), _batches()
    before = [p.detach().clone() for p in model.parameters()]
    batches_d = [(x.double(), y) for x, y in batches]
    # the copy drawn by hand: each Linear in module order, its own seeded generator
    wa = torch.empty(5, 4, dtype=torch.float64)
    wb = torch.empty(3, 5, dtype=torch.float64)
    torch.nn.init.xavier_normal_(wa, generator=gen(7, "grasp_fc", 0))
    torch.nn.init.xavier_normal_(wb, generator=gen(7, "grasp_fc", 1))
    flat = torch.cat([wa.flatten(), wb.flatten()])
    g = torch.autograd.functional.jacobian(lambda f: _loss(f, batches_d, 200.0), flat)
    h = torch.autograd.functional.hessian(lambda f: _loss(f, batches_d, 200.0), flat)
    want = -flat * (h @ g)
    grasp = GraSP(from_dict({"seed": 7, "sparsity": {"algorithm": "grasp"}}))
    assert grasp.param("reinit_fc") is True                          # the official default
    got = grasp.scores(model, [model.a.weight, model.b.weight], batches_d)
    assert torch.allclose(torch.cat([s.flatten() for s in got]), want, rtol=1e-6, atol=1e-12 * want.abs().max())
    assert all(torch.equal(a, b.detach()) for a, b in zip(before, model.parameters()))   # untouched


def test_grasp_temperature_defaults_to_200_and_must_be_positive():
    assert GraSP(from_dict({"sparsity": {"algorithm": "grasp"}})).param("temperature") == 200.0
    for bad in (0, -1.0):
        with pytest.raises(ConfigError, match="sparsity.temperature"):
            from_dict({"sparsity": {"algorithm": "grasp", "temperature": bad}})
    with pytest.raises(ConfigError, match="sparsity.temperature"):
        from_dict({"sparsity": {"algorithm": "snip", "temperature": 100.0}})

# ----------------------------------------------------------------------------- MEST EM


@pytest.mark.parametrize("s, early, late", [(0.90, 0.92, 0.91), (0.95, 0.96, 0.955), (0.98, 0.984, 0.982)])
def test_mest_em_prunes_to_the_bounds_of_mests_scripts(s, early, late):
    """MEST's scripts: prune-to 0.92 -> 0.91 at 90%, 0.96 -> 0.955 at 95%, the second from
    epoch 90 of 160 (then 20% / 10% of the target density at 98%), regrow to the target."""
    cfg = from_dict({"epochs": 160, "interval": 5, "model": {"name": "resnet32", "width": 2},
                     "data": {"name": "cifar100", "root": "/nonexistent"},
                     "sparsity": {"algorithm": "mest_em", "target": s}})
    assert dst_schedule.update_epochs(cfg) == list(range(5, 120, 5))
    assert dst_schedule.mask_update(cfg, 85) == pytest.approx((early, s), abs=1e-12)
    assert dst_schedule.mask_update(cfg, 90) == pytest.approx((late, s), abs=1e-12)
    assert dst_schedule.mask_update(cfg, 120) is None
    assert project(cfg)["flops"]["spent"] > 0
    # an explicit delta is absolute, and one that passes 1 is an error naming it
    fixed = cfg.replace(**{"sparsity.em_delta": 0.01})
    assert dst_schedule.mask_update(fixed, 85) == pytest.approx((s + 0.01, s))
    with pytest.raises(ConfigError, match="sparsity.em_delta_late"):
        from_dict({"sparsity": {"algorithm": "mest_em", "target": s, "em_delta_late": 1 - s}})

# ----------------------------------------------------------------------------- freeze targets

FREEZE = {"epochs": 160, "interval": 5, "model": {"name": "resnet32", "width": 2},
          "data": {"name": "cifar100", "root": "/nonexistent"}, "sparsity": {"target": 0.9}}


def _cfg(**freeze):
    return from_dict(dict(FREEZE, freeze=freeze))


@pytest.mark.parametrize("freeze", [{"target": 0.2}, {"target": 0.1, "start_epoch": 40},
                                    {"target": 0.2, "scheme": "periodic"}])
def test_the_reduction_is_the_difference_of_two_plans(freeze):
    """The paper's figure: 1 - (training FLOPs with freezing) / (the same run's without),
    from two independent plans; the ledger's share stays beside it under its own name."""
    cfg = _cfg(**freeze)
    fp = project(cfg)["freeze_plan"]
    off = cfg.replace(**{"freeze.target": 0.0, "freeze.start_epoch": None})
    assert project(off)["freeze_plan"] is None

    def training(plan):
        f = plan["flops"]
        return f["spent"] - sum(f.get("overhead", {}).values())
    want = 1 - training(project(cfg)) / training(project(off))
    assert fp["reduction"] == pytest.approx(want, rel=1e-9)
    assert fp["saving_share"] == fp["achieved"]


def test_a_start_epoch_that_misses_the_target_warns_with_both_figures():
    fp = project(_cfg(target=0.2, start_epoch=100))["freeze_plan"]
    assert fp["saving_share"] < 0.2
    (w,) = fp["warnings"]
    assert "freeze.start_epoch 100" in w and "20.0%" in w and f"{100 * fp['saving_share']:.1f}%" in w \
        and f"{100 * fp['reduction']:.1f}%" in w
    assert project(_cfg(target=0.2))["freeze_plan"]["warnings"] == []
    assert project(_cfg(target=0.01, start_epoch=40))["freeze_plan"]["warnings"] == []
    with pytest.raises(ConfigError, match="freeze.start_epoch"):
        _cfg(target=0.2, start_epoch=160)

# ----------------------------------------------------------------------------- SET


def test_set_drops_positive_and_negative_weights_separately():
    """Mocanu et al.'s weightsEvolution, by brute force in numpy: zeta of the positives
    closest to zero and zeta of the negatives closest to zero go, and active zeros."""
    from engine.sparsity.methods.set import signed_drop
    rng = np.random.default_rng(7)
    for trial in range(10):
        w = rng.normal(size=(8, 9)) + (0.8 if trial % 2 else -0.8)    # lopsided signs
        mask = rng.random((8, 9)) < 0.6
        w[0, :3] = 0.0
        mask[0, :3] = True
        keep = signed_drop(torch.from_numpy(w), torch.from_numpy(mask), 0.3).numpy()
        want = mask.copy()
        want[mask & (w == 0)] = False
        for side in (w > 0, w < 0):
            idx = [i for i in np.flatnonzero((mask & side).ravel())]
            idx.sort(key=lambda i: (abs(w.flat[i]), i))
            for i in idx[:int(np.floor(0.3 * len(idx)))]:
                want.flat[i] = False
        assert (keep == want).all()
        assert int((keep & (w > 0)).sum()) == int((mask & (w > 0)).sum()) - int(0.3 * (mask & (w > 0)).sum())

# ----------------------------------------------------------------------------- RigL


def _rigl_reference(w: np.ndarray, g: np.ndarray, old: np.ndarray, fraction: float) -> np.ndarray:
    """google-research/rigl _get_update_op, by hand: keep the active - k largest |w| of the
    active weights, grow the k largest |g| among the rest; k = floor(fraction x active)."""
    act = np.flatnonzero(old.ravel())
    k = int(np.floor(fraction * act.size))
    order = act[np.argsort(-np.abs(w.ravel()[act]), kind="stable")]
    keep = np.zeros(w.size, dtype=bool)
    keep[order[:act.size - k]] = True
    rest = np.flatnonzero(~keep)
    grow = rest[np.argsort(-np.abs(g.ravel()[rest]), kind="stable")[:k]]
    new = keep.copy()
    new[grow] = True
    return new.reshape(w.shape)


def test_rigl_mask_update_step_leaves_the_weights_as_the_reference(tmp_path, monkeypatch):
    """On a mask-update step the reference updates the mask *instead of* the weights; a
    weight dropped and regrown keeps its value and momentum, new connections start at 0."""
    from engine.sparsity.sparsifier import Sparsifier
    seen: list[dict] = []
    orig_update, orig_after = Sparsifier._step_update, Sparsifier.after_step

    def update(self, trainer, step, fraction):
        opt = trainer.optimizer.state
        snap = {n: (w.detach().clone(), w.grad.detach().clone(), self._fmask[n].bool().clone(),
                    opt.get(w, {}).get("momentum_buffer"))
                for n, w in zip(self._active_names, self._active_w)}
        snap = {n: (a, b, c, None if d is None else d.clone()) for n, (a, b, c, d) in snap.items()}
        orig_update(self, trainer, step, fraction)
        seen.append({"fraction": fraction, "before": snap, "weights": dict(zip(self._active_names, self._active_w)),
                     "opt": opt})

    def after_step(self, trainer):
        orig_after(self, trainer)
        if seen and "after" not in seen[-1]:
            rec = seen[-1]
            rec["after"] = {n: (w.detach().clone(), rec["opt"].get(w, {}).get("momentum_buffer"))
                            for n, w in rec["weights"].items()}
            rec["after"] = {n: (a, None if b is None else b.clone()) for n, (a, b) in rec["after"].items()}
    monkeypatch.setattr(Sparsifier, "_step_update", update)
    monkeypatch.setattr(Sparsifier, "after_step", after_step)
    cfg = from_dict(dict(TINY, epochs=3, analysis={"enabled": False},
                         sparsity={"target": 0.8, "algorithm": "rigl", "update_steps": 2}))
    _run(tmp_path, cfg)
    assert len(seen) >= 2 and seen[1]["before"]   # steps 2 and 4; the second has momentum
    for rec in seen:
        for n, (w0, g0, old, buf0) in rec["before"].items():
            new = _rigl_reference(w0.numpy(), g0.numpy(), old.numpy(), rec["fraction"])
            w1, buf1 = rec["after"][n]
            assert np.array_equal(w1.numpy(), np.where(new & old.numpy(), w0.numpy(), 0.0)), n
            if buf0 is not None:
                assert np.array_equal(buf1.numpy(), np.where(new, buf0.numpy(), 0.0)), n


def test_grasp_scores_class_balanced_samples():
    """The official samples_per_class: per class the counts differ by at most one."""
    from engine.sparsity.scoring import balanced_order
    labels = torch.tensor([0] * 50 + [1] * 7 + [2] * 30 + [3] * 13)
    for n in (4, 12, 26, 31, 100):
        order = balanced_order(labels, n, torch.Generator().manual_seed(1))
        assert order.numel() == n and len(set(order.tolist())) == n
        counts = np.bincount(labels[order].numpy(), minlength=4)
        sizes = np.bincount(labels.numpy())
        # balanced: a class that still has samples left is at most one below any other class
        for i in range(4):
            if counts[i] < sizes[i]:
                assert counts.max() <= counts[i] + 1, (n, counts)
        assert torch.equal(order, balanced_order(labels, n, torch.Generator().manual_seed(1)))

# ----------------------------------------------------------------------------- Fig. 3b


def test_gradient_norm_differences_are_consecutive_absolute_changes():
    from types import SimpleNamespace

    from spfde_gui.model import analysis_data as AD
    norms = {0: {"a": 4.0, "b": 1.0}, 1: {"a": 2.5, "b": None}, 2: {"a": 3.0, "b": 0.5}, 4: {"a": 1.0, "b": 0.25}}
    m = SimpleNamespace(block_names=["a", "b"],
                        analysis_events=[{"epoch": e, "grad_norm": v} for e, v in norms.items()])
    names, epochs, diff = AD.grad_norm_differences(m)
    assert names == ["a", "b"] and list(epochs) == [0, 1, 2, 4]
    want_a = [np.nan, 1.5, 0.5, np.nan]          # epoch 4 follows 2: not consecutive
    want_b = [np.nan, np.nan, np.nan, np.nan]    # b frozen at epoch 1
    np.testing.assert_array_equal(diff, np.array([want_a, want_b]))

# ----------------------------------------------------------------------------- SNIP/GraSP cost


def test_one_shot_forward_range_brackets_every_mask_by_brute_force():
    """Any mask keeping K sparse weights costs between the plan's low and high forward FLOPs:
    checked against many random global-threshold-like masks and the two extreme fills."""
    from engine.cost import arch as arch_mod
    from engine.cost import costmodel
    from engine.cost.oneshot_range import forward_range
    from engine.sparsity.allocation import dense_layer_names, keep_count
    cfg = from_dict({"model": {"name": "resnet20", "width": 0.5}, "sparsity": {"algorithm": "snip", "target": 0.9}})
    arch = arch_mod.describe(cfg.model, 10, 32)
    lo, hi = forward_range(cfg, arch, 0.9)
    dense = dense_layer_names(cfg, arch.layer_specs())
    sparse = [l for l in arch.layers if l.name not in dense]
    k = keep_count(sum(l.params for l in sparse), 0.1)
    rng = np.random.default_rng(0)
    sizes = np.array([l.params for l in sparse])
    for _ in range(200):     # K weights drawn at random (skewed per layer), then counted
        weights = np.repeat(rng.random(len(sparse)) ** 4, sizes)
        pick = rng.choice(sizes.sum(), size=k, replace=False, p=weights / weights.sum())
        per_layer = np.bincount(np.searchsorted(np.cumsum(sizes), pick, side="right"), minlength=len(sparse))
        dens = {l.name: per_layer[i] / l.params for i, l in enumerate(sparse)}
        f = costmodel.forward_flops(arch, dens)
        assert lo - 1e-6 * lo <= f <= hi + 1e-6 * hi
    uniform = costmodel.forward_flops(arch, {l.name: 0.1 for l in sparse})
    assert lo < uniform < hi
    plan = project(cfg.replace(**{"data.name": "synthetic"}))
    assert plan["method"]["forward_range"] is not None

# ----------------------------------------------------------------------------- SET's ER allocation


def test_erdos_renyi_densities_follow_the_formula():
    """ER (Mocanu et al.): density_l = eps (n_out + n_in) / (n_out n_in), eps solved so the
    sparse layers keep exactly the target share of their weights (no layer above 1 here)."""
    from engine.sparsity.allocation import erk_densities
    shapes = [("a", (16, 3, 3, 3)), ("b", (32, 16, 3, 3)), ("c", (64, 32, 3, 3)), ("fc", (10, 64))]
    got = erk_densities(shapes, 0.1, kernel=False)
    numel = {n: int(np.prod(s)) for n, s in shapes}
    raw = {n: (s[0] + s[1]) / (s[0] * s[1]) for n, s in shapes}
    eps = 0.1 * sum(numel.values()) / sum(raw[n] * numel[n] for n in numel)
    assert got == pytest.approx({n: eps * raw[n] for n in numel}, rel=1e-12)
    cfg = from_dict({"sparsity": {"algorithm": "set", "distribution": "er"}})
    assert cfg.sparsity.distribution == "er"
    assert project(cfg)["flops"]["spent"] > 0

# ----------------------------------------------------------------------------- MEST's starting mask


def test_mest_magnitude_init_keeps_the_largest_init_weights_then_zero_slots(tmp_path):
    """init_mask: magnitude (MEST's code): per sparse layer, the init's largest |w| at the
    target density are kept with their values, the rest of the epoch-0 density is new
    zero-valued slots; checked by sorting the saved init in numpy."""
    from engine.run.telemetry import Emitter
    from engine.training.trainer import Trainer
    cfg = from_dict(dict(TINY, analysis={"enabled": False},
                         sparsity={"target": 0.8, "algorithm": "mest_ems", "init_mask": "magnitude"}))
    t = Trainer(cfg, tmp_path, Emitter(tmp_path, stream=io.StringIO(), progress_bar=False), None)
    init = {n: m.weight.detach().clone().numpy() for n, m in t.model.prunable()}
    sp = t.sparsifier
    sp.on_run_start(t)
    mods = dict(t.model.prunable())
    for n, _ in sp._layers:
        w0, w1, mask = init[n], mods[n].weight.detach().numpy(), sp.masks[n].numpy()
        assert (w0 != 0).all()                       # the dense init, before any mask
        k = int(round(0.2 * w0.size))
        top = np.zeros(w0.size, dtype=bool)
        top[np.argsort(-np.abs(w0.ravel()), kind="stable")[:k]] = True
        top = top.reshape(w0.shape)
        assert (mask[top]).all() and np.array_equal(w1[top], w0[top])          # kept with their values
        assert int(mask.sum()) == int(round(0.25 * w0.size)) and (w1[mask & ~top] == 0).all()   # soft bound 0.75
    with pytest.raises(ConfigError, match="sparsity.init_mask"):
        from_dict({"sparsity": {"init_mask": "kaiming"}})
