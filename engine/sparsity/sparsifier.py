"""The sparse-training component: applies the chosen method plug-in (engine.sparsity.methods:
MEST EM&S (default), MEST EM, static, SET, RigL, SNIP, GraSP) to the model.

Masks are kept as float tensors shaped like the weights, so the per-step work is two
fused ``torch._foreach_mul_`` calls (gradients after backward, weights after the step)
over the layers of unfrozen blocks. Schedule numbers come from the method's pure schedule,
the same object the planner prices; the method's rule decides what is dropped and grown
(at epoch starts, or after a step's backward for step-based methods such as RigL).

A block entering the frozen prefix has its sparse layers pruned to their target density
(the final RM(s) of MEST, done early for that block: no regrowth, momentum cleared at the
pruned positions), then its mask stays fixed while frozen. So every sparse layer of a run
ends at exactly its target count, even under MEST EM&S when a block freezes during the
mask search (at the looser soft-bound density). engine.cost.projection prices it the same way.
"""
from __future__ import annotations

import torch

from engine.component import Component
from engine.cost.projection import samples_per_epoch
from engine.sparsity import schedule as dst_schedule
from engine.training.seeding import gen

from . import masks as M
from . import scoring
from .methods import method_for


class Sparsifier(Component):
    name = "sparsifier"

    def __init__(self, cfg):
        self.cfg = cfg
        self.enabled = cfg.sparsity.target > 0.0
        self.method = method_for(cfg)
        self.score_lambda = float(self.method.param("score_lambda")) if "score_lambda" in self.method.fields else 0.0
        self._step0 = 0                                         # global step of the epoch's first batch
        self._step_based = self.enabled and self.method.step_based
        self._all_layers: list[str] = []
        self._layers: list[tuple[str, torch.nn.Module]] = []   # masked layers, forward order
        self._schedule_layers: list[tuple] = []                 # (name, shape, tags) for dst_schedule
        self._block_of: dict[str, int] = {}
        self._fmask: dict[str, torch.Tensor] = {}               # float 0/1 masks
        self._kept: dict[str, int] = {}                         # kept positions per layer
        self._numel: dict[str, int] = {}
        self._last_update = -1
        self._pending: dict | None = None
        self._built = False
        # hot path: weights and masks of the masked layers in unfrozen blocks
        self._active_names: list[str] = []
        self._active_w: list[torch.Tensor] = []
        self._active_m: list[torch.Tensor] = []
        self._frozen = 0
        self._keep_grad = False
        self._grads: dict[str, torch.Tensor] = {}
        self._target: dict[str, int] | None = None                # kept count at the target sparsity

    # ------------------------------------------------------------ set-up
    def on_run_start(self, trainer) -> None:
        model = trainer.model
        prunable = model.prunable()
        self._all_layers = [n for n, _ in prunable]
        self._built = True
        if not self.enabled:
            return
        tags = model.layer_tags()
        self._block_of = model.layer_block()
        self._schedule_layers = [(n, tuple(m.weight.shape), tags[n]) for n, m in prunable]
        dense = dst_schedule.dense_layer_names(self.cfg, self._schedule_layers)
        self._layers = [(n, m) for n, m in prunable if n not in dense]
        self._numel = {n: m.weight.numel() for n, m in self._layers}
        if self._step_based:
            self.method = method_for(self.cfg, samples_per_epoch(self.cfg, int(trainer.train_size)))
        if self._pending is not None:
            self._restore(self._pending)
            self._pending = None
        elif hasattr(self.method, "masks"):
            self._score_masks(trainer)
        else:
            self._initial_masks()
        with torch.no_grad():
            for n, m in self._layers:
                m.weight.mul_(self._fmask[n])
        self._recount()
        if not self.method.exact_plan:   # data-chosen layer densities: a frozen block keeps its mask
            self._target = dict(self._kept)
        self._refresh_active(trainer.state.frozen_prefix)

    def _initial_masks(self) -> None:
        """Random positions at the epoch-0 density, or (``init_mask: magnitude``, MEST's code)
        the init's largest |w| at the target density, then zero-valued slots grown at random
        up to the epoch-0 density (EM&S's looser soft bound)."""
        start = dst_schedule.layer_densities(self.cfg, self._schedule_layers,
                                             dst_schedule.training_sparsity(self.cfg, 0))
        target = dst_schedule.layer_densities(self.cfg, self._schedule_layers, self.cfg.sparsity.target)
        for n, m in self._layers:
            g = gen(self.cfg.seed, "mask", 0, n)
            if self.cfg.sparsity.init_mask == "magnitude":
                w = m.weight
                keep = M.prune(w.detach().cpu(), torch.ones(w.shape, dtype=torch.bool), target[n])
                with torch.no_grad():
                    w.mul_(keep.to(device=w.device, dtype=w.dtype))   # grown slots start at zero
                mask = M.grow(keep, start[n], g)
            else:
                mask = M.random_mask(m.weight.shape, start[n], g)
            self._fmask[n] = mask.to(device=m.weight.device, dtype=m.weight.dtype)

    def _score_masks(self, trainer) -> None:
        """One-shot masks from the method's scores on seeded training batches (SNIP, GraSP).
        The model's state (BatchNorm statistics included) is left as it was."""
        model = trainer.model
        n = self.method.scored_samples(int(trainer.train_size))
        g = gen(self.cfg.seed, "score", 0)
        if getattr(self.method, "class_balanced", False):   # GraSP: samples_per_class, as the official code
            order = scoring.balanced_order(trainer.data.train_labels(), n, g)
        else:
            order = torch.randperm(int(trainer.train_size), generator=g)[:n]
        batches = [(x, y) for x, y, _ in trainer.data.train_batches(order, 0, 0)]
        saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
        weights = [m.weight for _, m in self._layers]
        keep = M.keep_count(sum(w.numel() for w in weights), 1.0 - self.cfg.sparsity.target)
        was_training = model.training
        model.train()
        masks = self.method.masks(model, weights, batches, keep)
        model.load_state_dict(saved)
        model.zero_grad(set_to_none=True)
        model.train(was_training)
        for (n_, m), mask in zip(self._layers, masks):
            self._fmask[n_] = mask.to(device=m.weight.device, dtype=m.weight.dtype)
        trainer.emit("mask_update", epoch=0, layers=[
            {"name": n_, "density": float(self._fmask[n_].sum()) / self._fmask[n_].numel(), "changed": 0.0,
             "frozen": False} for n_, _ in self._layers], density=keep / max(1, sum(w.numel() for w in weights)),
            prune_to=self.cfg.sparsity.target, grow_to=self.cfg.sparsity.target, reason="scored")

    def _restore(self, state: dict) -> None:
        saved = state.get("masks", {})
        names = [n for n, _ in self._layers]
        if sorted(saved) != sorted(names):
            raise ValueError(f"checkpoint masks do not match the model's sparse layers: "
                             f"checkpoint has {sorted(saved)}, model has {sorted(names)}")
        for n, m in self._layers:
            mask = saved[n]
            if tuple(mask.shape) != tuple(m.weight.shape):
                raise ValueError(f"checkpoint mask {n} has shape {tuple(mask.shape)}, "
                                 f"the weight has {tuple(m.weight.shape)}")
            self._fmask[n] = mask.to(device=m.weight.device, dtype=m.weight.dtype)
        self._last_update = int(state.get("last_update", -1))
        self._grads = {n: g.to(dict(self._layers)[n].weight.device) for n, g in state.get("grads", {}).items()}

    # ------------------------------------------------------------ per epoch
    def on_epoch_start(self, trainer, epoch: int) -> None:
        if not self.enabled:
            return
        frozen = trainer.state.frozen_prefix
        if self._step_based:
            self._step0 = self.method.epoch_start_step(epoch)
        update = self.method.mask_update(epoch)
        # epoch > last update: a run resumed mid-epoch must not apply the update twice
        if update is not None and epoch > self._last_update:
            self._update(trainer, epoch, frozen, *update)
        elif frozen:
            self._prune_frozen(trainer, epoch, frozen)
        self._refresh_active(frozen)
        # The prune score needs the gradient of the last step before the next update.
        self._keep_grad = self.score_lambda > 0 and self.method.mask_update(epoch + 1) is not None

    def _target_counts(self) -> dict[str, int]:
        if self._target is None:
            dens = dst_schedule.layer_densities(self.cfg, self._schedule_layers, self.cfg.sparsity.target)
            self._target = {n: M.keep_count(self._numel[n], dens[n]) for n, _ in self._layers}
        return self._target

    def _freeze_record(self, n: str, m, opt_state) -> dict:
        """A layer of a frozen block: pruned to its target count if it is above (MEST EM&S's
        final RM(s), done early for this block, so the run ends at the target sparsity),
        otherwise left alone. Idempotent: a layer at its target is never touched again, so a
        run resumed mid-epoch prunes nothing twice."""
        target = self._target_counts()[n]
        # freeze.prune_frozen false: the block keeps the mask it froze with (paper's rule)
        if self._kept[n] <= target or not self.cfg.freeze.prune_frozen:
            return {"name": n, "density": self._kept[n] / self._numel[n], "changed": 0.0, "frozen": True}
        w = m.weight
        old = self._fmask[n].bool()
        keep = M.prune(w, old, target / self._numel[n], self._grads.get(n), self.score_lambda)
        self._apply_mask(n, w, keep, keep, opt_state)
        return {"name": n, "density": self._kept[n] / self._numel[n],
                "changed": M.changed_fraction(old, keep), "frozen": True, "reason": "freeze"}

    def _apply_mask(self, n: str, w: torch.Tensor, keep: torch.Tensor, new: torch.Tensor, opt_state) -> None:
        keep_f = keep.to(w.dtype)
        w.mul_(keep_f)  # pruned weights go to 0; regrown ones therefore start at 0
        buf = opt_state.get(w, {}).get("momentum_buffer")
        if buf is not None:
            buf.mul_(keep_f)
        self._fmask[n] = new.to(w.dtype)
        self._kept[n] = int(new.sum())

    def _prune_frozen(self, trainer, epoch: int, frozen: int) -> None:
        """No scheduled update this epoch: still bring newly frozen blocks to the target."""
        if not self.cfg.freeze.prune_frozen:
            return
        opt_state = trainer.optimizer.state if trainer.optimizer is not None else {}
        target = self._target_counts()
        with torch.no_grad():
            records = [self._freeze_record(n, m, opt_state) for n, m in self._layers
                       if self._block_of[n] < frozen and self._kept[n] > target[n]]
        if records:
            s = self.cfg.sparsity.target
            trainer.emit("mask_update", epoch=epoch, layers=records, density=self.overall_density(),
                         prune_to=s, grow_to=s, reason="freeze")

    def _update(self, trainer, epoch: int, frozen: int, prune_to: float, grow_to: float) -> None:
        args = self.method.layer_plan((prune_to, grow_to), self._schedule_layers)
        opt_state = trainer.optimizer.state if trainer.optimizer is not None else {}
        records = []
        with torch.no_grad():
            for n, m in self._layers:
                if self._block_of[n] < frozen:  # a frozen block's mask stays at the target
                    records.append(self._freeze_record(n, m, opt_state))
                    continue
                w = m.weight
                old = self._fmask[n].bool()
                keep, new = self.method.update_layer(w, old, args.get(n), self._grads.get(n),
                                                     gen(self.cfg.seed, "grow", epoch, n))
                self._apply_mask(n, w, keep, new, opt_state)
                records.append({"name": n, "density": self._kept[n] / self._numel[n],
                                "changed": M.changed_fraction(old, new), "frozen": False})
        self._grads = {}
        self._last_update = epoch
        trainer.emit("mask_update", epoch=epoch, layers=records, density=self.overall_density(),
                     prune_to=prune_to, grow_to=grow_to)

    def _refresh_active(self, frozen: int) -> None:
        self._frozen = frozen
        active = [(n, m) for n, m in self._layers if self._block_of[n] >= frozen]
        self._active_names = [n for n, _ in active]
        self._active_w = [m.weight for _, m in active]
        self._active_m = [self._fmask[n] for n, _ in active]

    def _recount(self) -> None:
        self._kept = {n: int(self._fmask[n].sum()) for n, _ in self._layers}

    # ------------------------------------------------------------ per step (hot path)
    def after_backward(self, trainer) -> None:
        if not self._active_w:
            return
        if self._step_based:
            step = self._step0 + trainer.state.batch_index
            fraction = self.method.step_update(step)
            if fraction is not None:
                self._step_update(trainer, step, fraction)
                trainer.state.skip_step = True   # the reference updates the mask instead of the weights
        grads = [w.grad for w in self._active_w]
        masks = self._active_m
        if any(g is None for g in grads):
            pairs = [(g, mk) for g, mk in zip(grads, masks) if g is not None]
            grads, masks = [g for g, _ in pairs], [mk for _, mk in pairs]
            if not grads:
                return
        torch._foreach_mul_(grads, masks)
        # Only the epoch's last step's gradient feeds the next update's score: copy just that one
        # (trainers that do not say where the epoch ends get a copy every step).
        st = trainer.state
        if self._keep_grad and st.batch_index == st.batches_in_epoch - 1:
            self._store_grads()

    def _step_update(self, trainer, step: int, fraction: float) -> None:
        """A step-based update (RigL) from the dense gradients of this step, before they are
        masked; frozen blocks are not in the active list, so their masks stay. As the
        reference (google-research/rigl sparse_optimizers.py, ``_get_update_op`` without
        ``reinit_when_same``): a weight dropped and regrown in the same update keeps its value
        and momentum; only connections that were off start at zero; and the step's weight
        update is skipped (``cond_mask_update_op``: mask update *instead of* the step)."""
        opt_state = trainer.optimizer.state if trainer.optimizer is not None else {}
        records = []
        with torch.no_grad():
            for n, w in zip(self._active_names, self._active_w):
                if w.grad is None:
                    continue
                old = self._fmask[n].bool()
                keep, new = self.method.step_layer(w, old, w.grad, fraction)
                self._apply_mask(n, w, new, new, opt_state)   # off -> on positions are 0 already
                records.append({"name": n, "density": self._kept[n] / self._numel[n],
                                "changed": M.changed_fraction(old, new), "frozen": False})
        self._refresh_active(self._frozen)
        s = self.cfg.sparsity.target
        trainer.emit("mask_update", epoch=trainer.state.epoch, step=step, fraction=fraction,
                     layers=records, density=self.overall_density(), prune_to=s, grow_to=s)

    def _store_grads(self) -> None:
        with torch.no_grad():
            for n, w in zip(self._active_names, self._active_w):
                if w.grad is None:
                    continue
                buf = self._grads.get(n)
                if buf is None:
                    self._grads[n] = w.grad.detach().clone()
                else:
                    buf.copy_(w.grad)

    def after_step(self, trainer) -> None:
        if self._active_w:
            with torch.no_grad():
                torch._foreach_mul_(self._active_w, self._active_m)

    # ------------------------------------------------------------ queries
    @property
    def masks(self) -> dict[str, torch.Tensor]:
        """Bool masks of the sparse layers (kept-dense layers have none)."""
        return {n: fm.bool() for n, fm in self._fmask.items()}

    def densities(self) -> dict[str, float]:
        """Current density of every prunable layer (1.0 for kept-dense layers and when off)."""
        out = {n: 1.0 for n in self._all_layers}
        out.update({n: k / self._numel[n] for n, k in self._kept.items()})
        return out

    def overall_density(self) -> float:
        """Fraction of weights kept over the sparse layers (1.0 when sparsity is off)."""
        total = sum(self._numel[n] for n in self._kept)
        return sum(self._kept.values()) / total if total else 1.0

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        if not self.enabled:
            return {}
        state = {"masks": {n: fm.bool().cpu() for n, fm in self._fmask.items()},
                 "last_update": self._last_update}
        if self._grads:
            state["grads"] = {n: g.cpu() for n, g in self._grads.items()}
        return state

    def load_state_dict(self, state: dict) -> None:
        if not self.enabled or not state:
            return
        if self._layers:  # already built: apply now
            self._restore(state)
            with torch.no_grad():
                for n, m in self._layers:
                    m.weight.mul_(self._fmask[n])
            self._recount()
            self._refresh_active(self._frozen)
        else:
            self._pending = state
