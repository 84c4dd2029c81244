"""Typed shapes of the dicts the engine, the studio and the report exchange: FLOPs, the
plan (``engine.cost.projection.project``) and the freeze plan (``engine.freezing.schedule.schedule_freeze``).

They stay plain dicts on the wire (JSON events, checkpoints); these TypedDicts give each
key one name and one type, checked by mypy. One name per quantity (docs/cost-model.md):

* ``spent``    FLOPs actually spent, overhead included;
* ``dense``    the dense equivalent of the same schedule;
* ``saved``    savings by source: ``sparsity``, ``freeze``, ``sieve``;
* ``overhead`` FLOPs spent on top of the sparse training itself, by source (e.g.
  ``dst_dense_grad``, ``mask_scoring``, ``analysis``); empty when nothing adds any.

Pure Python, no imports beyond typing.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypedDict

Source = Literal["sparsity", "freeze", "sieve"]
SOURCES: tuple[Source, ...] = ("sparsity", "freeze", "sieve")
# FLOPs spent on top of the sparse training itself, by source (``spent`` includes them):
# RigL's dense-gradient steps, SNIP/GraSP's scoring passes, the analyses' probe forwards.
OVERHEAD: tuple[str, ...] = ("dst_dense_grad", "mask_scoring", "analysis")


class Saved(TypedDict):
    sparsity: float
    freeze: float
    sieve: float


class _FlopsCore(TypedDict):
    spent: float
    dense: float
    saved: Saved


class Flops(_FlopsCore):
    """A FLOPs ledger entry: one epoch, or the cumulative total (``epoch_end.flops``)."""
    overhead: dict[str, float]


class FlopsTotals(Flops, total=False):
    """``run_finished.flops``: the cumulative ledger plus the epochs it counts."""
    epochs: int


class ProjectedFlops(Flops):
    """``plan["flops"]``: the projected run total."""
    forward_dense_per_sample: float


class EpochProjection(TypedDict):
    """One row of ``plan["epochs"]``."""
    epoch: int
    samples: int
    density: float
    training_sparsity: float
    frozen_prefix: int
    flops: Flops
    memory_bytes: float


class MemoryProjection(TypedDict):
    bits: int
    batch_size: int
    peak_bytes: float
    peak_epoch: int
    min_bytes: float
    min_epoch: int
    average_bytes: float
    dense_bytes: float
    by_part: dict[str, dict[str, float]]


class FreezeSchedule(TypedDict, total=False):
    """``engine.freezing.schedule.schedule_freeze``'s result (``plan["freeze_plan"]``, ``run_started.freeze_plan``).
    Schemes may add keys of their own (``period``, ``delay_epochs``); these are always there."""
    scheme: str
    target: float
    achieved: float                # = saving_share (kept for older readers)
    saving_share: float            # freeze saving / (spent + freeze saving), the ledger's share
    reduction: float               # the paper's figure: 1 - FLOPs with freezing / FLOPs without
    warnings: list[str]            # e.g. a given start epoch that misses the target
    max_reachable: float
    start_epoch: int
    start_given: bool              # freeze.start_epoch set: t_frz given, nothing searched
    prune_frozen: bool             # a freezing block is cut to the target density
    interval: int
    layer_fraction: float
    freeze_epochs: dict[str, int]  # block name -> first epoch in the frozen prefix
    frozen_prefix: list[int]       # leading blocks frozen in each epoch
    block_lr_end: list[int]        # epoch at which each block's cosine reaches end_lr
    resume_epoch: int | None
    resume_lr: float | None
    cost_without_freezing: float
    epoch_saving: list[float]
    adaptive: dict[str, Any]       # freeze.scheme adaptive: {min_saving, max_saving, earliest_prefix, ...}


class Segment(TypedDict):
    """One row of ``plan["segments"]``: epochs [start, end) with constant densities,
    frozen prefix and samples; ``flops`` is one epoch's entry."""
    start: int
    end: int
    samples: int
    density: float
    training_sparsity: float
    frozen_prefix: int
    flops: Flops
    memory_bytes: float


class BlockInfo(TypedDict):
    name: str
    params: int
    forward_flops: float
    extra_flops: float             # of forward_flops: outside conv/linear (attention), measured models only
    layers: list[str]


class Projection(TypedDict):
    """``engine.cost.projection.project``: the whole run projected by segments; ``epochs`` expands them
    into per-epoch rows on demand (an ``engine.cost.projection.EpochRows`` sequence)."""
    model: dict[str, Any]
    dataset: dict[str, Any]
    method: dict[str, Any]         # {name, exact, distribution}
    segments: list[Segment]
    epochs: Sequence[EpochProjection]
    blocks: list[BlockInfo]
    freeze_plan: FreezeSchedule | None
    flops: ProjectedFlops
    memory: MemoryProjection
    probes: list[list[float]]      # [[epoch, FLOPs], ...]: the analyses' probe forwards, on top of segments


class Projected(TypedDict, total=False):
    """``run_started.projected``: the parts of the plan a reader of the events needs."""
    flops: ProjectedFlops
    memory: MemoryProjection
    segments: list[Segment]
    method: dict[str, Any]
    epochs: list[EpochProjection]  # runs written before segments (read only)
    probes: list[list[float]]      # [[epoch, FLOPs], ...] on top of the segments (analysis.enabled)


def cumulative_spent(projected: Projected | dict | None) -> list[float]:
    """The projected spent FLOPs summed epoch by epoch: the segments plus the analyses' probe
    forwards at their epochs, so it ends at ``flops.spent``, the figure every other place
    shows ([] when the projection has no epochs)."""
    proj = projected or {}
    segs = proj.get("segments")
    if isinstance(segs, list) and segs:
        per = [float(s["flops"]["spent"]) for s in segs for _ in range(int(s["end"]) - int(s["start"]))]
    else:
        rows = proj.get("epochs")      # rows already include their probes
        return _running_sum([float(r["flops"]["spent"]) for r in rows]) if isinstance(rows, list) else []
    for e, f in proj.get("probes") or []:
        if 0 <= int(e) < len(per):
            per[int(e)] += float(f)
    return _running_sum(per)


def _number(v) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0


def saving_shares(flops: Flops | dict | None) -> dict[str, float | None]:
    """Each technique's saving in the terms its target is set in, from a ledger's or a plan's
    ``flops`` (the one function the plan's ``achieved``, the FLOPs tab, the report and the
    terminal summary share): sparsity and sieving as fractions of the dense cost (sieving
    of what sparsity leaves), freezing as freeze saving / (training FLOPs spent + freeze
    saving), the training FLOPs being ``spent`` less the overheads (analysis probes, mask
    scoring, RigL's dense gradients), which freeze.target does not count. None when the
    figures are missing or zero."""
    f: dict[str, Any] = dict(flops or {})
    saved: dict[str, Any] = f["saved"] if isinstance(f.get("saved"), dict) else {}
    over: dict[str, Any] = f["overhead"] if isinstance(f.get("overhead"), dict) else {}
    spent, dense = _number(f.get("spent")), _number(f.get("dense"))
    sp, fr, sv = (_number(saved.get(k)) for k in ("sparsity", "freeze", "sieve"))
    training = spent - sum(_number(v) for v in over.values())
    return {"sparsity": sp / dense if dense > 0 else None,
            "sieve": sv / (dense - sp) if dense > sp else None,
            "freeze": fr / (training + fr) if training + fr > 0 else None}


def _running_sum(xs: list[float]) -> list[float]:
    out, t = [], 0.0
    for x in xs:
        t += x
        out.append(t)
    return out


def zero_flops() -> Flops:
    return {"spent": 0.0, "dense": 0.0, "saved": {"sparsity": 0.0, "freeze": 0.0, "sieve": 0.0},
            "overhead": {k: 0.0 for k in OVERHEAD}}


def add_flops(total: Flops, part: Flops, times: int = 1) -> Flops:
    """total + times x part (a segment of ``times`` equal epochs); overhead sources absent
    from one side count as 0."""
    over = dict(total.get("overhead") or {})
    for k, v in (part.get("overhead") or {}).items():
        over[k] = over.get(k, 0.0) + times * v
    return {"spent": total["spent"] + times * part["spent"], "dense": total["dense"] + times * part["dense"],
            "saved": {"sparsity": total["saved"]["sparsity"] + times * part["saved"]["sparsity"],
                      "freeze": total["saved"]["freeze"] + times * part["saved"]["freeze"],
                      "sieve": total["saved"]["sieve"] + times * part["saved"]["sieve"]},
            "overhead": over}


def with_overhead(entry: Flops, overhead: dict[str, float]) -> Flops:
    """An entry plus FLOPs spent on top of the training itself, by source (e.g. ``analysis``):
    they add to ``spent`` and ``overhead``, never to ``dense`` or the savings."""
    merged = dict(entry.get("overhead") or {})
    extra = 0.0
    for k, v in overhead.items():
        if v:
            merged[k] = merged.get(k, 0.0) + float(v)
            extra += float(v)
    return {**entry, "spent": entry["spent"] + extra, "overhead": merged}


def read_flops(d: Any) -> Flops | None:
    """A FLOPs payload read from an event file or a checkpoint, or None when ``d`` is not one.

    Run folders written before the naming was unified hold the plan's spent FLOPs as
    ``total`` (in ``run_started.projected.flops``) and no ``overhead``: both are read here,
    in this one place, so that old runs still open and report."""
    if not isinstance(d, dict):
        return None
    spent = d.get("spent", d.get("total"))      # "total": runs written before the rename
    dense = d.get("dense")
    saved: dict[str, Any] = d["saved"] if isinstance(d.get("saved"), dict) else {}
    if not isinstance(spent, (int, float)) or not isinstance(dense, (int, float)):
        return None
    over: dict[str, Any] = d["overhead"] if isinstance(d.get("overhead"), dict) else {}
    return {"spent": float(spent), "dense": float(dense),
            "saved": {"sparsity": float(saved.get("sparsity", 0.0) or 0.0),
                      "freeze": float(saved.get("freeze", 0.0) or 0.0),
                      "sieve": float(saved.get("sieve", 0.0) or 0.0)},
            "overhead": {str(k): float(v) for k, v in over.items() if isinstance(v, (int, float))}}


class Requeued(TypedDict, total=False):
    """The ``requeued`` event's fields (engine.executor.job.requeue_fields): Slurm restarted
    the job and the run resumed from its folder."""
    attempt: int            # 2 at the first requeue
    restart_count: int      # SLURM_RESTART_COUNT
    job_id: str             # <array>_<task> or the job id
    node: str
