"""The analyses as a training component (ARCHITECTURE.md: analyses are components).

Per step (``after_backward``): one fused ``torch._foreach_norm`` over the gradients the
step already has, summed per block on the device (no synchronisation). Per measurement
(engine.analysis.schedule, at the end of an epoch): one no-grad, eval-mode forward of the
fixed probe set capturing every block's output, whose centred Gram is compared with the
previous measurement's (linear CKA), and the top-half weight sets of the sparse layers
(read through the sparsifier's public ``masks``), compared with the previous set. At the
last epoch every measurement's sets are also compared with the final one (Fig. 1a).

Results go out as ``analysis`` events (docs/events.md), so the live views, past runs and
reports read them from the stream. The probe forwards' FLOPs are reported to the ledger
(``overhead_flops``) with the formula engine.cost.projection uses. With ``freeze.scheme: adaptive``
the component asks the freezer (``freeze_from``) to freeze the next block once it is
stable (engine.analysis.adaptive).
"""
from __future__ import annotations

import time
from typing import Any

import torch

from engine.component import Component
from engine.config import ConfigError
from engine.cost import costmodel
from engine.training.seeding import gen

from . import adaptive, final, metrics, schedule

PROBE_BATCH = 256


def probe_indices(seed: int, train_size: int, n: int) -> torch.Tensor:
    """The probe set: ``n`` training indices drawn by a generator keyed on the seed only, so
    every session of a run (and every run with this seed and dataset) uses the same ones."""
    return torch.randperm(int(train_size), generator=gen(seed, "analysis-probe"))[:n].sort().values


def _r(v: float | None) -> float | None:
    return None if v is None or v != v else round(float(v), 6)


class Analysis(Component):
    name = "analysis"

    def __init__(self, cfg):
        self.cfg = cfg
        self.enabled = bool(cfg.analysis.enabled)
        self.probe: torch.Tensor | None = None
        self.measure_epochs: list[int] = []
        # per block name: CKA with the previous measurement; mean similarity of its sparse layers
        self.cka: dict[str, list] = {}
        self.block_similarity: dict[str, list] = {}
        self.similarity: dict[str, list] = {}       # per sparse layer
        self._grams: dict[str, torch.Tensor] = {}   # previous measurement's centred Gram per block
        self._tops: list[dict[str, torch.Tensor]] = []   # packed top-half sets, one dict per measurement
        self._numel: dict[str, int] = {}
        self._grad_sum: torch.Tensor | None = None
        self._grad_steps = 0
        self._grad_epoch: int | None = None
        self._resume_grad: tuple | None = None
        self._params: list[torch.Tensor] = []
        self._param_block: torch.Tensor | None = None
        self._measured: int | None = None           # epoch whose probe FLOPs are due to the ledger
        self._probe_flops = 0.0

    # ------------------------------------------------------------ set-up
    def on_run_start(self, trainer) -> None:
        if not self.enabled:
            return
        if not getattr(trainer.model, "sequential", True):
            # CKA compares each block's output: a model that runs as a whole has none to read
            raise ConfigError([("analysis.enabled", f"the Section 3 analyses read each freeze block's output, "
                                f"and {self.cfg.model.name} runs as a whole; set analysis.enabled: false "
                                "(a built-in model or a factory returning a BlockModel supports them)")],
                              suggestions={"analysis.enabled": False})
        n = schedule.probe_samples(self.cfg, trainer.train_size)
        fresh = probe_indices(self.cfg.seed, trainer.train_size, n)
        if self.probe is not None and not torch.equal(self.probe, fresh):
            raise ValueError("analysis: the checkpoint's probe set differs from the one this seed and "
                             "dataset give; the training set changed since the run started")
        self.probe = fresh
        self.measure_epochs = schedule.measure_epochs(self.cfg)
        names = trainer.model.block_names
        for name in names:
            self.cka.setdefault(name, [])
            self.block_similarity.setdefault(name, [])

    def on_epoch_start(self, trainer, epoch: int) -> None:
        if not self.enabled:
            return
        # the conv and linear weights that get gradients this epoch (frozen blocks have none);
        # BatchNorm and biases stay out: Fig. 3b is about the layers' weight gradients
        params, owner = [], []
        for b, block in enumerate(trainer.model.blocks):
            for mod in block.modules():
                p = getattr(mod, "weight", None) if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)) else None
                if p is not None and p.requires_grad:
                    params.append(p)
                    owner.append(b)
        self._params = params
        dev = trainer.device
        self._param_block = torch.tensor(owner, dtype=torch.long, device=dev)
        nb = len(trainer.model.blocks)
        if self._resume_grad is not None and self._resume_grad[0] == epoch:
            self._grad_sum = self._resume_grad[1].to(dev)
            self._grad_steps = self._resume_grad[2]
        else:
            self._grad_sum = torch.zeros(nb, dtype=torch.float32, device=dev)
            self._grad_steps = 0
        self._resume_grad = None
        self._grad_epoch = epoch

    # ------------------------------------------------------------ per step (hot path)
    def after_backward(self, trainer) -> None:
        if not self._params:
            return
        grads = [p.grad for p in self._params]
        owner = self._param_block
        if any(g is None for g in grads):
            keep = [i for i, g in enumerate(grads) if g is not None]
            if not keep:
                return
            grads = [grads[i] for i in keep]
            owner = owner[torch.tensor(keep, device=owner.device)]
        sq = torch.stack(torch._foreach_norm(grads)).square_()
        per_block = torch.zeros_like(self._grad_sum).index_add_(0, owner, sq)
        self._grad_sum += per_block.sqrt_()
        self._grad_steps += 1

    # ------------------------------------------------------------ per epoch
    def on_epoch_end(self, trainer, epoch: int, record: dict) -> None:
        if not self.enabled:
            return
        names = trainer.model.block_names
        frozen = int(getattr(trainer.model, "frozen_prefix", 0))
        grad = (self._grad_sum / max(1, self._grad_steps)).tolist() if self._grad_sum is not None else []
        fields: dict[str, Any] = {
            "epoch": epoch, "measured": False,
            "grad_norm": {n: (None if b < frozen or b >= len(grad) else _r(grad[b])) for b, n in enumerate(names)},
            "steps": self._grad_steps,
        }
        self._grad_epoch = None
        if schedule.measures(self.cfg, epoch):
            fields.update(self._measure(trainer, epoch))
            if epoch == self.cfg.epochs - 1:
                fields["similarity_to_final"] = self._against_final_mask(trainer)
                fields["rank_overlap_to_final"] = self._against_final()
                fields["cka_to_final"] = self._cka_to_final(trainer)
                fields["measure_epochs"] = list(self._measured_epochs())
            decision = self._adaptive(trainer, epoch)
            if decision is not None:
                fields["adaptive"] = decision
        trainer.emit("analysis", **fields)

    def overhead_flops(self, trainer, epoch: int) -> dict[str, float]:
        if self._measured != epoch:
            return {}
        return {schedule.SOURCE: self._probe_flops}

    # ------------------------------------------------------------ measurement
    def _measured_epochs(self) -> list[int]:
        return [e for e in self.measure_epochs if e <= (self._measured if self._measured is not None else -1)]

    @torch.no_grad()
    def _measure(self, trainer, epoch: int) -> dict:
        t0 = time.monotonic()
        model = trainer.model
        names = model.block_names
        was_training = model.training
        model.eval()     # BatchNorm running statistics stay as training left them
        try:
            outs: list[list[torch.Tensor]] = [[] for _ in names]
            speed = trainer.speed            # the run's precision: the probe sees the model as it trains
            for x in trainer.data.probe_batches(self.probe, PROBE_BATCH):
                x = speed.inputs(x)
                with speed.autocast():
                    for b, block in enumerate(model.blocks):
                        x = block(x)
                        outs[b].append(x.reshape(x.shape[0], -1).float())   # the Gram in fp32 or better
        finally:
            model.train(was_training)
        cka = {}
        for b, name in enumerate(names):
            gram = metrics.centered_gram(torch.cat(outs[b]))
            outs[b] = []
            prev = self._grams.get(name)
            cka[name] = _r(metrics.cka_from_grams(prev.to(gram.device), gram)) if prev is not None else None
            self._grams[name] = gram
            self.cka[name].append(cka[name])
        self._keep_grams(trainer, epoch)
        sim, block_sim = self._similarity(trainer)
        for name in names:
            self.block_similarity[name].append(block_sim.get(name))
        sparsifier = getattr(trainer, "sparsifier", None)
        dens = sparsifier.densities() if sparsifier is not None else {}
        self._probe_flops = len(self.probe) * costmodel.forward_flops(trainer.arch, dens)
        self._measured = epoch
        return {"measured": True, "cka": cka, "mask_similarity": sim, "block_mask_similarity": block_sim,
                "probe_size": int(len(self.probe)), "flops": self._probe_flops,
                "seconds": round(time.monotonic() - t0, 4)}

    def _primary(self, trainer) -> bool:
        dist = getattr(trainer, "dist", None)
        return dist is None or bool(getattr(dist, "is_primary", True))

    def _keep_grams(self, trainer, epoch: int) -> None:
        """This measurement's Grams on disk, for the CKA against the final model at the end."""
        run_dir = getattr(trainer, "run_dir", None)
        if run_dir is not None and self._primary(trainer):
            final.GramStore(run_dir).save(epoch, self._grams)

    def _cka_to_final(self, trainer) -> dict[str, list]:
        """The paper's Fig. 1b / A1: per block, every measurement's CKA with the final one."""
        run_dir = getattr(trainer, "run_dir", None)
        if run_dir is None or not self._primary(trainer):
            return {}
        return final.GramStore(run_dir).against_final(self._measured_epochs(), self._grams)

    def _similarity(self, trainer) -> tuple[dict, dict]:
        """Per sparse layer, the overlap of its top-half set with the previous measurement's;
        per block, the mean over its sparse layers (None without sparse layers)."""
        sparsifier = getattr(trainer, "sparsifier", None)
        masks = sparsifier.masks if sparsifier is not None else {}
        modules = dict(trainer.model.prunable())
        layer_block = trainer.model.layer_block()
        names = trainer.model.block_names
        prev = self._tops[-1] if self._tops else {}
        tops, sim = {}, {}
        for layer, mask in masks.items():
            w = modules[layer].weight
            top = metrics.top_half(w, mask)
            self._numel[layer] = top.numel()
            tops[layer] = metrics.pack(top)
            if layer in prev:
                sim[layer] = _r(metrics.overlap(metrics.unpack(prev[layer], top.numel()), top.flatten().cpu()))
            else:
                sim[layer] = None
            self.similarity.setdefault(layer, []).append(sim[layer])
        self._tops.append(tops)
        block_sim: dict[str, float | None] = {}
        for b, name in enumerate(names):
            vals = [v for l, v in sim.items() if layer_block.get(l) == b and v is not None]
            block_sim[name] = _r(sum(vals) / len(vals)) if vals else None
        return sim, block_sim

    def _against_final_mask(self, trainer) -> dict[str, list]:
        """The paper's Fig. 1a: per sparse layer and measurement, the share of that
        measurement's top-half weights that are non-zero in the final mask."""
        sparsifier = getattr(trainer, "sparsifier", None)
        masks = sparsifier.masks if sparsifier is not None else {}
        modules = dict(trainer.model.prunable())
        out = {}
        for layer, mask in masks.items():
            n = self._numel.get(layer)
            if n is None:
                continue
            final = (mask.detach().flatten().bool() & (modules[layer].weight.detach().flatten() != 0)).cpu()
            out[layer] = [_r(metrics.kept_share(metrics.unpack(t[layer], n), final)) if layer in t else None
                          for t in self._tops]
        return out

    def _against_final(self) -> dict[str, list]:
        """Rank overlap (not Fig. 1a): every measurement's top-half set against the last one's."""
        if not self._tops:
            return {}
        final = self._tops[-1]
        out = {}
        for layer, packed in final.items():
            n = self._numel[layer]
            last = metrics.unpack(packed, n)
            out[layer] = [_r(metrics.overlap(metrics.unpack(t[layer], n), last)) if layer in t else None
                          for t in self._tops]
        return out

    def _adaptive(self, trainer, epoch: int) -> dict | None:
        cfg = self.cfg
        freezer = getattr(trainer, "freezer", None)
        plan = (getattr(trainer, "plan", None) or {}).get("freeze_plan") or {}
        if cfg.freeze.scheme != "adaptive" or freezer is None or not plan or epoch + 1 >= cfg.epochs:
            return None
        names = trainer.model.block_names
        a = cfg.freeze.adaptive
        now = int(freezer.decided_prefix(epoch + 1))
        freezable = int(plan.get("freezable_blocks", 0))
        idx = {b: self.cka[n] for b, n in enumerate(names)}
        sims = {b: self.block_similarity[n] for b, n in enumerate(names)}
        new = adaptive.next_prefix(now, freezable, idx, sims, a.cka, a.mask_similarity, a.patience)
        at = epoch + 1 + a.anneal_epochs
        froze = None
        # a freeze the deadline plan makes anyway by then, or one past the run, changes nothing
        if new > now and at < cfg.epochs and freezer.frozen_prefix(at) < new:
            lr_now = float(trainer.optimizer.param_groups[now]["lr"])   # what block `now` trained at in `epoch`
            freezer.freeze_from(at, new, anneal=(epoch, lr_now) if a.anneal_epochs > 0 else None)
            froze = names[now]
        return {"frozen_prefix": int(freezer.frozen_prefix(epoch + 1)), "froze": froze,
                "from_epoch": at, "freezable_blocks": freezable, "anneal_epochs": a.anneal_epochs}

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        if not self.enabled:
            return {}
        state: dict[str, Any] = {
            "probe": self.probe.clone() if self.probe is not None else None,
            "cka": {k: list(v) for k, v in self.cka.items()},
            "block_similarity": {k: list(v) for k, v in self.block_similarity.items()},
            "similarity": {k: list(v) for k, v in self.similarity.items()},
            "grams": {k: g.cpu() for k, g in self._grams.items()},
            "tops": [dict(t) for t in self._tops], "numel": dict(self._numel),
            "measured": self._measured, "probe_flops": self._probe_flops,
        }
        if self._grad_epoch is not None and self._grad_sum is not None:   # inside an epoch
            state["grad"] = {"epoch": self._grad_epoch, "sum": self._grad_sum.cpu(), "steps": self._grad_steps}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not self.enabled or not state:
            return
        self.probe = state.get("probe")
        self.cka = {k: list(v) for k, v in state.get("cka", {}).items()}
        self.block_similarity = {k: list(v) for k, v in state.get("block_similarity", {}).items()}
        self.similarity = {k: list(v) for k, v in state.get("similarity", {}).items()}
        self._grams = {k: g.to(metrics.FLOAT) for k, g in state.get("grams", {}).items()}
        self._tops = [dict(t) for t in state.get("tops", [])]
        self._numel = {k: int(v) for k, v in state.get("numel", {}).items()}
        self._measured = state.get("measured")
        self._probe_flops = float(state.get("probe_flops", 0.0))
        g = state.get("grad")
        if g:
            self._resume_grad = (int(g["epoch"]), g["sum"], int(g["steps"]))
