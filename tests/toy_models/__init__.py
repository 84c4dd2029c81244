"""Model factories for the tests of ``model.name: py:toy_models:...`` (tests/ is on sys.path).

Importing this package imports torch: only a run or a plan that names one of these does.
"""
from __future__ import annotations

import time

import torch
from torch import nn


class SmallConvNet(nn.Module):
    """A user's own network: a stem, two stages and a classifier, with a freeze_blocks() method."""

    def __init__(self, num_classes: int, width: int = 8):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.stage1 = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.stage2 = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False),
                                    nn.BatchNorm2d(2 * width), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.stage2(self.stage1(self.stem(x)))), 1))

    def freeze_blocks(self):
        return ["stem", "stage1", "stage2", ("classifier", ["pool", "fc"])]


def small_convnet(num_classes: int, width: int = 8) -> nn.Module:
    return SmallConvNet(num_classes, width)


def plain_sequential(num_classes: int, width: int = 6) -> nn.Module:
    """No freeze_blocks() and no timm grouping: its blocks fall back to the top-level modules."""
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(width, num_classes))


def linear_only(num_classes: int, image_size: int = 8, hidden: int = 16) -> nn.Module:
    return nn.Sequential(nn.Flatten(1), nn.Linear(3 * image_size * image_size, hidden), nn.ReLU(),
                         nn.Linear(hidden, num_classes))


def conv_only(num_classes: int) -> nn.Module:
    """3x3 conv (3->4, stride 1), 3x3 conv (4->5, stride 2, groups 1), 1x1 conv to the classes, pooled."""
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.ReLU(),
                         nn.Conv2d(4, 5, 3, stride=2, padding=1), nn.ReLU(),
                         nn.Conv2d(5, num_classes, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(1))


class NoPrunable(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        self.norm = nn.LayerNorm(3)
        self.num_classes = num_classes

    def forward(self, x):
        return self.norm(x.mean((2, 3)))[:, :1].expand(-1, self.num_classes)


def no_prunable(num_classes: int) -> nn.Module:
    return NoPrunable(num_classes)


NOT_CALLABLE = 3


def broken(num_classes: int) -> nn.Module:
    raise RuntimeError("this factory always fails")


class WaitingConvNet(SmallConvNet):
    """SmallConvNet whose every forward first sleeps ``wait_s`` seconds: a run that stays in
    flight for as long as a test needs (to be signalled, requeued, cancelled or killed
    mid-run) while leaving the CPU to the rest of the suite. The sleep changes no number."""

    def __init__(self, num_classes: int, width: int = 4, wait_s: float = 0.02):
        super().__init__(num_classes, width)
        self.wait_s = wait_s

    def forward(self, x):
        time.sleep(self.wait_s)
        return super().forward(x)


def waiting_convnet(num_classes: int, width: int = 4, wait_s: float = 0.02) -> nn.Module:
    return WaitingConvNet(num_classes, width, wait_s)
