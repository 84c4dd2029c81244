"""Training FLOPs and memory of a network at given layer densities and frozen prefix.

Pure Python, conventions of the SpFDE paper (docs/cost-model.md):

* FLOPs: conv and linear layers, 2 FLOPs per multiply-accumulate, a layer's forward
  FLOPs scaled by its density; a measured model's other matmuls (attention) are added
  dense (``Block.extra_flops``: zero for the analytic ResNets). Backward = 2 x forward,
  so training = 3 x forward per sample; a frozen block still runs forward but saves its 2 x forward of backward.
* Memory (bytes) = weights + activations kept for backward + weight gradients +
  activation gradients, all values at ``bits`` per number. A sparse layer stores its
  non-zeros as values plus CSR indices (a 16-bit column index when the layer's fan-in fits
  in 16 bits, else 32-bit, plus one 32-bit row pointer per output channel); it is stored
  dense when that is smaller. Biases and BatchNorm parameters are dense. Weight gradients
  are sparse (values only: they share the weights' indices). Frozen blocks keep their
  weights but need neither weight gradients, nor stored activations, nor activation
  gradients; the first trainable block keeps its input (its conv needs it for the weight
  gradient). Optimizer state (momentum) is not counted, as in the paper's Fig. 4.

``densities`` maps layer name -> density in [0, 1]; a layer it does not name is dense.
"""
from __future__ import annotations

from engine.cost.arch import Arch, Layer

MEMORY_PARTS = ("weights", "weight_grads", "activations", "activation_grads")
ROW_POINTER_BITS = 32


def layer_forward_flops(arch: Arch, densities: dict | None = None) -> dict[str, float]:
    d = densities or {}
    return {l.name: 2.0 * l.macs * d.get(l.name, 1.0) for l in arch.layers}


def block_forward_flops(arch: Arch, densities: dict | None = None) -> list[float]:
    """Forward FLOPs per sample of each block, front to back: its conv/linear layers at their
    densities plus its other matmuls (attention; none in the analytic ResNets), always dense."""
    d = densities or {}
    out = [b.extra_flops for b in arch.blocks]
    for l in arch.layers:
        out[l.block] += 2.0 * l.macs * d.get(l.name, 1.0)
    return out


def forward_flops(arch: Arch, densities: dict | None = None) -> float:
    return sum(block_forward_flops(arch, densities))


def training_flops_per_sample(arch: Arch, densities: dict | None = None, frozen_prefix: int = 0) -> float:
    """3 x forward, minus the backward (2 x forward) of the frozen leading blocks."""
    blocks = block_forward_flops(arch, densities)
    return 3.0 * sum(blocks) - 2.0 * sum(blocks[:frozen_prefix])


def nonzeros(layer: Layer, density: float) -> int:
    return int(round(layer.params * density))


def index_bits(layer: Layer) -> int:
    return 16 if layer.fan_in <= 1 << 16 else 32


def weight_bytes(layer: Layer, density: float, bits: int = 32) -> float:
    """Storage of one layer's weight tensor (sparse as values + CSR indices, or dense)."""
    dense = layer.params * bits / 8
    if density >= 1.0:
        return dense
    nnz = nonzeros(layer, density)
    sparse = nnz * (bits + index_bits(layer)) / 8 + (layer.weight_shape[0] + 1) * ROW_POINTER_BITS / 8
    return min(dense, sparse)


def memory(arch: Arch, densities: dict | None, frozen_prefix: int, batch_size: int,
           bits: int = 32) -> dict[str, float]:
    """Training memory in bytes by part, and ``total``."""
    d = densities or {}
    vb = bits / 8
    nblocks = len(arch.blocks)
    p = max(0, min(int(frozen_prefix), nblocks))
    weights = grads = 0.0
    for l in arch.layers:
        dens = d.get(l.name, 1.0)
        weights += weight_bytes(l, dens, bits) + l.bias * vb
        if l.block >= p:
            grads += (nonzeros(l, dens) + l.bias) * vb
    for b in arch.blocks:
        weights += b.bn_params * vb
        if b.index >= p:
            grads += b.bn_params * vb
    trainable = arch.blocks[p:]
    stored = sum(b.activation_elems for b in trainable)
    if trainable and p > 0:
        stored += arch.blocks[p - 1].output_elems
    act_grad = max((b.grad_elems for b in trainable), default=0)
    parts = {
        "weights": weights,
        "weight_grads": grads,
        "activations": stored * batch_size * vb,
        "activation_grads": act_grad * batch_size * vb,
    }
    parts["total"] = sum(parts[k] for k in MEMORY_PARTS)
    return parts
