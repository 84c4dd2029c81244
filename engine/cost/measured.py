"""Cost tables of measured models (timm:, py:, wrn28): the planner's view of a network
that is not walked analytically.

The engine builds such a model once at plan time, measures its blocks, layers and FLOPs
with torch (engine.models.measure) and hands the result here as a cost table (a plain
dict, ``engine.cost.arch.to_table``'s format); the pure planner then prices it exactly as
it prices the ResNets. Pure Python: the studio registers tables it got from
``spfde-train plan --json`` (a subprocess), the CLI installs a measurer that builds the
model when a table is missing. docs/models.md describes the design.
"""
from __future__ import annotations

import json
from collections.abc import Callable

from engine.config import ConfigError
from engine.cost import arch as arch_mod

# (model config, num_classes, image_size) -> cost table
Measurer = Callable[[object, int, int], dict]

_tables: dict[str, arch_mod.Arch] = {}
_measurer: Measurer | None = None


def key(model_cfg, num_classes: int, image_size: int) -> str:
    """What a measured table depends on: the model's fields that shape the network (not
    its initial weights) and the data's class count and resolution."""
    return json.dumps([model_cfg.name, float(model_cfg.width), model_cfg.kwargs, list(model_cfg.blocks),
                       int(num_classes), int(image_size)], sort_keys=True, default=str)


def register(model_cfg, num_classes: int, image_size: int, table: dict) -> arch_mod.Arch:
    """Remember a measured table for this model at this shape; returns its Arch."""
    arch = arch_mod.from_table(table)
    _tables[key(model_cfg, num_classes, image_size)] = arch
    return arch


def known(model_cfg, num_classes: int, image_size: int) -> bool:
    return key(model_cfg, num_classes, image_size) in _tables


def set_measurer(fn: Measurer | None) -> None:
    """The function that measures a missing table (the CLI's imports torch only when called)."""
    global _measurer
    _measurer = fn


def arch_for(model_cfg, num_classes: int, image_size: int) -> arch_mod.Arch:
    k = key(model_cfg, num_classes, image_size)
    if k not in _tables:
        if _measurer is None:
            raise ConfigError([("model.name", f"{model_cfg.name}: its blocks and FLOPs are measured on the torch "
                                "model; run `spfde-train plan` on this configuration (the studio does it for you "
                                "in the background) to measure them")])
        register(model_cfg, num_classes, image_size, _measurer(model_cfg, num_classes, image_size))
    return _tables[k]
