"""The training loop. Read top to bottom: build, (resume), then epochs of batches.

Everything technique-specific lives in the components [freezer, sparsifier, sieve, ledger]
(engine.component hooks); the loop itself only trains, evaluates, reports and checkpoints.
Per-batch work is kept minimal: hooks that a component does not override are not called,
and loss/accuracy sums stay on the device until the end of the epoch (or a throttled
progress event), so there is no device synchronisation per batch.
"""
from __future__ import annotations

import logging
import os
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

from engine.analysis.component import Analysis
from engine.component import Component, LoopState
from engine.cost import arch as arch_mod
from engine.cost.ledger import Ledger
from engine.cost.projection import overall_density, project
from engine.data.loaders import Data, epoch_order, num_batches
from engine.executor.job import requeue_fields
from engine.freezing.freezer import Freezer
from engine.models import build_model
from engine.models.measure import ensure_measured
from engine.run.control import CommandChannel
from engine.run.events import COMPLETED, FINISHED_UNSAVED, STOPPED
from engine.run.folder import run_id
from engine.sieving.sieve import Sieve
from engine.sparsity.sparsifier import Sparsifier
from engine.tracking.component import Tracking
from engine.tracking.secrets import masked_config
from engine.training import adaptive_threads, eager_start
from engine.training import checkpoint as ckpt
from engine.training import distributed as dist_mod
from engine.training.adaptive_threads import AdaptiveThreads
from engine.training.lr_schedule import block_lr
from engine.training.precision import Speed
from engine.training.throughput import ThroughputRecorder

log = logging.getLogger("engine.training.trainer")

HOOKS = ("on_epoch_start", "after_backward", "after_step", "on_batch_end", "on_epoch_end", "on_event")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device={name!r} but CUDA is not available on this machine (use device: auto or cpu)")
        if dev.index is None:            # an explicit index: torch.cuda.set_device needs one
            dev = torch.device("cuda", torch.cuda.current_device())
        elif dev.index >= torch.cuda.device_count():
            raise RuntimeError(f"device={name!r} but this machine has {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise RuntimeError(f"device={name!r} but MPS is not available on this machine")
    return dev


class _Stop(Exception):
    """Raised inside the loop when a stop command has been handled."""


class Trainer:
    def __init__(self, cfg, run_dir, emitter, commands: CommandChannel | None = None,
                 dist: dist_mod.Single | None = None):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.emitter = emitter
        self.commands = commands or CommandChannel()
        self.dist = dist or dist_mod.Single()        # this process's rank in a torchrun job
        self.device = self.dist.device(resolve_device(cfg.device))
        self.speed = Speed(cfg, self.device)         # precision, channels_last, compile
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            torch.backends.cudnn.benchmark = True

        t0 = time.monotonic()
        self.data = Data(cfg, self.device, shard=self.dist.shard)
        self.train_size, self.test_size = self.data.train_size, self.data.test_size
        self.num_classes = self.data.num_classes
        log.info("data: %s, %d train / %d test samples, %d classes (%.1fs)", cfg.data.name,
                 self.train_size, self.test_size, self.num_classes, time.monotonic() - t0)

        torch.manual_seed(cfg.seed)          # the initial weights depend on the seed only
        self.model = self.speed.prepare(build_model(cfg, self.num_classes).to(self.device))
        self.block_names = list(self.model.block_names)
        ensure_measured(cfg.model, self.num_classes, cfg.data.image_size)   # timm:, py:, wrn28
        self.arch = arch_mod.describe(cfg.model, self.num_classes, cfg.data.image_size)
        if self.arch.block_names != self.block_names:
            raise RuntimeError(f"the model's blocks {self.block_names} differ from its cost table's "
                               f"{self.arch.block_names}")
        self.plan = project(cfg)
        eager_start.configure(cfg.compile, torch.optim.SGD)   # no torch._dynamo import unless compiling
        self.optimizer = self._build_optimizer()
        nb = len(self.block_names)
        self.block_lr_end: list[int] = [cfg.epochs] * nb
        self.lr_override: list[float | None] = [None] * nb

        self.freezer = Freezer(cfg, self.plan.get("freeze_plan"))
        for warning in (self.plan.get("freeze_plan") or {}).get("warnings", []):
            log.warning("%s", warning)    # also in run_started.freeze_plan.warnings
        self.sparsifier, self.sieve, self.ledger = Sparsifier(cfg), Sieve(cfg), Ledger(cfg)
        self.analysis = Analysis(cfg)   # after the sparsifier (masked gradients), before the ledger (its cost)
        # Last: its batch timing covers the other components' per-batch work too.
        self.threads = AdaptiveThreads(adaptive_threads.wanted(cfg, self.device.type, self.dist.world))
        # The experiment trackers (rank 0): they see every event and log it in the background.
        self.tracking = Tracking(cfg, self.run_dir, primary=self.dist.is_primary)
        # After the ledger: it times the epoch's executed FLOPs for later wall-time estimates.
        self.throughput = ThroughputRecorder(cfg, self.device.type, primary=self.dist.is_primary)
        self.components: list[Component] = [self.freezer, self.sparsifier, self.sieve, self.analysis, self.ledger,
                                            self.throughput, self.threads, self.tracking]
        # Only the hooks a component overrides are called: the base ones do nothing.
        self._hooks = {h: [getattr(c, h) for c in self.components
                           if getattr(type(c), h) is not getattr(Component, h)] for h in HOOKS}

        # Position: epoch and batch the loop continues at, plus the open epoch's partial sums.
        self.epoch = 0
        self.batch = 0
        self.samples_total = 0
        self.epochs_completed = 0
        self.wall_before = 0.0               # wall time of earlier sessions of this run
        self._partial = None                 # (loss_sum, correct_sum, seen, elapsed) after a mid-epoch resume
        self.resumed = False
        self.resume_info: dict | None = None   # set by a resume: checkpoint used, epochs redone
        self.last_record: dict | None = None
        self._rss_peak = 0
        self.state = LoopState()             # what components read; written here only

    # ------------------------------------------------------------------ building
    def _build_optimizer(self) -> torch.optim.Optimizer:
        o = self.cfg.optim
        groups, seen = [], set()
        for name, block in zip(self.block_names, self.model.blocks):
            params = [p for p in block.parameters() if id(p) not in seen]
            seen.update(id(p) for p in params)
            groups.append({"params": params, "block": name})
        missing = [n for n, p in self.model.named_parameters() if id(p) not in seen]
        if missing:
            raise RuntimeError(f"parameters outside every freeze block: {missing[:5]}")
        return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay,
                               nesterov=o.nesterov and o.momentum > 0)

    def emit(self, name: str, **fields) -> dict:
        if name == "mask_update":
            # Compared across ranks (a mismatch stops the run) and reported, so runs can be compared.
            fields["mask_checksum"] = self.dist.mask_checksum(self.sparsifier.masks)
        ev = self.emitter.emit(name, **fields)
        for hook in self._hooks["on_event"]:
            hook(self, ev)
        return ev

    # ------------------------------------------------------------------ resume
    def load_checkpoint(self, state: dict | None = None) -> None:
        """Restore a checkpoint (default: <run_dir>/checkpoints/last.pt) before fit()."""
        if state is None:
            # On the CPU: RNG states must stay CPU tensors, and each component moves its own
            # state to where it keeps it (model and optimizer state follow their parameters).
            state = ckpt.load(self.run_dir, map_location="cpu") if self.dist.is_primary else None
        if self.dist.enabled:                # rank 0's state, the same on every rank
            state = self.dist.broadcast_object(state if self.dist.is_primary else None)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for c in self.components:
            c.load_state_dict(state["components"].get(c.name, {}))
        tr = state.get("trainer", {})
        self.block_lr_end = list(tr.get("block_lr_end", self.block_lr_end))
        self.lr_override = list(tr.get("lr_override", self.lr_override))
        pos = state["position"]
        self.epoch, self.batch = int(pos["epoch"]), int(pos["batch"])
        self.samples_total = int(pos["samples_total"])
        self.epochs_completed = int(pos["epochs_completed"])
        self.wall_before = float(pos.get("wall_time", 0.0))
        self.last_record = pos.get("last_record")
        if self.batch > 0:
            self._partial = (pos["loss_sum"], pos["correct_sum"], int(pos["seen"]), float(pos["elapsed"]))
            if not self.dist.is_primary:     # the saved sums are the job's: counted once, on rank 0
                self._partial = (0.0, 0, 0, float(pos["elapsed"]))
        self.speed.load_state_dict(tr.get("speed", {}))
        ckpt.set_rng_state(state.get("rng"))
        self.resumed = True
        # epochs counted from 1 as the progress bar and the studio show them (events: from 0)
        if self.epoch >= self.cfg.epochs:
            log.info("the checkpoint is at the end of all %d epochs: nothing left to train", self.cfg.epochs)
        else:
            log.info("resuming at epoch %d/%d, batch %d", self.epoch + 1, self.cfg.epochs, self.batch)

    # ------------------------------------------------------------------ the run
    def fit(self) -> str:
        """Train to the end or until stopped; returns the run status (completed or stopped)."""
        status = "failed"            # unless the loop returns: an exception is on its way out
        try:
            status = self._fit()
            return status
        finally:
            for c in self.components:
                c.on_run_end(self, status)

    def _fit(self) -> str:
        self._t_session = time.monotonic()
        self._emit_run_started()
        requeued = requeue_fields()
        if requeued is not None:         # a Slurm job restarted after preemption or its time limit
            self.emit("requeued", **requeued)
        self.block_lr_end = self.freezer.block_lr_end(len(self.block_names))
        self._enter_epoch(self.epoch)        # a resumed model is rebuilt unfrozen
        for c in self.components:
            c.on_run_start(self)
        try:
            for epoch in range(self.epoch, self.cfg.epochs):
                self.epoch = epoch
                if self.dist.agree_stop(self.commands):
                    self._checkpoint("stop", mid_epoch=False)
                    raise _Stop
                self._train_epoch(epoch)
                self.epochs_completed = epoch + 1
                self.epoch, self.batch = epoch + 1, 0
                self.dist.note_epoch_state(lambda: self._state(mid_epoch=False))
                every = self.cfg.checkpoint.every
                if every > 0 and (epoch + 1) % every == 0 and epoch + 1 < self.cfg.epochs:
                    self._checkpoint("periodic", mid_epoch=False, tag=epoch + 1)
            status = COMPLETED if self._final_checkpoint() else FINISHED_UNSAVED
        except _Stop:
            status = STOPPED
        self.emit("run_finished", status=status, epochs_completed=self.epochs_completed,
                  final=self._final_metrics(), flops=self.ledger.totals(), wall_time=self._wall())
        return status

    def _enter_epoch(self, epoch: int) -> None:
        """The one place the epoch's frozen prefix and per-block LR overrides are written."""
        st = self.state
        st.epoch, st.batch_index = epoch, -1
        st.frozen_prefix = int(self.freezer.frozen_prefix(epoch))
        if self.model.frozen_prefix != st.frozen_prefix:
            self.model.frozen_prefix = st.frozen_prefix  # no-grad forward and eval mode for the prefix
        self.lr_override = self.freezer.lr_overrides(epoch, len(self.block_names))

    def _train_epoch(self, epoch: int) -> None:
        """One epoch: its start (freezing, mask and sieve updates, LRs), the batches, the
        test pass and the ``epoch_end`` record."""
        active, order = self._begin_epoch(epoch)
        batches = num_batches(len(order), self.cfg.batch_size)
        loss_sum, correct_sum, seen, train_time = self._train_batches(epoch, order, batches)
        self._end_epoch(epoch, active, order, loss_sum, correct_sum, seen, train_time)

    def _begin_epoch(self, epoch: int):
        """The epoch's frozen prefix, the components' epoch-start work, the LRs, and the
        order of the samples the sieve leaves active."""
        self._enter_epoch(epoch)
        for hook in self._hooks["on_epoch_start"]:
            hook(self, epoch)
        for i, g in enumerate(self.optimizer.param_groups):
            ov = self.lr_override[i]
            g["lr"] = ov if ov is not None else block_lr(self.cfg, epoch, self.block_lr_end[i])
        self.model.train()
        active = self.sieve.epoch_indices(epoch)
        return active, epoch_order(active, self.cfg.seed, epoch)

    def _epoch_sums(self):
        """The running loss and correct counts: restored from a mid-epoch checkpoint, else zero."""
        if self._partial is not None and self.batch > 0:
            ls, cs, seen, elapsed = self._partial
            loss_sum = torch.as_tensor(ls, dtype=torch.float64, device=self.device).clone()
            correct_sum = torch.as_tensor(cs, dtype=torch.int64, device=self.device).clone()
        else:
            loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
            correct_sum = torch.zeros((), dtype=torch.int64, device=self.device)
            seen, elapsed = 0, 0.0
        self._partial = None
        return loss_sum, correct_sum, seen, elapsed

    def _train_batches(self, epoch: int, order, batches: int):
        """The batch loop (the hot path): returns the loss and correct sums over every rank,
        the samples seen and the training time."""
        cfg, model, opt = self.cfg, self.model, self.optimizer
        start = self.batch
        loss_sum, correct_sum, seen, elapsed = self._epoch_sums()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

        after_backward, after_step = self._hooks["after_backward"], self._hooks["after_step"]
        on_batch_end = self._hooks["on_batch_end"]
        emitter, commands, dist, speed = self.emitter, self.commands, self.dist, self.speed
        net = dist.wrap(model, speed.compiled)   # DDP over the unfrozen blocks; torch.compile
        bs, n_order = cfg.batch_size, len(order)
        t_start = time.monotonic()
        t_mark, seen_mark = t_start, seen
        b = start
        state = self.state
        state.batches_in_epoch = batches
        for b, (x, y, idx) in enumerate(self.data.train_batches(order, epoch, start), start=start):
            state.batch_index = b
            state.global_batch = n = min(bs, n_order - b * bs)
            n_real = idx.shape[0]                # < len(y) only for a rank's padding sample
            with speed.autocast():
                logits = net(speed.inputs(x))
                loss, loss_d = dist.loss(logits, y, n_real, n)
            speed.backward(loss, opt)
            for hook in after_backward:
                hook(self)
            if state.skip_step:
                state.skip_step = False
            else:
                speed.step(opt)
            for hook in after_step:
                hook(self)
            with torch.no_grad():
                correct = logits.argmax(1) == y
                if n_real != y.shape[0]:
                    correct = correct[:n_real]
                for hook in on_batch_end:
                    hook(self, idx, correct, loss_d)
                loss_sum += loss_d.double() * n_real
                correct_sum += correct.sum()
            opt.zero_grad(set_to_none=True)
            seen += n_real
            self.batch = b + 1

            now = time.monotonic()
            if now - t_mark >= 0.5 and emitter.progress(
                    epoch, b + 1, batches, loss_fn=lambda: float(loss_sum.item() / max(1, seen)),  # noqa: B023 (called now)
                    images_per_s=(seen - seen_mark) * dist.world / max(1e-9, now - t_mark)):
                t_mark, seen_mark = now, seen
                self._sample_rss()
            stop, want_checkpoint = dist.poll(commands, b)
            if stop:
                self._checkpoint("stop", mid_epoch=True,
                                 partial=(loss_sum, correct_sum, seen, elapsed + time.monotonic() - t_start))
                raise _Stop
            if want_checkpoint:
                self._checkpoint("command", mid_epoch=True,
                                 partial=(loss_sum, correct_sum, seen, elapsed + time.monotonic() - t_start))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)   # the epoch's time includes its queued kernels
        train_time = elapsed + time.monotonic() - t_start
        loss_sum, correct_sum, seen = dist.sum_stats(loss_sum, correct_sum, seen)
        return loss_sum, correct_sum, seen, train_time

    def _end_epoch(self, epoch: int, active, order, loss_sum, correct_sum, seen: int, train_time: float) -> None:
        """The test pass, then the ``epoch_end`` record, which the components complete."""
        cfg, model, opt, dist, state = self.cfg, self.model, self.optimizer, self.dist, self.state
        t_eval = time.monotonic()
        test_loss, test_acc = self.evaluate()
        eval_time = time.monotonic() - t_eval
        seen = max(seen, 1)
        lrs = {g["block"]: float(g["lr"]) for g in opt.param_groups}
        self.samples_total += len(order)
        state.densities = self.sparsifier.densities()     # for the record and the ledger
        record = {
            "epoch": epoch, "epochs": cfg.epochs,
            "train_loss": float(loss_sum.item() / seen), "train_acc": float(correct_sum.item() / seen),
            "test_loss": test_loss, "test_acc": test_acc,
            "lr": float(opt.param_groups[-1]["lr"]), "lrs": lrs,
            "epoch_time": train_time, "eval_time": eval_time,
            "samples": len(order), "samples_total": self.samples_total,
            "memory": dist.gather_memory(self._memory()), "flops": {}, "flops_epoch": {},
            "density": float(self._density(state.densities)), "sparse_density": float(self._sparse_density()),
            "frozen_blocks": self.block_names[:model.frozen_prefix],
            "active_samples": int(len(active)),
        }
        for hook in self._hooks["on_epoch_end"]:
            hook(self, epoch, record)
        self._report_bad_samples(epoch)
        dist.check_consistency(self, epoch)
        self.last_record = {k: record[k] for k in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc",
                                                   "density", "sparse_density", "lr")}
        self.emit("epoch_end", **record)

    @torch.no_grad()
    def evaluate(self) -> tuple[float | None, float | None]:
        if self.test_size == 0:
            return None, None
        model = self.model
        model.eval()
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        n = 0
        speed = self.speed
        for x, y, idx in self.data.test_batches():
            with speed.autocast():
                logits = model(speed.inputs(x))
            k = idx.shape[0]                     # a rank's padding sample is not counted
            logits, y = logits[:k].float(), y[:k]
            loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
            correct += (logits.argmax(1) == y).sum()
            n += k
        model.train()
        loss_sum, correct, n = self.dist.sum_stats(loss_sum, correct, n)
        return float(loss_sum.item() / n), float(correct.item() / n)

    # ------------------------------------------------------------------ reporting
    def _report_bad_samples(self, epoch: int) -> None:
        """Corrupt images skipped this epoch (data.on_bad_sample: skip) as one event."""
        for split, bad in self.data.take_bad_samples().items():
            self._bad_total = getattr(self, "_bad_total", 0) + len(bad)
            log.warning("%d unreadable image(s) skipped in %s, e.g. %s", len(bad), split, bad[0][1])
            self.emit("bad_samples", epoch=epoch, split=split, count=len(bad), total=self._bad_total,
                      samples=[{"path": p, "reason": r} for p, r in bad[:20]])

    def _density(self, densities: dict | None = None) -> float:
        """Fraction of weights kept over all prunable layers, kept-dense ones included: the
        convention of engine.cost.projection, so the measured and the projected curves compare."""
        return overall_density(self.arch, self.sparsifier.densities() if densities is None else densities)

    def _sparse_density(self) -> float:
        """Fraction kept over the sparse layers only (the target is 1 - sparsity.target)."""
        sp = self.sparsifier
        return sp.overall_density() if hasattr(sp, "overall_density") else self._density()

    def _sample_rss(self) -> int:
        try:
            import psutil
            rss = psutil.Process().memory_info().rss
        except Exception:  # noqa: BLE001 - psutil missing or a sandbox without /proc
            rss = 0
        self._rss_peak = max(self._rss_peak, rss)
        return rss

    def _memory(self) -> dict:
        rss = self._sample_rss()
        if self.device.type == "cuda":
            mem = {"kind": "cuda", "peak_bytes": int(torch.cuda.max_memory_allocated(self.device)), "rss_bytes": rss}
        else:
            # CPU: the largest process RSS seen this epoch (sampled with the progress events)
            mem = {"kind": "cpu", "peak_bytes": int(self._rss_peak), "rss_bytes": rss}
        self._rss_peak = rss
        return mem

    def _final_metrics(self) -> dict:
        return dict(self.last_record or {})

    def _wall(self) -> float:
        return self.wall_before + time.monotonic() - self._t_session

    def _emit_run_started(self) -> None:
        counts = [sum(p.numel() for p in b.parameters()) for b in self.model.blocks]
        plan_blocks = {b["name"]: b for b in self.plan.get("blocks", [])}
        layer_block = self.model.layer_block()
        blocks = []
        for i, (name, n) in enumerate(zip(self.block_names, counts)):
            pb = plan_blocks.get(name, {})
            blocks.append({"name": name, "params": int(n), "forward_flops": float(pb.get("forward_flops", 0.0)),
                           "layers": [l for l, bi in layer_block.items() if bi == i]})
        d = self.cfg.data
        dev = str(self.device)
        if self.device.type == "cuda":
            dev_name = torch.cuda.get_device_name(self.device)
        else:
            dev_name = f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
        self.emit(
            "run_started", run_id=run_id(self.run_dir), run_dir=str(self.run_dir.resolve()),
            config=masked_config(self.cfg.to_dict()), device=dev, device_name=dev_name,
            dataset={"name": d.name, "train_size": self.train_size, "test_size": self.test_size,
                     "num_classes": self.num_classes, "image_size": d.image_size, "classes": self.data.classes[:1000]},
            model={"name": self.cfg.model.name, "width": self.cfg.model.width, "params": int(sum(counts)),
                   "blocks": blocks, "blocks_from": self.arch.blocks_from},
            freeze_plan=self.plan.get("freeze_plan"),
            projected={k: self.plan[k] for k in ("flops", "memory", "segments", "method", "probes") if k in self.plan},
            resumed=self.resumed, start_epoch=int(self.epoch), start_batch=int(self.batch),
            pid=os.getpid(), torch_version=torch.__version__,
            distributed=self.dist.describe(), speed=self.speed.describe(),
            **({"resume": self.resume_info} if self.resume_info else {}))
        for warning in self.arch.warnings:   # e.g. freeze blocks that had to fall back to top-level modules
            log.warning("%s", warning)
            self.emit("warning", source="model", message=warning)

    # ------------------------------------------------------------------ checkpoints
    def _state(self, mid_epoch: bool, partial=None) -> dict:
        pos = {"epoch": self.epoch, "batch": self.batch if mid_epoch else 0,
               "samples_total": self.samples_total, "epochs_completed": self.epochs_completed,
               "wall_time": self._wall(), "last_record": self.last_record}
        if mid_epoch and partial is not None:
            ls, cs, seen, elapsed = partial
            if self.dist.enabled:   # the job's sums and forgetting statistics, not this rank's
                ls, cs, seen = self.dist.sum_stats(ls, cs, seen)
                if getattr(self.sieve, "tracking", False):
                    self.sieve.tracker.all_reduce()
            pos.update(loss_sum=float(ls.item()), correct_sum=int(cs.item()), seen=int(seen), elapsed=float(elapsed))
        return {
            "config": self.cfg.to_dict(), "position": pos,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "components": {c.name: c.state_dict() for c in self.components},
            "trainer": {"block_lr_end": list(self.block_lr_end), "lr_override": list(self.lr_override),
                        "speed": self.speed.state_dict()},
            "rng": ckpt.rng_state(),
        }

    def _final_checkpoint(self) -> bool:
        """The end checkpoint; on failure (a full disk) retried once after removing the
        engine's own leftover temporary files. False when it still fails: every epoch is done
        and an earlier checkpoint stays valid, so the run ends finished_unsaved, not failed."""
        try:
            self._checkpoint("end", mid_epoch=False, final=True)
            return True
        except ckpt.CheckpointError:
            ckpt.remove_temp_files(self.run_dir)
        try:
            self._checkpoint("end", mid_epoch=False, final=True)
            return True
        except ckpt.CheckpointError as exc:
            msg = (f"every epoch finished but the final checkpoint could not be written: {exc}. The metrics "
                   "are in events.jsonl; free disk space and run `spfde-train resume` on this folder to "
                   "save the final weights (it resumes from the last checkpoint written)")
            log.error("%s", msg)
            self.emit("error", message=msg, traceback=traceback.format_exc(), fatal=False)
            return False

    def _checkpoint(self, reason: str, mid_epoch: bool, partial=None, tag: int | None = None,
                    final: bool = False) -> bool:
        """Write a checkpoint and emit its event. A failed write is reported as a non-fatal
        error event (the previous checkpoint stays intact) unless it is the final one."""
        state = self._state(mid_epoch, partial)
        if not self.dist.is_primary:             # rank 0 writes the job's checkpoints
            return True
        with self.dist.io_lock:                  # not while a failing job saves its last epoch
            try:
                path, size = ckpt.save(self.run_dir, state, epoch_tag=tag, keep=self.cfg.checkpoint.keep)
            except ckpt.CheckpointError as exc:
                if final or reason == "stop":
                    raise
                log.error("%s", exc)
                self.emit("error", message=str(exc), traceback=traceback.format_exc(), fatal=False)
                return False
            self.emit("checkpoint", epoch=int(state["position"]["epoch"]), batch=int(state["position"]["batch"]),
                      path=str(path), reason=reason, bytes=int(size))
        return True
