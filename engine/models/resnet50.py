"""torchvision's ResNet-50 (random init, nothing downloaded) regrouped into freeze blocks:
stem (conv1 bn1 relu maxpool), each Bottleneck of layer1..layer4, head (avgpool, fc)."""
from __future__ import annotations

from torch import nn

from .base import BlockModel

try:
    from torchvision.models import resnet50 as tv_resnet50
except ImportError:   # a machine with torch only (e.g. benchmarks/gpu_check.sh on a bare GPU box)
    tv_resnet50 = None


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


class _Bottleneck(nn.Module):
    """torchvision's Bottleneck (v1.5: stride on the 3x3), same attribute names."""
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + idt)


def _plain_resnet50(num_classes: int) -> nn.Module:
    """The same network and parameter names as torchvision's resnet50 (and its init), for
    machines without torchvision."""
    tv = nn.Module()
    tv.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
    tv.bn1, tv.relu, tv.maxpool = nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
    inplanes = 64
    for s, (planes, n, stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), start=1):
        down = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False), nn.BatchNorm2d(planes * 4))
        layers = [_Bottleneck(inplanes, planes, stride, down)]
        inplanes = planes * 4
        layers += [_Bottleneck(inplanes, planes) for _ in range(n - 1)]
        setattr(tv, f"layer{s}", nn.Sequential(*layers))
    tv.avgpool, tv.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(2048, num_classes)
    for m in tv.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return tv


class ResNet50(BlockModel):
    def __init__(self, num_classes: int = 1000):
        tv = tv_resnet50(weights=None, num_classes=num_classes) if tv_resnet50 is not None else _plain_resnet50(num_classes)
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
