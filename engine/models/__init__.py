"""Torch models as BlockModels: ``build_model(cfg, num_classes)``."""
from __future__ import annotations

from .base import BlockModel
from .cifar_resnet import DEPTH_BLOCKS, cifar_resnet

__all__ = ["BlockModel", "build_model"]


def build_model(cfg, num_classes: int) -> BlockModel:
    """The network named by ``cfg.model`` (random init) for ``num_classes`` classes.

    Every model takes 3-channel inputs of any size >= 8 (global average pooling).
    """
    name, width = cfg.model.name, cfg.model.width
    if cfg.data.image_size < 8:
        raise ValueError(f"data.image_size: expected at least 8, got {cfg.data.image_size}")
    if name in DEPTH_BLOCKS:
        return cifar_resnet(name, width, num_classes)
    if name == "resnet50":
        from .resnet50 import resnet50  # torchvision only when needed
        return resnet50(width, num_classes)
    raise ValueError(f"model.name: expected one of {', '.join([*DEPTH_BLOCKS, 'resnet50'])}, got {name!r}")
