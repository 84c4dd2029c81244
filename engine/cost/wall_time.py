"""Wall-time estimates from measured throughput: one design for ``plan``, the studio's cost
panel, sweep and search plans.

Time follows the FLOPs the hardware *executes*, not the sparse FLOPs the paper counts: a
mask zeroes weights, it does not skip them, so a masked layer costs its dense FLOPs, while
freezing (no backward) and sieving (fewer samples) really skip work (``executed_flops``).
A machine's speed for one model, device and batch is measured, never assumed:

* every run records its own rate (executed FLOPs over its training and evaluation time)
  at its end (engine.training.throughput), so the next plan of that model on this machine
  is timed for free;
* ``spfde-train plan --calibrate`` measures a few batches when no run has yet.

The rates live in ``throughput.json`` in the cache folder (``$SPFDE_CACHE_DIR``, else
``$XDG_CACHE_HOME/spfde``, else ``~/.cache/spfde``), keyed by machine, device, model,
image size, batch, precision and thread policy. Without a rate the estimate says so
(``seconds: None`` with the reason) rather than guess. Pure Python.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from engine import atomic_file

CACHE_FILE = "throughput.json"
# A fresh process importing torch and building data and model, before its first epoch: what
# FLOPs do not capture. Each run measures its own (``startup_s`` in the cache); this is the
# figure used until one has (a guess for a small model on a CPU).
STARTUP_S = 5.0
MAX_ENTRIES = 500


def cache_dir() -> Path:
    if os.environ.get("SPFDE_CACHE_DIR"):
        return Path(os.environ["SPFDE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "spfde"


def _num(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def executed_flops(flops: dict) -> float:
    """FLOPs the hardware executes for a ledger's or plan's ``flops`` ({spent, dense, saved,
    overhead}): the dense equivalent less what sieving and freezing skip, both scaled from
    sparse to dense FLOPs, plus the overheads at the same scale."""
    dense = _num(flops.get("dense"))
    saved, over = _dict(flops.get("saved")), _dict(flops.get("overhead"))
    sparse_run = dense - _num(saved.get("sparsity"))
    if dense <= 0 or sparse_run <= 0:
        return _num(flops.get("spent"))
    scale = dense / sparse_run
    skipped = scale * (_num(saved.get("sieve")) + _num(saved.get("freeze")))
    return max(0.0, dense - skipped) + scale * sum(_num(v) for v in over.values())


def device_kind(device: str) -> str:
    """cpu, cuda or mps as a run records it (``auto`` is decided by the engine)."""
    d = str(device).split(":")[0]
    return d if d in ("cpu", "cuda", "mps") else "auto"


def key(cfg, device: str | None = None) -> str:
    """The cache key of a configuration on this machine."""
    m, d = cfg.model, cfg.data
    parts = [socket.gethostname(), f"cpus{os.cpu_count()}", device_kind(device or cfg.device), str(m.name),
             f"w{getattr(m, 'width', 1)}", f"px{d.image_size}", f"b{cfg.batch_size}", str(cfg.precision),
             f"t{cfg.threads}"]
    return "|".join(parts)


def read_cache(path: Path | None = None) -> dict[str, dict]:
    p = path or cache_dir() / CACHE_FILE
    try:
        if not p.is_file() or p.stat().st_size > 4 * 2**20:
            return {}
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict) and _num(v.get("flops_per_s")) > 0} \
        if isinstance(data, dict) else {}


def lookup(cfg, path: Path | None = None) -> dict | None:
    """The measured rate for ``cfg`` on this machine, or None. device auto: the GPU's rate
    when one was measured here, else the CPU's."""
    cache = read_cache(path)
    if device_kind(cfg.device) != "auto":
        return cache.get(key(cfg))
    for kind in ("cuda", "mps", "cpu"):
        hit = cache.get(key(cfg, kind))
        if hit:
            return hit
    return None


def record(cfg, device: str, flops_per_s: float, source: str, path: Path | None = None,
           startup_s: float | None = None) -> None:
    """Store a measured rate, and the start-up when measured (a calibration keeps the
    start-up an earlier run measured). Atomic; the cache is advisory, so a failure is ignored."""
    if not flops_per_s > 0:
        return
    p = path or cache_dir() / CACHE_FILE
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        cache = read_cache(p)
        k = key(cfg, device)
        entry = {"flops_per_s": float(flops_per_s), "time": time.time(), "source": source}
        old_startup = (cache.get(k) or {}).get("startup_s")
        if startup_s is not None and startup_s > 0:
            entry["startup_s"] = float(startup_s)
        elif isinstance(old_startup, (int, float)):
            entry["startup_s"] = float(old_startup)
        cache[k] = entry
        if len(cache) > MAX_ENTRIES:        # the oldest go
            cache = dict(sorted(cache.items(), key=lambda kv: kv[1].get("time", 0))[-MAX_ENTRIES:])
        atomic_file.write_text(p, json.dumps(cache, indent=1))
    except OSError:
        pass


def estimate(cfg, plan: dict, rate: dict | None = None) -> dict:
    """{seconds, flops_per_s, source, freeze_saves_s, sieve_saves_s, why}: the run's wall time
    from the plan's FLOPs and the measured rate (``lookup`` when not given); seconds None
    with ``why`` when this machine has no measurement for the model yet."""
    rate = rate if rate is not None else lookup(cfg)
    flops = _dict(plan.get("flops"))
    if not rate:
        return {"seconds": None, "flops_per_s": None, "source": None, "freeze_saves_s": None, "sieve_saves_s": None,
                "why": "no measured speed for this model, batch and device on this machine yet: "
                       "spfde-train plan --calibrate measures it (a few batches), and every run records its own"}
    r = float(rate["flops_per_s"])
    dense = _num(flops.get("dense"))
    saved = _dict(flops.get("saved"))
    sparse_run = dense - _num(saved.get("sparsity"))
    scale = dense / sparse_run if dense > 0 and sparse_run > 0 else 1.0
    startup = _num(rate.get("startup_s")) or STARTUP_S
    return {"seconds": startup + executed_flops(flops) / r, "flops_per_s": r, "source": rate.get("source"),
            "startup_s": startup,
            "freeze_saves_s": scale * _num(saved.get("freeze")) / r, "sieve_saves_s": scale * _num(saved.get("sieve")) / r,
            "why": ""}


def duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return "unknown"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 86400:
        return f"{s // 3600} h {(s % 3600) // 60:02d} min"
    return f"{s / 86400:.1f} days"


def describe(est: dict) -> str:
    """One line for ``plan`` and the studio."""
    if est.get("seconds") is None:
        return f"wall time: unknown ({est.get('why')})"
    saves = [f"freezing saves {duration(est['freeze_saves_s'])}" if est.get("freeze_saves_s") else "",
             f"sieving saves {duration(est['sieve_saves_s'])}" if est.get("sieve_saves_s") else ""]
    saves_text = "; ".join(s for s in saves if s)
    return (f"wall time: about {duration(est['seconds'])} at {est['flops_per_s']:.3g} executed FLOPs/s "
            f"(measured by {est.get('source')})" + (f"; {saves_text}" if saves_text else ""))
