"""WideResNet-28-k for CIFAR (Zagoruyko & Komodakis 2016): a 3x3 stem conv, 3 stages of 4
pre-activation basic blocks of 16k / 32k / 64k channels (stride 2 at stages 2 and 3, 1x1
projection shortcuts where the shape changes), then BN-ReLU, pooling and the classifier.

``model: {name: wrn28, width: 10}`` is WRN-28-10. Built in (rather than a shipped factory)
so it needs no confirmation in the studio and runs the Section 3 analyses (its blocks run
one after the other); its costs are measured like a timm model's (engine.models.measure),
the analytic walk (engine.cost.arch) staying the paper's four ResNets.
"""
from __future__ import annotations

from torch import nn

from .base import BlockModel, residual_stages

DEPTHS = {"wrn28": 4}      # basic blocks per stage: (depth - 4) / 6


class Stem(nn.Module):
    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)

    def forward(self, x):
        return self.conv(x)


class PreActBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=False)
        self.shortcut = None
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)

    def forward(self, x):
        o = self.relu(self.bn1(x))
        idt = x if self.shortcut is None else self.shortcut(o)
        o = self.conv1(o)
        o = self.conv2(self.relu(self.bn2(o)))
        return o + idt


class Head(nn.Module):
    def __init__(self, ch: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(ch)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(ch, num_classes)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.relu(self.bn(x)))))


class WideResNet(BlockModel):
    def __init__(self, n: int, widen: float, num_classes: int):
        widths = [max(1, int(round(c * widen))) for c in (16, 32, 64)]
        parts, blocks = residual_stages(Stem(3, 16), 16, widths, n, PreActBlock,
                                        lambda i: Head(i, num_classes))
        super().__init__(parts, blocks)
        self.blocks_from = "built-in (stem, each residual block, head)"
        self.warnings: list[str] = []
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)


def wide_resnet(name: str, widen: float, num_classes: int) -> WideResNet:
    return WideResNet(DEPTHS[name], widen, num_classes)
