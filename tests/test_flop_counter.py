"""engine.cost.arch (pure Python) against the torch models: the same layer names, weight shapes,
blocks and parameter counts, and dense forward FLOPs equal to PyTorch's own
FlopCounterMode count of the conv and linear operations."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from engine.config import from_dict  # noqa: E402
from engine.cost import arch as arch_mod  # noqa: E402
from engine.models import build_model  # noqa: E402

CASES = [("resnet20", 1.0, 32), ("resnet20", 2.0, 32), ("resnet32", 1.0, 32), ("resnet32", 2.0, 32),
         ("resnet56", 1.0, 32), ("resnet56", 2.0, 32), ("resnet20", 0.25, 16), ("resnet50", 1.0, 64)]
NUM_CLASSES = 10
CONV_LINEAR_OPS = {"convolution", "addmm", "mm"}


def _pair(name, width, size):
    cfg = from_dict({"model": {"name": name, "width": width}, "data": {"image_size": size, "num_classes": NUM_CLASSES}})
    torch.manual_seed(0)
    model = build_model(cfg, NUM_CLASSES).eval()
    return model, arch_mod.describe(cfg.model, NUM_CLASSES, size)


@pytest.mark.parametrize("name, width, size", CASES)
def test_dense_forward_flops_match_flop_counter(name, width, size):
    model, a = _pair(name, width, size)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, 3, size, size))
    counts = counter.get_flop_counts()["Global"]
    counted = sum(v for op, v in counts.items() if op.__name__.split(".")[0] in CONV_LINEAR_OPS)
    assert counted > 0
    assert a.forward_flops_dense == counted


@pytest.mark.parametrize("name, width, size", CASES)
def test_layers_blocks_and_params_match_the_model(name, width, size):
    model, a = _pair(name, width, size)
    prunable = model.prunable()
    assert [l.name for l in a.layers] == [n for n, _ in prunable]
    assert [l.weight_shape for l in a.layers] == [tuple(m.weight.shape) for _, m in prunable]
    assert a.block_names == list(model.block_names)
    assert {l.name: l.block for l in a.layers} == model.layer_block()
    assert {l.name: set(l.tags) for l in a.layers} == model.layer_tags()
    for b, module in zip(a.blocks, model.blocks):
        assert b.params == sum(p.numel() for p in module.parameters()), b.name
    assert a.params == sum(p.numel() for p in model.parameters())
    strides = {n: m.stride[0] for n, m in prunable if isinstance(m, torch.nn.Conv2d)}
    assert {l.name: l.stride for l in a.layers if l.kind == "conv"} == strides
