"""CIFAR ResNets (He et al. 2016, section 4.2): 3 stages of n basic blocks, widths 16/32/64
times a multiplier, 1x1 conv + BN projection shortcuts where the shape changes.

ResNet-20/32/56 have n = 3/5/9; the paper's 2x ResNet-32 is width 2 (32/64/128).
"""
from __future__ import annotations

from torch import nn

from .base import BlockModel, residual_stages

DEPTH_BLOCKS = {"resnet20": 3, "resnet32": 5, "resnet56": 9}
BASE_WIDTHS = (16, 32, 64)


class Stem(nn.Module):
    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = None
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_ch))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class Head(nn.Module):
    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(x)))


def stage_widths(width: float) -> tuple[int, int, int]:
    return tuple(max(1, int(round(w * width))) for w in BASE_WIDTHS)


class CifarResNet(BlockModel):
    def __init__(self, n: int, width: float = 1.0, num_classes: int = 10, in_channels: int = 3):
        widths = stage_widths(width)
        parts, blocks = residual_stages(Stem(in_channels, widths[0]), widths[0], widths, n,
                                        lambda i, o, stride: BasicBlock(i, o, stride=stride),
                                        lambda i: Head(i, num_classes))
        super().__init__(parts, blocks)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


def cifar_resnet(name: str, width: float, num_classes: int) -> CifarResNet:
    if name not in DEPTH_BLOCKS:
        raise ValueError(f"model.name: expected one of {', '.join(DEPTH_BLOCKS)}, got {name!r}")
    return CifarResNet(DEPTH_BLOCKS[name], width, num_classes)
