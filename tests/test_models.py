"""Models: block partition, layer names (the contract of docs/architecture.md), shapes,
frozen prefix."""
import pytest
import torch

from engine.config import from_dict
from engine.models import build_model


def _model(name="resnet20", width=0.25, classes=10, size=8):
    return build_model(from_dict({"model": {"name": name, "width": width}, "data": {"image_size": size}}), classes)


@pytest.mark.parametrize("name,n", [("resnet20", 3), ("resnet32", 5), ("resnet56", 9)])
def test_cifar_partition_and_names(name, n):
    m = _model(name)
    expected_blocks = ["stem"] + [f"layer{s}.{i}" for s in (1, 2, 3) for i in range(n)] + ["head"]
    assert m.block_names == expected_blocks
    assert len(m.blocks) == len(expected_blocks)
    layers = [name for name, _ in m.prunable()]
    expected = ["stem.conv"]
    for s in (1, 2, 3):
        for i in range(n):
            expected += [f"layer{s}.{i}.conv1", f"layer{s}.{i}.conv2"]
            if s > 1 and i == 0:
                expected.append(f"layer{s}.{i}.shortcut.0")
    expected.append("head.fc")
    assert layers == expected
    lb = m.layer_block()
    assert lb["stem.conv"] == 0 and lb["head.fc"] == len(expected_blocks) - 1
    assert lb["layer2.0.shortcut.0"] == expected_blocks.index("layer2.0")
    tags = m.layer_tags()
    assert tags["stem.conv"] == {"stem"} and tags["head.fc"] == {"head"}
    assert {k for k, t in tags.items() if "shortcut" in t} == {"layer2.0.shortcut.0", "layer3.0.shortcut.0"}
    assert tags["layer1.0.conv1"] == set()
    # blocks is a view: no weight is stored twice in the state dict
    assert not any(k.startswith("blocks.") for k in m.state_dict())
    assert len(m.state_dict()) == len(dict(m.named_parameters())) + len(dict(m.named_buffers()))


def test_width_multiplier():
    m = _model("resnet32", width=2.0)
    mods = dict(m.named_modules())
    assert mods["stem.conv"].out_channels == 32
    assert mods["layer2.0.conv1"].out_channels == 64
    assert mods["layer3.4.conv2"].out_channels == 128
    assert mods["head.fc"].in_features == 128
    assert _model("resnet20", width=0.25).stem.conv.out_channels == 4


@pytest.mark.parametrize("size", [8, 13, 32])
def test_cifar_forward_shapes(size):
    m = _model("resnet20", classes=7, size=size)
    assert m(torch.randn(2, 3, size, size)).shape == (2, 7)


def test_resnet50_partition_and_forward():
    m = _model("resnet50", width=1.0, classes=5, size=16)
    assert m.block_names == (["stem"] + [f"layer{s}.{i}" for s, n in zip((1, 2, 3, 4), (3, 4, 6, 3))
                                          for i in range(n)] + ["head"])
    layers = [n for n, _ in m.prunable()]
    assert layers[:5] == ["stem.conv", "layer1.0.conv1", "layer1.0.conv2", "layer1.0.conv3", "layer1.0.downsample.0"]
    assert layers[-1] == "head.fc" and len(layers) == 54
    tags = m.layer_tags()
    assert sum("shortcut" in t for t in tags.values()) == 4
    assert m.layer_block()["layer4.2.conv3"] == len(m.block_names) - 2
    m.eval()
    assert m(torch.randn(2, 3, 16, 16)).shape == (2, 5)
    with pytest.raises(ValueError, match="model.width"):
        _model("resnet50", width=2.0)


def test_frozen_prefix_keeps_no_grad_and_fixes_bn():
    torch.manual_seed(0)
    m = _model("resnet20")
    m.train()
    m.frozen_prefix = 3  # stem, layer1.0, layer1.1
    stem_bn_mean = m.stem.bn.running_mean.clone()
    free_bn_mean = m.layer2[0].bn1.running_mean.clone()
    out = m(torch.randn(4, 3, 8, 8))
    out.sum().backward()
    for block in list(m.blocks)[:3]:
        assert all(p.grad is None for p in block.parameters())
        assert not block.training
    for block in list(m.blocks)[3:]:
        assert all(p.grad is not None for p in block.parameters())
        assert block.training
    assert torch.equal(m.stem.bn.running_mean, stem_bn_mean)
    assert not torch.equal(m.layer2[0].bn1.running_mean, free_bn_mean)
    # train() keeps frozen blocks in eval; unfreezing restores training mode
    m.train()
    assert not m.blocks[0].training
    m.frozen_prefix = 0
    assert all(b.training for b in m.blocks)
    with pytest.raises(ValueError, match="frozen_prefix"):
        m.frozen_prefix = len(m.blocks) + 1


def test_frozen_prefix_output_matches_unfrozen_in_eval():
    torch.manual_seed(0)
    m = _model("resnet20").eval()
    x = torch.randn(2, 3, 8, 8)
    ref = m(x)
    m.frozen_prefix = 5
    assert torch.allclose(m(x), ref)
