"""A model factory of your own for ``model.name: py:examples.my_models:build`` (docs/models.md).

The engine calls ``build(num_classes=..., **model.kwargs)`` and trains what it returns.
``freeze_blocks()`` (optional) names the freeze units front to back as module-name
prefixes; without it the engine falls back to the top-level modules and warns.
"""
from __future__ import annotations

from torch import nn


class ConvMixer(nn.Module):
    """ConvMixer (Trockman & Kolter 2022): a patch embedding, ``depth`` blocks of a depthwise
    conv with a residual then a pointwise conv, and a linear classifier."""

    def __init__(self, num_classes: int, dim: int = 64, depth: int = 4, kernel: int = 5, patch: int = 2):
        super().__init__()
        self.embed = nn.Sequential(nn.Conv2d(3, dim, patch, stride=patch), nn.GELU(), nn.BatchNorm2d(dim))
        self.blocks = nn.Sequential(*[
            nn.ModuleDict({
                "depthwise": nn.Sequential(nn.Conv2d(dim, dim, kernel, groups=dim, padding="same"),
                                           nn.GELU(), nn.BatchNorm2d(dim)),
                "pointwise": nn.Sequential(nn.Conv2d(dim, dim, 1), nn.GELU(), nn.BatchNorm2d(dim)),
            }) for _ in range(depth)])
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(dim, num_classes))

    def forward(self, x):
        x = self.embed(x)
        for block in self.blocks:
            x = block["pointwise"](x + block["depthwise"](x))
        return self.head(x)

    def freeze_blocks(self):
        # the patch embedding, each mixer block, the classifier: front to back
        return ["embed", *(f"blocks.{i}" for i in range(len(self.blocks))), "head"]


def build(num_classes: int, dim: int = 64, depth: int = 4, kernel: int = 5, patch: int = 2) -> nn.Module:
    return ConvMixer(num_classes, dim, depth, kernel, patch)
