"""Distributed data parallel training with PyTorch's own engine: torchrun + DDP.

Processes are only ever started by ``torch.distributed.run`` (torchrun). ``spfde-train run``
with ``distributed.nproc_per_node > 1`` creates the run directory, then runs torchrun on this
machine as a child (engine.training.launcher); each worker runs ``python -m engine run ... --attach DIR``.
For several machines torchrun is started on each node by hand (docs/distributed.md) and the
workers of ``-m engine run`` agree on one run directory through rank 0.

What keeps the ranks identical (the model after every step, like DDP itself):

* ``batch_size`` is the global batch. Every rank walks the same global order and takes its
  slice of each global batch (``shard_bounds``); a rank whose slice is empty (the last, short
  batch) runs one padding sample with weight 0. The loss is the global batch's mean
  (``Context.loss``), so gradients equal the single-process ones up to rounding.
* Masks are decided on every rank from the same weights, gradients and seeded generators;
  ``mask_checksum`` goes into each ``mask_update`` event and is compared across ranks, a
  mismatch stops the run. The sieve's decision is broadcast from rank 0 (engine.sieving.sieve) after
  its forgetting counts are merged (engine.sieving.forgetting); ``check_consistency`` compares a
  fingerprint of masks, frozen prefix and sieve state at every epoch end.
* DDP only buckets parameters that need a gradient: the wrapper is rebuilt whenever the set
  of trainable parameters changes (a block joins or leaves the frozen prefix), so the frozen
  prefix is never all-reduced.
* Events and checkpoints come from rank 0 only; other ranks get a ``NullEmitter``.

Failure: every collective has ``distributed.timeout_s``. A watchdog thread on each rank polls
the other local ranks' processes; when one dies, rank 0 writes the last completed epoch's
state as the checkpoint, emits an ``error`` event naming the rank and exits, so torchrun ends
the job within seconds and ``spfde-train resume`` continues it.
"""
from __future__ import annotations

import contextlib
import copy
import datetime
import hashlib
import json
import logging
import os
import signal
import socket
import threading
import time
import traceback
from pathlib import Path

import torch

from engine.config import ConfigError
from engine.training import checkpoint as ckpt
from engine.training.launcher import under_torchrun

log = logging.getLogger("engine.training.distributed")

SYNC_EVERY = 16            # batches between the ranks' agreement on stop/checkpoint commands
WATCH_INTERVAL_S = 0.5     # how often a rank looks at its peers' processes
DUMP_ENV = "SPFDE_RANK_DUMP"   # a folder: each rank appends its per-epoch fingerprint parts (tests)


# ----------------------------------------------------------------------------- sharding

def shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """This rank's slice [lo, hi) of a global batch of ``n``: equal parts when ``world``
    divides ``n``, otherwise sizes differing by at most one."""
    return (rank * n) // world, ((rank + 1) * n) // world


# ----------------------------------------------------------------------------- emitter

class NullEmitter:
    """What ranks other than 0 emit through: nothing (rank 0 speaks for the job)."""
    path = None

    def emit(self, name: str, **fields) -> dict:
        return {"event": name, **fields}

    def progress(self, *args, **kwargs) -> bool:
        return False

    def close(self) -> None:
        pass


class GuardedEmitter:
    """Rank 0's emitter in a job: once a failure is being reported nothing else gets out, so
    the ``error`` event is the stream's last word (the main thread may still be running)."""

    def __init__(self, inner, lock):
        self.inner, self.lock, self.dead = inner, lock, False
        self.path = getattr(inner, "path", None)

    def emit(self, name: str, **fields) -> dict:
        with self.lock:
            if self.dead:
                return {"event": name, **fields}
            return self.inner.emit(name, **fields)

    def progress(self, *args, **kwargs) -> bool:
        with self.lock:
            return False if self.dead else self.inner.progress(*args, **kwargs)

    def close(self) -> None:
        with self.lock:
            self.inner.close()


# ----------------------------------------------------------------------------- checksums

def mask_checksum(masks: dict) -> str:
    """16 hex digits over every mask (bool tensors by layer name, in name order)."""
    h = hashlib.blake2b(digest_size=8)
    for name in sorted(masks):
        m = masks[name]
        h.update(name.encode())
        h.update(m.detach().to("cpu", torch.bool).contiguous().numpy().tobytes())
    return h.hexdigest()


def _tensor_digest(t: torch.Tensor | None) -> str:
    if t is None:
        return "-"
    return hashlib.blake2b(t.detach().cpu().contiguous().numpy().tobytes(), digest_size=8).hexdigest()


def params_checksum(model: torch.nn.Module) -> str:
    """Over the parameters only: BatchNorm's running statistics are rank-local between two
    forwards (DDP broadcasts rank 0's at the start of each forward)."""
    h = hashlib.blake2b(digest_size=8)
    for name, p in model.named_parameters():
        h.update(name.encode())
        h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _cpu_copy(obj):
    """A deep copy with every tensor cloned to the CPU (a state that training cannot alter)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu_copy(v) for v in obj)
    return copy.deepcopy(obj)


# ----------------------------------------------------------------------------- context

class Single:
    """One process: every helper is the identity (the trainer's default)."""
    rank, world, local_rank = 0, 1, 0
    io_lock = contextlib.nullcontext()     # held while a checkpoint is written
    is_primary = True
    enabled = False
    shard = (0, 1)

    def device(self, default: torch.device) -> torch.device:
        return default

    def wrap(self, module, finish=lambda m: m):
        return finish(module)

    def loss(self, logits: torch.Tensor, y: torch.Tensor, n_real: int, n_global: int):
        loss = torch.nn.functional.cross_entropy(logits, y)
        return loss, loss.detach()

    def poll(self, commands, batch: int) -> tuple[bool, bool]:
        if commands.should_stop:
            return True, False
        return False, commands.take_checkpoint_request()

    def agree_stop(self, commands) -> bool:
        return commands.should_stop

    def sum_stats(self, *values):
        return values

    def mask_checksum(self, masks: dict) -> str:
        return mask_checksum(masks)

    def check_consistency(self, trainer, epoch: int) -> None:
        pass

    def gather_memory(self, mem: dict) -> dict:
        return mem

    def broadcast_object(self, obj):
        return obj

    def note_epoch_state(self, make_state) -> None:
        pass

    def describe(self) -> dict:
        return {"world_size": 1}

    def fail(self, message: str, tb: str = "") -> None:
        pass

    def finish(self) -> None:
        pass

    def close(self) -> None:
        pass


class Context(Single):
    """This process's place in a torchrun job (after ``init``)."""
    enabled = True

    def __init__(self, cfg, rank: int, world: int, local_rank: int, backend: str):
        self.cfg = cfg
        self.rank, self.world, self.local_rank = rank, world, local_rank
        self.is_primary = rank == 0
        self.shard = (rank, world)
        self.backend = backend
        self._ddp = None
        self._ddp_key = None
        self._ddp_src = None
        self._finished = None
        self._snapshot = None          # rank 0: (epoch, state) of the last completed epoch
        self._fail_lock = threading.Lock()
        self.io_lock = threading.RLock()
        self.run_dir: Path | None = None
        self.emitter = None
        self.peers: list[dict] = []
        self._watch_stop = threading.Event()
        self._poke = threading.Event()
        self._thread = None
        self._dev = torch.device("cpu")

    # ---- set-up
    def device(self, default: torch.device) -> torch.device:
        if default.type == "cuda":
            self._dev = torch.device("cuda", self.local_rank % max(1, torch.cuda.device_count()))
            torch.cuda.set_device(self._dev)
            return self._dev
        return default

    def comm_device(self) -> torch.device:
        return torch.device("cuda", torch.cuda.current_device()) if self.backend == "nccl" else torch.device("cpu")

    def guard(self, emitter):
        """The emitter to train with (rank 0's, silenced once a failure is reported)."""
        if isinstance(emitter, NullEmitter):
            self.emitter = emitter
        else:
            self.emitter = GuardedEmitter(emitter, self.io_lock)
        return self.emitter

    def start(self, run_dir: Path) -> None:
        """Exchange host and pid of every rank and start the watchdog."""
        self.run_dir = Path(run_dir)
        me = {"rank": self.rank, "host": socket.gethostname(), "pid": os.getpid(),
              "local_rank": self.local_rank}
        peers: list = [None] * self.world
        torch.distributed.all_gather_object(peers, me)
        self.peers = peers
        self._thread = threading.Thread(target=self._watch, name="rank-watchdog", daemon=True)
        self._thread.start()
        # torchrun stops every worker with SIGTERM when one fails: look at once.
        try:
            prev = signal.getsignal(signal.SIGTERM)

            def on_term(signum, frame):
                self._poke.set()
                if callable(prev):
                    prev(signum, frame)
            signal.signal(signal.SIGTERM, on_term)
        except (ValueError, OSError):
            pass

    # ---- DDP
    def wrap(self, module, finish=lambda m: m):
        """``module`` in DDP over the parameters that need a gradient; rebuilt when that set
        changes, so frozen blocks never enter a gradient bucket. ``finish`` (torch.compile)
        is applied to each new wrapper."""
        key = tuple(p.requires_grad for p in module.parameters())
        if self._ddp is not None and key == self._ddp_key and self._ddp_src is module:
            return self._finished
        from torch.nn.parallel import DistributedDataParallel as DDP
        if not any(key):
            self._ddp = None
            self._finished = finish(module)
        else:
            ids = [self._dev.index] if self._dev.type == "cuda" else None
            # buffers (BatchNorm statistics) are broadcast from rank 0 at each forward, DDP's default
            self._ddp = DDP(module, device_ids=ids, gradient_as_bucket_view=True)
            self._finished = finish(self._ddp)
        self._ddp_key, self._ddp_src = key, module
        n_train = sum(p.numel() for p in module.parameters() if p.requires_grad)
        log.info("rank %d: DDP over %d trainable parameters", self.rank, n_train)
        return self._finished

    def loss(self, logits: torch.Tensor, y: torch.Tensor, n_real: int, n_global: int):
        """(loss to backpropagate, this rank's mean loss). DDP averages gradients over ranks,
        so each rank's share is sum(local) * world / global: the global batch's mean."""
        per = torch.nn.functional.cross_entropy(logits, y, reduction="none")
        local = per[:n_real].sum()
        return local * (self.world / max(1, n_global)), (local / max(1, n_real)).detach()

    # ---- agreement
    def poll(self, commands, batch: int) -> tuple[bool, bool]:
        """Stop and checkpoint requests, agreed by all ranks every SYNC_EVERY batches (only rank
        0 reads stdin; signals reach every rank)."""
        if (batch + 1) % SYNC_EVERY:
            return False, False
        ck = commands.take_checkpoint_request() if self.is_primary else False
        flags = self._reduce_max([float(commands.should_stop), float(ck)])
        return flags[0] > 0, flags[1] > 0

    def agree_stop(self, commands) -> bool:
        return self._reduce_max([float(commands.should_stop)])[0] > 0

    def _reduce_max(self, values: list[float]) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device=self.comm_device())
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return t.tolist()

    def sum_stats(self, *values):
        """Sum scalars (tensors or numbers) over the ranks; returns them in the same kinds."""
        t = torch.tensor([float(v.item()) if isinstance(v, torch.Tensor) else float(v) for v in values],
                         dtype=torch.float64, device=self.comm_device())
        torch.distributed.all_reduce(t)
        out = []
        for v, s in zip(values, t.tolist()):
            if isinstance(v, torch.Tensor):
                out.append(torch.as_tensor(s, dtype=v.dtype, device=v.device))
            else:
                out.append(type(v)(round(s)) if isinstance(v, int) else s)
        return tuple(out)

    def broadcast_object(self, obj):
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def _gather(self, obj) -> list:
        out: list = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def mask_checksum(self, masks: dict) -> str:
        mine = mask_checksum(masks)
        every = self._gather(mine)
        if len(set(every)) != 1:
            bad = [r for r, c in enumerate(every) if c != every[0]]
            raise RuntimeError(f"masks differ across ranks after the update (checksums {every}; "
                               f"rank(s) {bad} disagree with rank 0): stopping the run")
        return mine

    def check_consistency(self, trainer, epoch: int) -> None:
        """Compare masks, frozen prefix and sieve state of every rank at the epoch end."""
        sp, sv = trainer.sparsifier, trainer.sieve
        parts = {"epoch": epoch, "frozen_prefix": int(trainer.model.frozen_prefix),
                 "masks": mask_checksum(sp.masks), "active": _tensor_digest(sv.active),
                 "queue": _tensor_digest(sv.queue)}
        if os.environ.get(DUMP_ENV):
            parts["params"] = params_checksum(trainer.model)
            d = Path(os.environ[DUMP_ENV])
            d.mkdir(parents=True, exist_ok=True)
            with open(d / f"rank{self.rank}.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(parts) + "\n")
        every = self._gather(parts)
        for r, p in enumerate(every):
            diff = [k for k in ("frozen_prefix", "masks", "active", "queue") if p[k] != every[0][k]]
            if diff:
                raise RuntimeError(f"rank {r} differs from rank 0 after epoch {epoch} in {', '.join(diff)}: "
                                   "stopping the run")

    def gather_memory(self, mem: dict) -> dict:
        every = self._gather({"rank": self.rank, "peak_bytes": int(mem.get("peak_bytes", 0)),
                              "rss_bytes": int(mem.get("rss_bytes", 0))})
        out = dict(mem)
        out["peak_bytes"] = max(m["peak_bytes"] for m in every)
        out["ranks"] = every
        return out

    def describe(self) -> dict:
        hosts = sorted({p["host"] for p in self.peers}) if self.peers else []
        return {"world_size": self.world, "backend": self.backend, "nodes": len(hosts) or None,
                "ranks": self.peers}

    # ---- failure
    def note_epoch_state(self, make_state) -> None:
        """Rank 0 keeps the state of the last completed epoch to save if a peer dies."""
        if self.is_primary:
            self._snapshot = _cpu_copy(make_state())

    def _watch(self) -> None:
        host = socket.gethostname()
        local = [p for p in self.peers if p["host"] == host and p["rank"] != self.rank]
        while not self._watch_stop.is_set():
            self._poke.wait(WATCH_INTERVAL_S)
            self._poke.clear()
            if self._watch_stop.is_set():
                return
            for p in local:
                if not _alive(p["pid"]):
                    self.fail(f"rank {p['rank']} (pid {p['pid']} on {p['host']}) died", dead_rank=p["rank"])

    def fail(self, message: str, tb: str = "", dead_rank: int | None = None) -> None:
        """End this rank at once: on rank 0 save the last completed epoch (if newer than the
        checkpoint on disk) and emit the error event first. Never returns."""
        if dead_rank is not None and self._watch_stop.is_set():
            return                       # the job ended normally; a peer simply exited first
        if not self._fail_lock.acquire(blocking=False):
            time.sleep(3600)             # another thread is already failing this process
        try:
            em = self.emitter
            if self.is_primary and self.run_dir is not None and isinstance(em, GuardedEmitter):
                self.io_lock.acquire()       # waits for a checkpoint being written; never released
                em.dead = True
                saved = self._save_snapshot()
                where = f"; the last completed epoch is saved ({saved})" if saved else ""
                em.inner.emit("error", message=f"{message}: the distributed job stops{where}. "
                              f"Continue it with: spfde-train resume {self.run_dir}",
                              traceback=tb, fatal=True, rank=dead_rank)
                em.inner.close()
            else:
                log.error("rank %d: %s; stopping", self.rank, message)
        finally:
            logging.shutdown()
            os._exit(1)

    def _save_snapshot(self) -> str | None:
        if self._snapshot is None:
            return None
        state = self._snapshot
        try:
            on_disk = ckpt.load(self.run_dir, map_location="cpu")["position"]
            if (int(on_disk["epoch"]), int(on_disk["batch"])) >= (int(state["position"]["epoch"]), 0):
                return f"checkpoint of epoch {on_disk['epoch']} already on disk"
        except Exception:  # noqa: BLE001 - none yet, or unreadable: write ours
            pass
        try:
            path, _ = ckpt.save(self.run_dir, state)
            return str(path)
        except Exception as exc:  # noqa: BLE001
            log.error("could not save the last epoch's state: %s", exc)
            return None

    def failure(self, exc: BaseException) -> None:
        """A collective failed in the main thread: give the watchdog a moment to name the
        rank that died, else fail with the exception itself."""
        self._poke.set()
        deadline = time.monotonic() + 3.0
        host = socket.gethostname()
        while time.monotonic() < deadline:
            for p in self.peers:
                if p["host"] == host and p["rank"] != self.rank and not _alive(p["pid"]):
                    self.fail(f"rank {p['rank']} (pid {p['pid']} on {p['host']}) died", dead_rank=p["rank"])
            time.sleep(0.1)
        self.fail(f"rank {self.rank}: {type(exc).__name__}: {exc}",
                  tb="".join(traceback.format_exception(exc)), dead_rank=None)

    def finish(self) -> None:
        """After the run: wait for every rank, then stop watching (peers may now exit)."""
        torch.distributed.barrier()
        self._watch_stop.set()

    def close(self) -> None:
        self._watch_stop.set()
        self._poke.set()
        try:
            torch.distributed.destroy_process_group()
        except Exception:  # noqa: BLE001
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:   # a killed child torchrun has not reaped yet
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def init(cfg) -> Single:
    """Join the torchrun job of this process (or return ``Single`` outside torchrun)."""
    if not under_torchrun():
        return Single()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if world == 1:
        return Single()
    if cfg.batch_size % world:
        raise ConfigError([("batch_size", f"is the global batch, split evenly over the job's {world} processes; "
                                          f"{cfg.batch_size} is not a multiple of {world}")])
    backend = cfg.distributed.backend
    use_cuda = cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available())
    if backend == "auto":
        backend = "nccl" if use_cuda else "gloo"
    if backend == "nccl" and not torch.cuda.is_available():
        raise ConfigError([("distributed.backend", "nccl needs CUDA, which this machine lacks; use gloo or auto")])
    kw = {}
    if backend == "nccl":
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
        kw["device_id"] = torch.device("cuda", local_rank % torch.cuda.device_count())
    torch.distributed.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=cfg.distributed.timeout_s),
                                         **kw)
    log.info("rank %d of %d (local rank %d), backend %s", rank, world, local_rank, backend)
    return Context(cfg, rank, world, local_rank, backend)
