"""The sparse-training schedule's entry points: what the chosen method does at each epoch,
and the layer-wise densities of one overall sparsity under the method's allocation.

Pure Python (no torch): the planner, the cost model and the GUI preview import it, and the
sparsifier follows exactly the same numbers, so the projected and the trained densities
cannot drift apart. Each method's own schedule is its plug-in in engine.sparsity.methods
(MEST's: ALGORITHMS.md section 1); the functions below ask the chosen one. The split of a
sparsity over layers is engine.sparsity.allocation.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.sparsity.allocation import Layer, allocate, dense_layer_names, erk_densities, keep_count
from engine.sparsity.methods import METHODS, method_for
from engine.sparsity.methods.mest import MestEMS

if TYPE_CHECKING:
    from engine.config.schema import RunConfig

__all__ = ["Layer", "dense_layer_names", "keep_count", "erk_densities", "mask_densities", "layer_densities",
           "boundaries", "training_sparsity", "mask_update", "update_epochs"]


# ---------------------------------------------------------------- layer-wise densities

def mask_densities(cfg: RunConfig, layers: Sequence[Layer], sparsity: float | None = None) -> dict[str, float]:
    """The densities the masks really have: ``layer_densities`` rounded to whole weights, so
    the planner prices exactly what the sparsifier keeps (it matters for narrow layers)."""
    dens = layer_densities(cfg, layers, sparsity)
    numel = {name: math.prod(int(d) for d in shape) for name, shape, _ in layers}
    return {n: (keep_count(numel[n], d) / numel[n] if numel[n] else d) for n, d in dens.items()}


def layer_densities(cfg: RunConfig, layers: Sequence[Layer], sparsity: float | None = None) -> dict[str, float]:
    """Density of every layer at one overall sparsity (default: the target), split the way
    ``sparsity.distribution`` says (``auto``: the chosen method's own default)."""
    s = cfg.sparsity.target if sparsity is None else float(sparsity)
    dist = cfg.sparsity.distribution
    if dist == "auto":
        method = METHODS.get(cfg.sparsity.algorithm)
        dist = (method.distribution if method is not None else None) or "uniform"
    return allocate(cfg, layers, s, dist)


# ---------------------------------------------------------------- segment schedule

def boundaries(cfg: RunConfig) -> tuple[int, int]:
    """(late_start, search_end) in epochs of MEST EM&S's schedule, multiples of ``interval``
    (engine.sparsity.methods.mest holds the rule)."""
    return MestEMS(cfg).boundaries()


def training_sparsity(cfg: RunConfig, epoch: int) -> float:
    """Overall sparsity of the sparse layers while training during ``epoch``."""
    return method_for(cfg).training_sparsity(epoch)


def mask_update(cfg: RunConfig, epoch: int) -> tuple[float, float] | None:
    """(prune_to, grow_to) sparsities of the update at the start of ``epoch``, or None."""
    return method_for(cfg).mask_update(epoch)


def update_epochs(cfg: RunConfig) -> list[int]:
    """Every epoch at whose start the mask changes."""
    return method_for(cfg).update_epochs()
