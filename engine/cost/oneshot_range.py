"""The forward FLOPs a one-shot global-threshold mask (SNIP, GraSP) can have.

Such a mask keeps exactly K = keep_count(all sparse weights, 1 - target) weights, but the
data decide which layers keep them, and a weight's FLOPs are its layer's MACs per weight
(2 x output positions): a weight of an early, high-resolution layer costs many times one
of the last stage. The plan prices the uniform split (Table 2's convention); measured at
90% on 2x ResNet-32, the real masks cost 2-3x more. This module gives the honest range:
the fewest FLOPs (K filled into the cheapest weights first) and the most (into the dearest
first), each layer holding at most its own weights. Pure Python.
"""
from __future__ import annotations

from engine.cost.arch import Arch
from engine.sparsity.allocation import dense_layer_names, keep_count


def forward_range(cfg, arch: Arch, target: float) -> tuple[float, float]:
    """(lowest, highest) forward FLOPs per sample of the whole model over every mask that
    keeps K of the sparse layers' weights (kept-dense layers at full cost)."""
    specs = arch.layer_specs()
    dense = dense_layer_names(cfg, specs)
    fixed = sum(2.0 * l.macs for l in arch.layers if l.name in dense) + arch.extra_flops
    sparse = [l for l in arch.layers if l.name not in dense and l.params > 0]
    k = keep_count(sum(l.params for l in sparse), 1.0 - float(target))

    def fill(order) -> float:
        left, flops = k, 0.0
        for l in order:
            take = min(left, l.params)
            flops += 2.0 * l.macs * take / l.params
            left -= take
        return flops
    per_weight = sorted(sparse, key=lambda l: l.macs / l.params)
    return fixed + fill(per_weight), fixed + fill(reversed(per_weight))
