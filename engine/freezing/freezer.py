"""The freezer: applies the freeze plan (engine.freezing.schedule) to the model, epoch by epoch.

The plan is computed once, without torch, by ``engine.cost.projection.project`` (``trainer.plan
["freeze_plan"]``), so the run follows exactly the schedule the ``plan`` command and the
GUI preview show. A block in the frozen prefix

* has ``requires_grad=False`` on its parameters and ``grad=None``: SGD skips parameters
  without a gradient, so no weight decay and no momentum step touch them, and their
  optimizer state (momentum buffers) stays bit-identical;
* runs forward under ``torch.no_grad()`` (``BlockModel.frozen_prefix``): no activations
  kept, no backward through it;
* runs in eval mode: BatchNorm running statistics stop. ``BlockModel.train()`` re-applies
  this after the trainer's per-epoch ``model.train()``, so the order of the calls does not
  matter;
* is pruned once to its target density when it joins the frozen prefix (the sparsifier does
  it), then keeps that mask: the sparsifier reads ``trainer.state.frozen_prefix`` and skips it.

The freezer answers queries and the trainer writes what follows from them, in one place
(``Trainer._enter_epoch``): the frozen prefix (``trainer.state.frozen_prefix`` and
``model.frozen_prefix``) and the per-block learning rates (``block_lr_end(b)``: the epoch at
which block b's cosine reaches end_lr, its freeze epoch; ``lr_overrides(epoch)``:
``freeze.resume_lr`` for every block in single_shot_resume's final all-blocks phase). The
freezer itself only switches its blocks' parameters off and on, and emits the events.
"""
from __future__ import annotations

from typing import Any

from engine.analysis.adaptive import annealed_lr
from engine.component import Component
from engine.freezing.schedule import frozen_prefix as plan_prefix
from engine.run.payloads import FreezeSchedule


class Freezer(Component):
    name = "freezer"

    def __init__(self, cfg, plan: FreezeSchedule | None = None):
        self.cfg = cfg
        self.plan: FreezeSchedule | None = plan     # None: taken from trainer.plan at on_run_start
        # Last epoch whose freeze/unfreeze events were emitted: a run resumed in the middle
        # of an epoch re-applies the state without repeating that epoch's events.
        self._emitted_through = -1
        # freeze.scheme=adaptive: (from epoch, prefix) decided during the run, on top of the
        # plan (its deadlines); engine.analysis.adaptive decides, freeze_from records.
        self._early: list[tuple[int, int]] = []
        # adaptive: block -> (decided after epoch m, its LR in m, freeze epoch f); its LR
        # anneals from that LR to end_lr at f (engine.analysis.adaptive.annealed_lr)
        self._anneal: dict[int, tuple[int, float, int]] = {}

    # ---- queries
    def frozen_prefix(self, epoch: int) -> int:
        """Leading blocks frozen in ``epoch`` (0 when freezing is off)."""
        k = plan_prefix(self.plan, epoch)
        for start, prefix in self._early:
            if epoch >= start:
                k = max(k, prefix)
        return k

    def decided_prefix(self, epoch: int) -> int:
        """Leading blocks frozen in ``epoch`` or already decided to freeze later (adaptive)."""
        return max([self.frozen_prefix(epoch)] + [p for _, p in self._early])

    def freeze_from(self, epoch: int, prefix: int, anneal: tuple[int, float] | None = None) -> None:
        """Adaptive freezing: from ``epoch`` on, at least ``prefix`` leading blocks are frozen.

        ``anneal`` = (m, lr): the newly frozen blocks were found stable after epoch m, where
        they trained at ``lr``; until ``epoch`` their LR anneals from it to end_lr."""
        if self.plan is None or prefix <= self.decided_prefix(epoch):
            return
        before = self.decided_prefix(epoch)
        self._early.append((int(epoch), int(prefix)))
        if anneal is not None:
            m, lr = anneal
            for b in range(before, prefix):
                self._anneal[b] = (int(m), float(lr), int(epoch))

    def block_lr_end(self, n_blocks: int) -> list[int]:
        """Per block, the epoch at which its cosine learning rate reaches end_lr."""
        return list(self.plan["block_lr_end"]) if self.plan else [self.cfg.epochs] * n_blocks

    def lr_overrides(self, epoch: int, n_blocks: int) -> list[float | None]:
        """Per block, a learning rate replacing the schedule's in ``epoch`` (None: none)."""
        plan = self.plan or {}
        resume = plan.get("resume_epoch")
        lr = plan.get("resume_lr") if resume is not None and epoch >= resume else None
        out: list[float | None] = [lr] * n_blocks
        for b, (m, lr_from, f) in self._anneal.items():
            if b < n_blocks and out[b] is None and m < epoch < f:
                out[b] = annealed_lr(lr_from, self.cfg.optim.end_lr, m, f, epoch)
        return out

    def flops_saved_before(self, epoch: int) -> float:
        """FLOPs the plan saves by freezing in the epochs before ``epoch``."""
        return float(sum(self.plan["epoch_saving"][:epoch])) if self.plan else 0.0

    # ---- hooks
    def on_run_start(self, trainer) -> None:
        if self.plan is None:
            self.plan = (getattr(trainer, "plan", None) or {}).get("freeze_plan")
        n_blocks = len(trainer.model.blocks)
        if self.plan is not None and (len(self.plan["block_lr_end"]) != n_blocks
                                      or len(self.plan["frozen_prefix"]) != self.cfg.epochs):
                raise ValueError(f"freeze plan does not match the run: {len(self.plan['block_lr_end'])} blocks and "
                                 f"{len(self.plan['frozen_prefix'])} epochs planned, the model has {n_blocks} "
                                 f"blocks and the run {self.cfg.epochs} epochs")
        # After a resume the model is rebuilt unfrozen: restore the current epoch's state.
        self._apply(trainer)

    def on_epoch_start(self, trainer, epoch: int) -> None:
        if self.plan is None:
            return
        self._apply(trainer)
        if epoch <= self._emitted_through:
            return
        now = self.frozen_prefix(epoch)
        before = self.frozen_prefix(epoch - 1) if epoch > 0 else 0
        names = trainer.model.block_names
        if now > before:
            saved = self.flops_saved_before(epoch)
            planned = plan_prefix(self.plan, epoch)
            for b in range(before, now):
                trainer.emit("freeze", epoch=epoch, block=names[b], block_index=b, flops_saved=saved,
                             reason="schedule" if b < planned else "stable")
        for b in range(before - 1, now - 1, -1):
            trainer.emit("unfreeze", epoch=epoch, block=names[b], block_index=b)
        self._emitted_through = epoch

    def _apply(self, trainer) -> None:
        """Parameters of the frozen prefix (``trainer.state.frozen_prefix``) off, the rest on."""
        if self.plan is None:
            return
        model = trainer.model
        k = trainer.state.frozen_prefix
        for i, block in enumerate(model.blocks):
            frozen = i < k
            for p in block.parameters():
                if p.requires_grad == frozen:
                    p.requires_grad_(not frozen)
                if frozen:
                    # a stale gradient (zero_grad(set_to_none=False)) would still let SGD
                    # apply weight decay and momentum
                    p.grad = None

    # ---- checkpoint
    def state_dict(self) -> dict[str, Any]:
        return {"emitted_through": self._emitted_through, "early": [list(x) for x in self._early],
                "anneal": {str(b): list(v) for b, v in self._anneal.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._emitted_through = int(state.get("emitted_through", -1))
        self._early = [(int(e), int(p)) for e, p in state.get("early", [])]
        self._anneal = {int(b): (int(v[0]), float(v[1]), int(v[2])) for b, v in state.get("anneal", {}).items()}
