"""The Ledger component on its own: it prices the samples it is shown at the densities and
frozen prefix the trainer reports, with the planner's formulas, and survives a resume."""
from types import SimpleNamespace

import pytest

from engine.component import LoopState
from engine.config import from_dict
from engine.cost import arch as arch_mod
from engine.cost.ledger import Ledger
from engine.cost.projection import project
from engine.sparsity import schedule as dst_schedule


class _Sparsifier:
    def __init__(self, densities):
        self.d = densities

    def densities(self):
        return dict(self.d)


def _trainer(cfg, densities, prefix=0):
    a = arch_mod.describe(cfg.model, cfg.data.num_classes, cfg.data.image_size)
    return SimpleNamespace(cfg=cfg, arch=a, train_size=cfg.data.train_size, num_classes=cfg.data.num_classes,
                           components=[], state=LoopState(frozen_prefix=prefix, densities=_Sparsifier(densities).densities()))


def _epoch(ledger, trainer, epoch, batches):
    ledger.on_epoch_start(trainer, epoch)
    for n in batches:
        ledger.on_batch_end(trainer, list(range(n)), None, None)
    record = {}
    ledger.on_epoch_end(trainer, epoch, record)
    return record


def test_counts_what_the_plan_projects_for_the_same_schedule():
    # static mask, circular sieve: every epoch trains the same active set at one density.
    cfg = from_dict({"epochs": 3, "interval": 1, "data": {"train_size": 200, "num_classes": 4, "image_size": 16},
                     "model": {"width": 0.25}, "sparsity": {"target": 0.8, "algorithm": "static"},
                     "sieve": {"ratio": 0.25}})
    p = project(cfg)
    # the measured densities a static 80% sparsifier reports: exact mask counts
    t = _trainer(cfg, dst_schedule.mask_densities(cfg, arch_mod.describe(cfg.model, 4, 16).layer_specs()))
    ledger = Ledger(cfg)
    ledger.on_run_start(t)
    for e in range(3):
        rec = _epoch(ledger, t, e, [64, 64, 22])   # 150 active samples
        assert rec["flops_epoch"]["spent"] == pytest.approx(p["epochs"][e]["flops"]["spent"], rel=1e-9)
    tot = ledger.totals()
    assert tot["spent"] == pytest.approx(p["flops"]["spent"], rel=1e-9)
    assert tot["dense"] == pytest.approx(p["flops"]["dense"], rel=1e-12)
    for k, v in p["flops"]["saved"].items():
        assert tot["saved"][k] == pytest.approx(v, rel=1e-9, abs=1e-6)
    assert rec["flops"]["spent"] == tot["spent"] and tot["epochs"] == 3


def test_frozen_prefix_moves_backward_flops_to_freeze_saving():
    cfg = from_dict({"epochs": 2, "data": {"train_size": 100, "num_classes": 4, "image_size": 16}, "model": {"width": 0.25},
                     "interval": 1})
    t = _trainer(cfg, {})
    ledger = Ledger(cfg)
    ledger.on_run_start(t)
    live = _epoch(ledger, t, 0, [100])["flops_epoch"]
    t.state.frozen_prefix = 3
    frozen = _epoch(ledger, t, 1, [100])["flops_epoch"]
    stem_and_two = sum(b for b in [2.0 * sum(l.macs for l in t.arch.block_layers(i)) for i in range(3)])
    assert frozen["saved"]["freeze"] == pytest.approx(100 * 2 * stem_and_two)
    assert live["spent"] - frozen["spent"] == pytest.approx(frozen["saved"]["freeze"])
    assert frozen["dense"] == live["dense"]


def test_resume_inside_an_epoch_keeps_the_partial_count():
    cfg = from_dict({"epochs": 2, "interval": 1, "data": {"train_size": 100, "num_classes": 4, "image_size": 16},
                     "model": {"width": 0.25}})
    t = _trainer(cfg, {})
    whole = Ledger(cfg)
    whole.on_run_start(t)
    _epoch(whole, t, 0, [50, 50])

    first = Ledger(cfg)
    first.on_run_start(t)
    first.on_epoch_start(t, 0)
    first.on_batch_end(t, list(range(50)), None, None)
    state = first.state_dict()
    resumed = Ledger(cfg)
    resumed.load_state_dict(state)
    resumed.on_run_start(t)
    resumed.on_epoch_start(t, 0)
    resumed.on_batch_end(t, list(range(50)), None, None)
    resumed.on_epoch_end(t, 0, {})
    assert resumed.totals() == whole.totals()
    # A checkpoint after an epoch closed carries no partial count into the next one.
    after = Ledger(cfg)
    after.load_state_dict(resumed.state_dict())
    after.on_run_start(t)
    rec = _epoch(after, t, 1, [100])
    assert rec["flops"]["spent"] == pytest.approx(2 * rec["flops_epoch"]["spent"])


def test_one_name_per_quantity_in_plan_ledger_and_old_run_folders():
    from engine.run.payloads import OVERHEAD, read_flops
    cfg = from_dict({"epochs": 2, "data": {"train_size": 100, "num_classes": 4, "image_size": 16},
                     "model": {"width": 0.25}, "interval": 1})
    p = project(cfg)
    # MEST spends nothing on top of its training: every overhead source is there, at 0
    assert "total" not in p["flops"] and p["flops"]["overhead"] == {k: 0.0 for k in OVERHEAD}
    assert set(p["epochs"][0]["flops"]) == {"spent", "dense", "saved", "overhead"}
    ledger = Ledger(cfg)
    t = _trainer(cfg, {})
    ledger.on_run_start(t)
    _epoch(ledger, t, 0, [100])
    assert set(ledger.totals()) == {"spent", "dense", "saved", "overhead", "epochs"}
    # a run folder written before the rename: the plan's spent FLOPs were called "total"
    old = {"total": 5.0, "dense": 9.0, "saved": {"sparsity": 1.0, "freeze": 2.0, "sieve": 1.0}}
    assert read_flops(old) == {"spent": 5.0, "dense": 9.0, "saved": {"sparsity": 1.0, "freeze": 2.0, "sieve": 1.0},
                               "overhead": {}}
    assert read_flops({"dense": 1.0}) is None and read_flops(None) is None
    # a checkpoint of an older ledger (no overhead) resumes
    ledger.load_state_dict({"total": old, "epochs_counted": 1})
    assert ledger.totals()["spent"] == 5.0 and ledger.totals()["overhead"] == {k: 0.0 for k in OVERHEAD}
