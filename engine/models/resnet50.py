"""torchvision's ResNet-50 (random init, nothing downloaded) regrouped into freeze blocks:
stem (conv1 bn1 relu maxpool), each Bottleneck of layer1..layer4, head (avgpool, fc)."""
from __future__ import annotations

from torch import nn
from torchvision.models import resnet50 as tv_resnet50

from .base import BlockModel


class Stem(nn.Module):
    def __init__(self, conv: nn.Module, bn: nn.Module, relu: nn.Module, maxpool: nn.Module):
        super().__init__()
        self.conv, self.bn, self.relu, self.maxpool = conv, bn, relu, maxpool

    def forward(self, x):
        return self.maxpool(self.relu(self.bn(self.conv(x))))


class Head(nn.Module):
    def __init__(self, avgpool: nn.Module, fc: nn.Module):
        super().__init__()
        self.avgpool = avgpool
        self.flatten = nn.Flatten(1)
        self.fc = fc

    def forward(self, x):
        return self.fc(self.flatten(self.avgpool(x)))


class ResNet50(BlockModel):
    def __init__(self, num_classes: int = 1000):
        tv = tv_resnet50(weights=None, num_classes=num_classes)
        stem = Stem(tv.conv1, tv.bn1, tv.relu, tv.maxpool)
        parts: dict[str, nn.Module] = {"stem": stem}
        blocks: list[tuple[str, nn.Module]] = [("stem", stem)]
        for s in range(1, 5):
            stage = getattr(tv, f"layer{s}")
            parts[f"layer{s}"] = stage
            blocks += [(f"layer{s}.{i}", b) for i, b in enumerate(stage)]
        head = Head(tv.avgpool, tv.fc)
        parts["head"] = head
        blocks.append(("head", head))
        super().__init__(parts, blocks)


def resnet50(width: float, num_classes: int) -> ResNet50:
    if width != 1:
        raise ValueError(f"model.width: resnet50 is torchvision's fixed-width ResNet-50 and needs width 1, got {width!r}")
    return ResNet50(num_classes)
