"""Analytic description of every supported network, without torch.

The cost model, the planner and the GUI's live preview need each conv/linear layer's
shape and multiply-accumulates, and each freeze block's parameters and stored
activations; building a torch model (and importing torch) for that would cost seconds.
Tests check this description against the torch models (names, weight shapes and
FlopCounterMode FLOPs), so the two cannot drift.

Names follow docs/architecture.md: layers are named by their torch module path
(``stem.conv``, ``layer1.0.conv1``, ``layer2.0.shortcut.0``, ``layer1.0.downsample.0``,
``head.fc``); blocks are ``stem``, ``layerS.I``..., ``head``.

Activation convention (per sample, in elements), used for training memory: a block
stores the tensors it *produces* that autograd keeps for backward: every conv output
(the BatchNorm's saved input), every ReLU output (saved by the ReLU, and the next conv's
input), the max-pool output, the pooled feature vector (the linear layer's input) and the
logits (the loss's input). The stem also stores the input image (its conv's input). A
block's input is therefore counted once, by the block that produced it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from engine.config import MODELS, ConfigError, model_spec

# Depth -> basic blocks per stage of the CIFAR ResNets (6n+2 layers).
_CIFAR_BLOCKS = {"resnet20": 3, "resnet32": 5, "resnet56": 9}
_CIFAR_STAGES = (16, 32, 64)
_R50_BLOCKS = (3, 4, 6, 3)
_R50_PLANES = (64, 128, 256, 512)
_R50_EXPANSION = 4


def scaled(channels: int, width: float) -> int:
    """Channel count of a stage at a width multiplier (at least one channel)."""
    return max(1, int(round(channels * width)))


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str                    # "conv" or "linear"
    block: int                   # index into Arch.blocks
    weight_shape: tuple          # (out, in, kh, kw) or (out, in)
    stride: int
    in_hw: tuple                 # input spatial size (1, 1) for linear
    out_hw: tuple
    macs: int                    # multiply-accumulates per sample, dense
    params: int                  # weight elements (the prunable part)
    bias: int                    # bias elements (dense, never pruned)
    tags: frozenset              # subset of {"stem", "head", "shortcut"}

    @property
    def in_elems(self) -> int:
        return self.weight_shape[1] * self.in_hw[0] * self.in_hw[1]

    @property
    def out_elems(self) -> int:
        return self.weight_shape[0] * self.out_hw[0] * self.out_hw[1]

    @property
    def fan_in(self) -> int:
        n = 1
        for d in self.weight_shape[1:]:
            n *= d
        return n


@dataclass(frozen=True)
class Block:
    name: str
    index: int
    layers: tuple                # layer names, in forward order
    params: int                  # weights + biases + BatchNorm affine parameters
    bn_params: int               # BatchNorm affine parameters (part of params)
    activation_elems: int        # per sample, stored for backward (see module docstring)
    output_elems: int            # per sample, the block's output tensor
    grad_elems: int              # per sample, activation gradients alive while back-propagating it
    # forward FLOPs per sample outside the conv/linear layers (attention's matmuls...): counted
    # dense whatever the masks; 0 for the analytic ResNets, whose convention has none
    extra_flops: float = 0.0


@dataclass(frozen=True)
class Arch:
    model: str
    width: float
    num_classes: int
    image_size: int
    layers: tuple
    blocks: tuple
    input_elems: int
    layer_by_name: dict = field(compare=False, repr=False)
    # where the freeze blocks come from ("analytic", "timm group_matcher", "model.blocks"...)
    # and what the user should know about them (a fallback split): shown by `plan`
    blocks_from: str = field(default="analytic", compare=False)
    warnings: tuple = field(default=(), compare=False)

    @property
    def block_names(self) -> list[str]:
        return [b.name for b in self.blocks]

    @property
    def params(self) -> int:
        return sum(b.params for b in self.blocks)

    @property
    def extra_flops(self) -> float:
        """Forward FLOPs per sample outside the prunable layers (never scaled by a density)."""
        return sum(b.extra_flops for b in self.blocks)

    @property
    def forward_flops_dense(self) -> float:
        """Dense forward FLOPs per sample: the conv and linear layers (2 per MAC) plus the
        other matmuls of a measured model (attention)."""
        return 2.0 * sum(l.macs for l in self.layers) + self.extra_flops

    def layer_specs(self) -> list[tuple[str, tuple, set]]:
        """(name, weight shape, tags) per layer: the input of dst_schedule.layer_densities."""
        return [(l.name, l.weight_shape, set(l.tags)) for l in self.layers]

    def block_layers(self, index: int) -> list[Layer]:
        return [self.layer_by_name[n] for n in self.blocks[index].layers]


def _conv_out(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


class _Builder:
    """Accumulates layers and blocks while walking a network front to back."""

    def __init__(self, image_size: int):
        self.layers: list[Layer] = []
        self.blocks: list[Block] = []
        self._cur: list[Layer] = []
        self._bn = 0
        self._stored = 0

    def conv(self, name, cin, cout, k, stride, pad, hw, tags=()):
        oh = _conv_out(hw[0], k, stride, pad)
        ow = _conv_out(hw[1], k, stride, pad)
        layer = Layer(name=name, kind="conv", block=len(self.blocks),
                      weight_shape=(cout, cin, k, k), stride=stride, in_hw=tuple(hw),
                      out_hw=(oh, ow), macs=cout * cin * k * k * oh * ow,
                      params=cout * cin * k * k, bias=0, tags=frozenset(tags))
        self._cur.append(layer)
        self._stored += layer.out_elems     # BatchNorm keeps its input
        self._bn += 2 * cout                # every conv here is followed by a BatchNorm
        return (oh, ow)

    def linear(self, name, cin, cout, tags=()):
        layer = Layer(name=name, kind="linear", block=len(self.blocks),
                      weight_shape=(cout, cin), stride=1, in_hw=(1, 1), out_hw=(1, 1),
                      macs=cout * cin, params=cout * cin, bias=cout, tags=frozenset(tags))
        self._cur.append(layer)
        self._stored += cout                # logits, kept by the loss
        return layer

    def store(self, elems: int) -> None:
        """A non-conv tensor kept for backward (ReLU output, pool output, image)."""
        self._stored += elems

    def end_block(self, name: str, output_elems: int) -> None:
        # Backward through a block keeps the gradient of its output alive (the residual
        # path needs it) while the gradient flows layer by layer: bound it by the output
        # gradient plus the largest layer's input and output gradients.
        widest = max((l.in_elems + l.out_elems for l in self._cur), default=0)
        params = sum(l.params + l.bias for l in self._cur) + self._bn
        self.blocks.append(Block(
            name=name, index=len(self.blocks), layers=tuple(l.name for l in self._cur),
            params=params, bn_params=self._bn, activation_elems=self._stored,
            output_elems=output_elems, grad_elems=output_elems + widest))
        self.layers.extend(self._cur)
        self._cur, self._bn, self._stored = [], 0, 0


def _cifar_resnet(model: str, width: float, num_classes: int, image_size: int) -> _Builder:
    n = _CIFAR_BLOCKS[model]
    widths = [scaled(c, width) for c in _CIFAR_STAGES]
    b = _Builder(image_size)
    hw = (image_size, image_size)
    b.store(3 * image_size * image_size)
    hw = b.conv("stem.conv", 3, widths[0], 3, 1, 1, hw, tags=("stem",))
    b.store(widths[0] * hw[0] * hw[1])      # ReLU output
    b.end_block("stem", widths[0] * hw[0] * hw[1])
    cin = widths[0]
    for s, cout in enumerate(widths):
        for i in range(n):
            stride = 2 if (s > 0 and i == 0) else 1
            p = f"layer{s + 1}.{i}"
            in_hw = hw
            mid = b.conv(f"{p}.conv1", cin, cout, 3, stride, 1, in_hw)
            b.store(cout * mid[0] * mid[1])
            out = b.conv(f"{p}.conv2", cout, cout, 3, 1, 1, mid)
            if stride != 1 or cin != cout:
                b.conv(f"{p}.shortcut.0", cin, cout, 1, stride, 0, in_hw, tags=("shortcut",))
            b.store(cout * out[0] * out[1])   # ReLU after the addition
            b.end_block(p, cout * out[0] * out[1])
            hw, cin = out, cout
    b.store(cin)                               # pooled features: the linear layer's input
    b.linear("head.fc", cin, num_classes, tags=("head",))
    b.end_block("head", num_classes)
    return b


def _resnet50(width: float, num_classes: int, image_size: int) -> _Builder:
    # torchvision resnet50 (v1.5: the stride sits on the 3x3 conv of each bottleneck).
    b = _Builder(image_size)
    hw = (image_size, image_size)
    stem = scaled(64, width)
    b.store(3 * image_size * image_size)
    hw = b.conv("stem.conv", 3, stem, 7, 2, 3, hw, tags=("stem",))
    b.store(stem * hw[0] * hw[1])            # ReLU output (max-pool input)
    hw = (_conv_out(hw[0], 3, 2, 1), _conv_out(hw[1], 3, 2, 1))
    b.store(stem * hw[0] * hw[1])            # max-pool output
    b.end_block("stem", stem * hw[0] * hw[1])
    cin = stem
    for s, (planes, nblocks) in enumerate(zip(_R50_PLANES, _R50_BLOCKS)):
        mid_c = scaled(planes, width)
        out_c = mid_c * _R50_EXPANSION
        for i in range(nblocks):
            stride = 2 if (s > 0 and i == 0) else 1
            p = f"layer{s + 1}.{i}"
            in_hw = hw
            h1 = b.conv(f"{p}.conv1", cin, mid_c, 1, 1, 0, in_hw)
            b.store(mid_c * h1[0] * h1[1])
            h2 = b.conv(f"{p}.conv2", mid_c, mid_c, 3, stride, 1, h1)
            b.store(mid_c * h2[0] * h2[1])
            h3 = b.conv(f"{p}.conv3", mid_c, out_c, 1, 1, 0, h2)
            if stride != 1 or cin != out_c:
                b.conv(f"{p}.downsample.0", cin, out_c, 1, stride, 0, in_hw, tags=("shortcut",))
            b.store(out_c * h3[0] * h3[1])
            b.end_block(p, out_c * h3[0] * h3[1])
            hw, cin = h3, out_c
    b.store(cin)
    b.linear("head.fc", cin, num_classes, tags=("head",))
    b.end_block("head", num_classes)
    return b


@lru_cache(maxsize=64)
def _describe_analytic(model: str, width: float, num_classes: int, image_size: int) -> Arch:
    if model in _CIFAR_BLOCKS:
        b = _cifar_resnet(model, width, num_classes, image_size)
    elif model == "resnet50":
        if width != 1.0:   # the torch model is torchvision's fixed-width ResNet-50
            raise ConfigError([("model.width", f"resnet50 supports width 1 only, got {width:g}")])
        b = _resnet50(width, num_classes, image_size)
    else:
        raise ConfigError([("model.name", f"no cost description for model {model!r}; expected one of {', '.join(MODELS)}")])
    layers = tuple(b.layers)
    return Arch(model=model, width=width, num_classes=num_classes, image_size=image_size,
                layers=layers, blocks=tuple(b.blocks), input_elems=3 * image_size * image_size,
                layer_by_name={l.name: l for l in layers})


def describe(model_cfg, num_classes: int, image_size: int) -> Arch:
    """The network of ``model_cfg`` (engine.config.ModelConfig, or a RunConfig) at a class
    count and input resolution. Cached: repeated calls are free.

    The paper's ResNets are walked analytically here; any other model (timm:, py:, wrn28)
    is described by its measured cost table (engine.cost.measured)."""
    if hasattr(model_cfg, "model"):          # a whole RunConfig
        model_cfg = model_cfg.model
    if num_classes < 1:
        raise ConfigError([("data.num_classes", f"must be at least 1, got {num_classes}")])
    if image_size < 8:
        raise ConfigError([("data.image_size", f"must be at least 8, got {image_size}")])
    if model_spec.is_measured(model_cfg.name):
        from engine.cost import measured  # the table registry: a module of its own, no cycle
        return measured.arch_for(model_cfg, int(num_classes), int(image_size))
    return _describe_analytic(model_cfg.name, float(model_cfg.width), int(num_classes), int(image_size))


def from_table(table: dict) -> Arch:
    """An Arch from a cost table (``to_table``'s output, e.g. measured by the engine)."""
    layers = tuple(Layer(name=l["name"], kind=l["kind"], block=int(l["block"]),
                         weight_shape=tuple(l["weight_shape"]), stride=int(l.get("stride", 1)),
                         in_hw=tuple(l["in_hw"]), out_hw=tuple(l["out_hw"]), macs=int(l["macs"]),
                         params=int(l["params"]), bias=int(l["bias"]), tags=frozenset(l.get("tags", ())))
                   for l in table["layers"])
    blocks = tuple(Block(name=b["name"], index=i, layers=tuple(b["layers"]), params=int(b["params"]),
                         bn_params=int(b["bn_params"]), activation_elems=int(b["activation_elems"]),
                         output_elems=int(b["output_elems"]), grad_elems=int(b["grad_elems"]),
                         extra_flops=float(b.get("extra_flops", 0.0)))
                   for i, b in enumerate(table["blocks"]))
    return Arch(model=table["model"], width=float(table.get("width", 1.0)), num_classes=int(table["num_classes"]),
                image_size=int(table["image_size"]), layers=layers, blocks=blocks,
                input_elems=int(table["input_elems"]), layer_by_name={l.name: l for l in layers},
                blocks_from=str(table.get("blocks_from", "measured")),
                warnings=tuple(str(w) for w in table.get("warnings", ())))


def to_table(arch: Arch) -> dict:
    """The JSON form of an Arch: what ``spfde-train plan --json`` hands the studio."""
    return {
        "model": arch.model, "width": arch.width, "num_classes": arch.num_classes,
        "image_size": arch.image_size, "input_elems": arch.input_elems,
        "blocks_from": arch.blocks_from, "warnings": list(arch.warnings),
        "layers": [{"name": l.name, "kind": l.kind, "block": l.block, "weight_shape": list(l.weight_shape),
                    "stride": l.stride, "in_hw": list(l.in_hw), "out_hw": list(l.out_hw), "macs": l.macs,
                    "params": l.params, "bias": l.bias, "tags": sorted(l.tags)} for l in arch.layers],
        "blocks": [{"name": b.name, "layers": list(b.layers), "params": b.params, "bn_params": b.bn_params,
                    "activation_elems": b.activation_elems, "output_elems": b.output_elems,
                    "grad_elems": b.grad_elems, "extra_flops": b.extra_flops} for b in arch.blocks],
    }
