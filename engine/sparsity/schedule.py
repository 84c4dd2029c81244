"""The sparse-training schedule's entry points and the layer-wise density allocation (uniform, ERK).

Pure Python (no torch): the planner, the cost model and the GUI preview import it, and the
sparsifier follows exactly the same numbers, so the projected and the trained densities
cannot drift apart. Each method's own schedule is its plug-in in engine.sparsity.methods
(MEST's: ALGORITHMS.md section 1); the functions below ask the chosen one.

All sparsities here are *overall* sparsities of the sparse (not kept-dense) layers; the
layer-wise split of one overall sparsity is ``layer_densities``.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

from engine.config import LAYER_GROUPS, RunConfig

# (name, weight shape, tags) as the model or engine.cost.arch describe a prunable layer.
Layer = tuple[str, Sequence[int], Iterable[str]]


# ---------------------------------------------------------------- layer-wise densities

def dense_layer_names(cfg: RunConfig, layers: Sequence[Layer]) -> set[str]:
    """The layers ``sparsity.dense_layers`` keeps dense (group tags or exact names)."""
    names = [name for name, _, _ in layers]
    known = set(names)
    unknown = [e for e in cfg.sparsity.dense_layers if e not in LAYER_GROUPS and e not in known]
    if unknown:
        raise ValueError(
            f"sparsity.dense_layers: unknown layer name(s) {', '.join(map(repr, unknown))} for model "
            f"{cfg.model.name}; expected a group ({', '.join(LAYER_GROUPS)}) or one of: {', '.join(names)}")
    wanted = set(cfg.sparsity.dense_layers)
    return {name for name, _, tags in layers if name in wanted or wanted & set(tags)}


def keep_count(numel: int, density: float) -> int:
    """Positions a layer of ``numel`` weights keeps at ``density`` (the masks' exact count)."""
    return max(0, min(numel, int(round(density * numel))))


def mask_densities(cfg: RunConfig, layers: Sequence[Layer], sparsity: float | None = None) -> dict[str, float]:
    """The densities the masks really have: ``layer_densities`` rounded to whole weights, so
    the planner prices exactly what the sparsifier keeps (it matters for narrow layers)."""
    dens = layer_densities(cfg, layers, sparsity)
    numel = {name: math.prod(int(d) for d in shape) for name, shape, _ in layers}
    return {n: (keep_count(numel[n], d) / numel[n] if numel[n] else d) for n, d in dens.items()}


def layer_densities(cfg: RunConfig, layers: Sequence[Layer], sparsity: float | None = None) -> dict[str, float]:
    """Density (fraction of weights kept) of every layer at one overall sparsity.

    Kept-dense layers get 1.0. The others share ``sparsity`` uniformly (density 1-s each)
    or by ERK, whose layer densities are weighted so that the sparse layers together keep
    exactly the fraction 1-s of their weights (up to the per-layer integer rounding).
    """
    s = cfg.sparsity.target if sparsity is None else float(sparsity)
    if not 0.0 <= s < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {s!r}")
    dense = dense_layer_names(cfg, layers)
    out = {name: 1.0 for name, _, _ in layers}
    sparse = [(name, tuple(int(d) for d in shape)) for name, shape, _ in layers if name not in dense]
    if s == 0.0 or not sparse:
        return out
    dist = cfg.sparsity.distribution
    if dist == "auto":
        from engine.sparsity.methods import METHODS
        method = METHODS.get(cfg.sparsity.algorithm)
        dist = (method.distribution if method is not None else None) or "uniform"
    if dist == "uniform":
        out.update({name: 1.0 - s for name, _ in sparse})
    elif dist == "erk":
        out.update(erk_densities(sparse, 1.0 - s))
    else:
        raise ValueError(f"sparsity.distribution: expected uniform or erk, got {cfg.sparsity.distribution!r}")
    return out


def erk_densities(shapes: Sequence[tuple[str, Sequence[int]]], density: float) -> dict[str, float]:
    """RigL's Erdos-Renyi-Kernel allocation: density_l proportional to sum(shape)/prod(shape).

    A layer whose density would exceed 1 is made dense and the rest re-solved (RigL's
    iterative redistribution), so the overall density of these layers stays ``density``.
    """
    numel = {name: math.prod(shape) for name, shape in shapes}
    raw = {name: sum(shape) / numel[name] for name, shape in shapes}
    capped: set[str] = set()
    while True:
        free = [n for n in numel if n not in capped]
        if not free:  # only reachable at density 1: everything dense
            return {n: 1.0 for n in numel}
        # Weights the free layers must keep once the capped ones keep all of theirs.
        rhs = density * sum(numel.values()) - sum(numel[n] for n in capped)
        eps = rhs / sum(raw[n] * numel[n] for n in free)
        top = max(raw[n] for n in free)
        if eps * top <= 1.0:
            out = {n: 1.0 for n in capped}
            out.update({n: eps * raw[n] for n in free})
            return out
        capped.update(n for n in free if raw[n] == top)


# ---------------------------------------------------------------- segment schedule

def boundaries(cfg: RunConfig) -> tuple[int, int]:
    """(late_start, search_end) in epochs of MEST EM&S's schedule, multiples of ``interval``
    (engine.sparsity.methods.mest holds the rule)."""
    from engine.sparsity.methods.mest import MestEMS
    return MestEMS(cfg).boundaries()


def _method(cfg: RunConfig):
    from engine.sparsity.methods import method_for   # the registry imports this module
    return method_for(cfg)


def training_sparsity(cfg: RunConfig, epoch: int) -> float:
    """Overall sparsity of the sparse layers while training during ``epoch``."""
    return _method(cfg).training_sparsity(epoch)


def mask_update(cfg: RunConfig, epoch: int) -> tuple[float, float] | None:
    """(prune_to, grow_to) sparsities of the update at the start of ``epoch``, or None."""
    return _method(cfg).mask_update(epoch)


def update_epochs(cfg: RunConfig) -> list[int]:
    """Every epoch at whose start the mask changes."""
    return _method(cfg).update_epochs()
