"""Torch models as BlockModels: ``build_model(cfg, num_classes)``.

``model.name`` (engine.config.model_spec) names a built-in network (the paper's ResNets,
walked analytically by engine.cost.arch; wrn28), a timm model (``timm:NAME``) or a
factory of the user's (``py:MODULE:CALLABLE``); the last three are split into freeze
blocks and measured here (engine.models.freeze_blocks, engine.models.measure).
"""
from __future__ import annotations

from engine.config import model_spec

from .base import BlockModel
from .cifar_resnet import DEPTH_BLOCKS, cifar_resnet

__all__ = ["BlockModel", "build_model", "build_network"]


def build_network(cfg, num_classes: int, weights: bool = True) -> BlockModel:
    """The network of ``cfg.model`` (random init; ``model.checkpoint`` loaded when
    ``weights``), without the data checks of ``build_model``."""
    name, width = cfg.model.name, cfg.model.width
    spec = model_spec.parse(name)
    if spec.measured:
        from .external import build_measured  # timm and factories only when named
        return build_measured(cfg, num_classes, weights=weights)
    if name in DEPTH_BLOCKS:
        model = cifar_resnet(name, width, num_classes)
    else:
        from .resnet50 import resnet50  # torchvision only when needed
        model = resnet50(width, num_classes)
    if weights and getattr(cfg.model, "checkpoint", None):
        from .external import load_weights
        load_weights(model, cfg.model.checkpoint)
    return model


def build_model(cfg, num_classes: int) -> BlockModel:
    """The network named by ``cfg.model`` (random init) for ``num_classes`` classes.

    Every built-in model takes 3-channel inputs of any size >= 8 (global average pooling).
    """
    if cfg.data.image_size < 8:
        raise ValueError(f"data.image_size: expected at least 8, got {cfg.data.image_size}")
    return build_network(cfg, num_classes)
