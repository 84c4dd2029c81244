"""Layer-wise density allocation (uniform, ERK) and which layers stay dense.

Pure Python with no project imports at run time, so the method plug-ins
(engine.sparsity.methods), the schedule and the config schema can all use it without a
cycle. Sparsities are *overall* sparsities of the sparse (not kept-dense) layers.
"""
from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.config.schema import RunConfig

# Tags ``sparsity.dense_layers`` accepts besides exact layer names.
LAYER_GROUPS = ("stem", "head", "shortcut")

# (name, weight shape, tags) as the model or engine.cost.arch describe a prunable layer.
Layer = tuple[str, Sequence[int], Iterable[str]]


def _is_pattern(entry: str) -> bool:
    return any(c in entry for c in "*?[")


def dense_layer_names(cfg: RunConfig, layers: Sequence[Layer]) -> set[str]:
    """The layers ``sparsity.dense_layers`` keeps dense: group tags, exact layer names, or
    module-name patterns (``blocks.*.attn.qkv``, ``head*``: fnmatch, ``*`` crosses dots)."""
    names = [name for name, _, _ in layers]
    known = set(names)
    entries = cfg.sparsity.dense_layers
    unknown = [e for e in entries if e not in LAYER_GROUPS and e not in known
               and not (_is_pattern(e) and fnmatch.filter(names, e))]
    if unknown:
        raise ValueError(
            f"sparsity.dense_layers: unknown layer name(s) or pattern(s) matching no layer "
            f"{', '.join(map(repr, unknown))} for model {cfg.model.name}; expected a group "
            f"({', '.join(LAYER_GROUPS)}), a pattern such as 'blocks.*.attn.*', or one of: {', '.join(names)}")
    wanted = set(entries)
    patterns = [e for e in entries if _is_pattern(e)]
    return {name for name, _, tags in layers
            if name in wanted or wanted & set(tags) or any(fnmatch.fnmatchcase(name, p) for p in patterns)}


def keep_count(numel: int, density: float) -> int:
    """Positions a layer of ``numel`` weights keeps at ``density`` (the masks' exact count)."""
    return max(0, min(numel, int(round(density * numel))))


def allocate(cfg: RunConfig, layers: Sequence[Layer], sparsity: float, distribution: str) -> dict[str, float]:
    """Density (fraction of weights kept) of every layer at one overall sparsity, split by
    ``distribution`` (uniform or erk, already resolved from ``auto``).

    Kept-dense layers get 1.0. The others share ``sparsity`` uniformly (density 1-s each)
    or by ERK, whose layer densities are weighted so that the sparse layers together keep
    exactly the fraction 1-s of their weights (up to the per-layer integer rounding).
    """
    s = float(sparsity)
    if not 0.0 <= s < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {s!r}")
    dense = dense_layer_names(cfg, layers)
    out = {name: 1.0 for name, _, _ in layers}
    sparse = [(name, tuple(int(d) for d in shape)) for name, shape, _ in layers if name not in dense]
    if s == 0.0 or not sparse:
        return out
    if distribution == "uniform":
        out.update({name: 1.0 - s for name, _ in sparse})
    elif distribution == "erk":
        out.update(erk_densities(sparse, 1.0 - s))
    elif distribution == "er":
        out.update(erk_densities(sparse, 1.0 - s, kernel=False))
    else:
        raise ValueError(f"sparsity.distribution: expected uniform, erk or er, got {cfg.sparsity.distribution!r}")
    return out


def erk_densities(shapes: Sequence[tuple[str, Sequence[int]]], density: float,
                  kernel: bool = True) -> dict[str, float]:
    """RigL's Erdos-Renyi-Kernel allocation: density_l proportional to sum(shape)/prod(shape);
    with ``kernel=False`` plain Erdos-Renyi (SET's, Mocanu et al.): (n_out + n_in)/(n_out n_in),
    the kernel dimensions left out, as RigL's ``erdos_renyi`` option.

    A layer whose density would exceed 1 is made dense and the rest re-solved (RigL's
    iterative redistribution), so the overall density of these layers stays ``density``.
    """
    numel = {name: math.prod(shape) for name, shape in shapes}
    if kernel:
        raw = {name: sum(shape) / numel[name] for name, shape in shapes}
    else:
        raw = {name: (shape[0] + shape[1]) / (shape[0] * shape[1]) for name, shape in shapes}
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
