"""Freezer on a real small model: frozen blocks really stop (weights, BN statistics,
optimizer state), events follow the plan, the resume phase unfreezes, resume is exact."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from engine.component import LoopState
from engine.config import from_dict
from engine.cost.projection import project
from engine.freezing.freezer import Freezer
from engine.models import build_model
from engine.sparsity import schedule as dst_schedule
from engine.sparsity.masks import keep_count
from engine.training.lr_schedule import block_lr


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # tiny tensors: thread hand-offs on a shared 2-core box made these tests 30x slower
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def small_cfg(**over):
    d = {"model": {"name": "resnet20", "width": 0.25},
         "data": {"name": "synthetic", "image_size": 8, "train_size": 64, "test_size": 16, "num_classes": 10},
         "epochs": 8, "interval": 1, "batch_size": 16, "seed": 0,
         "sparsity": {"target": 0.0}, "freeze": {"target": 0.1}}
    cfg = from_dict(d)
    return cfg.replace(**over) if over else cfg


class MiniTrainer:
    """The trainer attributes the freezer relies on (docs/architecture.md), and a loop in the
    trainer's order: model.train(), component on_epoch_start, per-block LRs, batches."""

    def __init__(self, cfg):
        torch.manual_seed(cfg.seed)
        self.cfg, self.epoch, self.events = cfg, 0, []
        self.plan = project(cfg)
        self.model = build_model(cfg, 10)
        self.optimizer = torch.optim.SGD(
            [{"params": list(b.parameters()), "block": n} for b, n in zip(self.model.blocks, self.model.block_names)],
            lr=cfg.optim.lr, momentum=0.9, weight_decay=1e-3)
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(64, 3, 8, 8, generator=g)
        self.y = torch.randint(0, 10, (64,), generator=g)
        self.freezer = Freezer(cfg)
        self.state = LoopState()
        self.block_lr_end = [cfg.epochs] * len(self.model.blocks)
        self.lr_override = [None] * len(self.model.blocks)

    def enter_epoch(self, epoch):
        # what Trainer._enter_epoch writes from the freezer's answers
        self.state.epoch, self.state.frozen_prefix = epoch, self.freezer.frozen_prefix(epoch)
        self.model.frozen_prefix = self.state.frozen_prefix
        self.lr_override = self.freezer.lr_overrides(epoch, len(self.model.blocks))

    def start(self):
        self.freezer.on_run_start(self)          # takes the plan from self.plan
        self.block_lr_end = self.freezer.block_lr_end(len(self.model.blocks))
        self.enter_epoch(self.epoch)
        self.freezer.on_run_start(self)          # re-applied at the resume epoch, as the trainer does

    def emit(self, name, **fields):
        self.events.append((name, fields))

    def run_epoch(self, epoch, after_backward=None):
        self.epoch = epoch
        self.model.train()
        self.enter_epoch(epoch)
        self.freezer.on_epoch_start(self, epoch)
        for i, group in enumerate(self.optimizer.param_groups):
            over = self.lr_override[i]
            group["lr"] = over if over is not None else block_lr(self.cfg, epoch, self.block_lr_end[i])
        for s in range(0, 64, 16):
            loss = F.cross_entropy(self.model(self.x[s:s + 16]), self.y[s:s + 16])
            loss.backward()
            if after_backward:
                after_backward(self)
            self.optimizer.step()
            # set_to_none=False keeps zero tensors: the freezer must still stop SGD
            self.optimizer.zero_grad(set_to_none=False)


def block_state(model, i):
    block = model.blocks[i]
    return {k: v.detach().clone() for k, v in block.state_dict().items()}


def momentum(opt, params):
    return [opt.state[p]["momentum_buffer"].clone() if "momentum_buffer" in opt.state.get(p, {}) else None
            for p in params]


def same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_frozen_blocks_are_bit_identical_and_take_no_step():
    cfg = small_cfg()
    t = MiniTrainer(cfg)
    plan = t.plan["freeze_plan"]
    t.start()
    assert t.block_lr_end == plan["block_lr_end"]
    frozen_at = {t.model.block_names.index(n): e for n, e in plan["freeze_epochs"].items()}
    assert len(frozen_at) >= 2
    snaps, moms = {}, {}

    def no_grads(tr):
        for i in range(tr.freezer.frozen_prefix(tr.epoch)):
            assert all(p.grad is None and not p.requires_grad for p in tr.model.blocks[i].parameters())
        assert all(p.grad is not None for p in tr.model.blocks[-1].parameters())

    for e in range(cfg.epochs):
        before_last = block_state(t.model, len(t.model.blocks) - 1)
        t.run_epoch(e, no_grads)
        for i, fe in frozen_at.items():
            if e == fe - 1:
                # end of its last active epoch = its state when it freezes
                snaps[i] = block_state(t.model, i)
                moms[i] = momentum(t.optimizer, list(t.model.blocks[i].parameters()))
        assert not same(before_last, block_state(t.model, len(t.model.blocks) - 1))  # not vacuous
    for i in frozen_at:
        after = block_state(t.model, i)
        assert same(snaps[i], after), f"block {i} changed after freezing (weights or BN statistics)"
        assert any("running_mean" in k for k in after)
        for m0, m1 in zip(moms[i], momentum(t.optimizer, list(t.model.blocks[i].parameters()))):
            assert m0 is not None and torch.equal(m0, m1)
        assert not t.model.blocks[i].training          # BN in eval despite model.train()
    # events: one freeze per block, at its planned epoch, with a growing planned saving
    freezes = [f for n, f in t.events if n == "freeze"]
    assert [(f["block"], f["epoch"]) for f in freezes] == list(plan["freeze_epochs"].items())
    assert [f["block_index"] for f in freezes] == sorted(frozen_at)
    saved = [f["flops_saved"] for f in freezes]
    assert saved == sorted(saved) and saved[-1] > 0
    assert not any(n == "unfreeze" for n, _ in t.events)


def test_single_shot_resume_unfreezes_at_resume_lr():
    cfg = small_cfg(**{"freeze.scheme": "single_shot_resume", "freeze.target": 0.05, "freeze.resume_epochs": 2})
    t = MiniTrainer(cfg)
    plan = t.plan["freeze_plan"]
    assert plan["resume_epoch"] == 6
    t.start()
    for e in range(cfg.epochs):
        t.run_epoch(e)
        if e == 5:
            assert t.model.frozen_prefix > 0
            assert not any(p.requires_grad for p in t.model.blocks[0].parameters())
    assert t.model.frozen_prefix == 0
    assert all(p.requires_grad for p in t.model.parameters()) and t.model.blocks[0].training
    assert t.lr_override == [cfg.freeze.resume_lr] * len(t.model.blocks)
    assert all(g["lr"] == cfg.freeze.resume_lr for g in t.optimizer.param_groups)
    unfreezes = [f for n, f in t.events if n == "unfreeze"]
    n_frozen = len(plan["freeze_epochs"])
    assert [f["block_index"] for f in unfreezes] == list(range(n_frozen - 1, -1, -1))
    assert all(f["epoch"] == 6 for f in unfreezes)


def test_periodic_freezes_and_unfreezes_a_prefix():
    cfg = small_cfg(**{"freeze.scheme": "periodic", "freeze.target": 0.1})
    t = MiniTrainer(cfg)
    t.start()
    for e in range(cfg.epochs):
        t.run_epoch(e)
        k = t.freezer.frozen_prefix(e)
        assert t.model.frozen_prefix == k
        flags = [any(p.requires_grad for p in b.parameters()) for b in t.model.blocks]
        assert flags == [False] * k + [True] * (len(flags) - k)
    names = [n for n, _ in t.events]
    assert "freeze" in names and "unfreeze" in names


def test_resume_mid_run_continues_identically():
    cfg = small_cfg()
    full = MiniTrainer(cfg)
    full.start()
    for e in range(cfg.epochs):
        full.run_epoch(e)

    part = MiniTrainer(cfg)
    part.start()
    stop = 5                      # stopped after epoch 4, blocks already frozen
    for e in range(stop):
        part.run_epoch(e)
    assert part.freezer.frozen_prefix(stop - 1) > 0
    ckpt = {"model": {k: v.clone() for k, v in part.model.state_dict().items()},
            "opt": part.optimizer.state_dict(), "freezer": part.freezer.state_dict()}

    resumed = MiniTrainer(cfg)                  # a fresh process: model rebuilt unfrozen
    resumed.model.load_state_dict(ckpt["model"])
    resumed.optimizer.load_state_dict(ckpt["opt"])
    resumed.freezer.load_state_dict(ckpt["freezer"])
    resumed.epoch = stop
    resumed.start()
    assert resumed.model.frozen_prefix == resumed.freezer.frozen_prefix(stop)
    for e in range(stop, cfg.epochs):
        resumed.run_epoch(e)
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    # the resumed run emits only the events of the epochs it ran, none twice
    ev_full = [(n, f["block"], f["epoch"]) for n, f in full.events if f["epoch"] >= stop]
    assert ev_full                              # blocks still freeze after the resume point
    assert [(n, f["block"], f["epoch"]) for n, f in resumed.events] == ev_full
    # mid-epoch resume: the state is restored without repeating the epoch's events
    again = MiniTrainer(cfg)
    again.freezer.load_state_dict(resumed.freezer.state_dict())
    again.epoch = cfg.epochs - 1
    again.start()
    again.freezer.on_epoch_start(again, cfg.epochs - 1)
    assert again.events == [] and again.model.frozen_prefix == full.model.frozen_prefix


def test_freezer_writes_nothing_on_the_trainer():
    # The trainer writes the frozen prefix and the LR overrides from the freezer's answers
    # (Trainer._enter_epoch); the freezer only switches its blocks' parameters.
    cfg = small_cfg(**{"freeze.scheme": "single_shot_resume", "freeze.target": 0.05, "freeze.resume_epochs": 2})
    plan = project(cfg)["freeze_plan"]
    model = build_model(cfg, 10)
    t = SimpleNamespace(cfg=cfg, model=model, state=LoopState(), emit=lambda *a, **k: None)
    fz = Freezer(cfg, plan)
    e = plan["resume_epoch"] - 1
    t.state.epoch, t.state.frozen_prefix = e, fz.frozen_prefix(e)
    assert t.state.frozen_prefix > 0
    fz.on_run_start(t)
    fz.on_epoch_start(t, e)
    assert vars(t).keys() == {"cfg", "model", "state", "emit"}       # no lr_override, no block_lr_end
    assert model.frozen_prefix == 0                                   # the trainer sets it, not the freezer
    assert not any(p.requires_grad for p in model.blocks[0].parameters())
    assert fz.lr_overrides(e, 3) == [None] * 3
    assert fz.lr_overrides(plan["resume_epoch"], 3) == [cfg.freeze.resume_lr] * 3
    assert fz.block_lr_end(len(model.blocks)) == plan["block_lr_end"]


def test_off_is_a_no_op():
    cfg = small_cfg(**{"freeze.target": 0.0})
    t = MiniTrainer(cfg)
    assert t.plan["freeze_plan"] is None
    t.start()
    t.run_epoch(0)
    assert t.freezer.frozen_prefix(0) == 0 and t.model.frozen_prefix == 0
    assert t.block_lr_end == [cfg.epochs] * len(t.model.blocks) and t.events == []


# ---------------------------------------------------------------- with the real trainer

def _real_cfg(tmp_path):
    return small_cfg(**{"device": "cpu", "run_dir": str(tmp_path), "sparsity.target": 0.5,
                        "checkpoint.every": 1, "checkpoint.keep": 20})


def _trainer(cfg, run_dir, stop_at_freeze_epoch=None):
    import io

    from engine.run.control import CommandChannel
    from engine.run.telemetry import Emitter
    from engine.training.trainer import Trainer

    commands = CommandChannel()

    class Recorder(Emitter):
        events = []

        def emit(self, name, **fields):
            self.events.append((name, fields))
            if name == "freeze" and fields["epoch"] == stop_at_freeze_epoch:
                commands.request("stop", "test")      # stops after this epoch's first batch
            return super().emit(name, **fields)

    run_dir.mkdir(parents=True, exist_ok=True)
    emitter = Recorder(run_dir, stream=io.StringIO(), progress_bar=False)
    return Trainer(cfg, run_dir, emitter, commands), emitter


def _block_tensors(state_dict, block):
    return {k: v for k, v in state_dict.items() if k.startswith(block + ".")}


def test_real_trainer_freeze_and_resume_mid_freeze(tmp_path):
    from engine.training import checkpoint as ckpt

    cfg = _real_cfg(tmp_path)
    full, full_em = _trainer(cfg, tmp_path / "full")
    plan = full.plan["freeze_plan"]
    assert plan["frozen_prefix"][:5] == [0, 0, 0, 1, 2]     # blocks freeze at 3 and 4 at least
    assert full.fit() == "completed"
    final = full.model.state_dict()
    opt_final = full.optimizer.state_dict()
    masks = full.sparsifier.masks
    pruned_at_freeze = 0
    for name, epoch in plan["freeze_epochs"].items():
        # the checkpoint tagged `epoch` holds the state at the start of that epoch; entering
        # the frozen prefix the block's sparse layers are pruned to the target (weights and
        # momentum zeroed where pruned), and nothing changes after that
        at_freeze = ckpt.load(tmp_path / "full" / "checkpoints" / f"epoch_{epoch:04d}.pt")
        before, after = _block_tensors(at_freeze["model"], name), _block_tensors(final, name)
        keep = lambda k, v: v * masks[k[:-len(".weight")]] if k[:-len(".weight")] in masks else v
        assert before and all(torch.equal(keep(k, before[k]), after[k]) for k in before), name
        pruned_at_freeze += sum(not torch.equal(keep(k, v), v) for k, v in before.items())
        assert any(k.endswith("running_var") for k in before)
        b = full.block_names.index(name)
        ids = at_freeze["optimizer"]["param_groups"][b]["params"]
        keys = [f"{name}.{pn}" for pn, _ in full.model.blocks[b].named_parameters()]
        for k, i in zip(keys, ids):
            assert torch.equal(keep(k, at_freeze["optimizer"]["state"][i]["momentum_buffer"]),
                               opt_final["state"][i]["momentum_buffer"]), k
    assert pruned_at_freeze > 0          # blocks froze above the target: the prune happened
    # every sparse layer ends at exactly its target count, frozen blocks included
    sp = full.sparsifier
    target = dst_schedule.layer_densities(cfg, sp._schedule_layers, cfg.sparsity.target)
    assert masks and all(int(m.sum()) == keep_count(m.numel(), target[n]) for n, m in masks.items())
    # the finished run's freeze share of its training FLOPs is the planned one
    flops = [f for n, f in full_em.events if n == "run_finished"][0]["flops"]
    realised = flops["saved"]["freeze"] / (flops["spent"] + flops["saved"]["freeze"])
    assert abs(realised - plan["achieved"]) < 0.01, (realised, plan["achieved"])
    assert abs(plan["achieved"] - cfg.freeze.target) < 0.02    # 8 coarse epochs: within 2 points
    head = full.block_names[-1]
    start = ckpt.load(tmp_path / "full" / "checkpoints" / "epoch_0003.pt")["model"]
    assert not torch.equal(start[f"{head}.fc.weight"], final[f"{head}.fc.weight"])   # not vacuous

    # stop in the middle of epoch 4 (a freeze epoch), resume in a fresh trainer
    part, part_em = _trainer(cfg, tmp_path / "part", stop_at_freeze_epoch=4)
    assert part.fit() == "stopped"
    assert part.epoch == 4 and part.batch == 1
    resumed, res_em = _trainer(cfg, tmp_path / "part")
    resumed.load_checkpoint()
    assert resumed.fit() == "completed"
    for k, v in final.items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    freezes = lambda evs: [(f["epoch"], f["block"]) for n, f in evs if n == "freeze"]
    assert freezes(part_em.events) + freezes(res_em.events) == freezes(full_em.events)
    ends = lambda evs: {f["epoch"]: (f["frozen_blocks"], f["lrs"]) for n, f in evs if n == "epoch_end"}
    assert ends(res_em.events) == {e: v for e, v in ends(full_em.events).items() if e >= 4}
    lrs = ends(full_em.events)[5][1]
    assert lrs["stem"] == cfg.optim.end_lr and lrs[head] > cfg.optim.end_lr   # block-wise cosine
