"""Networks the project does not define: ``timm:NAME`` and ``py:MODULE:CALLABLE``.

timm is an optional extra, imported here only when a timm model is built; a factory's
module is imported only when a run (or ``spfde-train plan``) builds it. Nothing is
downloaded: pretrained weights come from ``model.checkpoint`` only.
"""
from __future__ import annotations

import difflib
import importlib
from pathlib import Path

import torch
from torch import nn

from engine.config import ConfigError, model_spec

from .base import BlockModel
from .freeze_blocks import derive
from .generic import GenericBlockModel

TIMM_EXTRA = "pip install 'spfde-studio[timm]'"


def _timm():
    try:
        import timm  # optional extra: only for timm: models
    except ImportError:
        raise ConfigError([("model.name", f"timm: models need timm, which is not installed ({TIMM_EXTRA})")]) from None
    return timm


def timm_names() -> list[str]:
    return list(_timm().list_models())


def build_timm(name: str, num_classes: int, kwargs: dict) -> nn.Module:
    timm = _timm()
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise ConfigError([("model.name", f"timm has no model {name!r}{hint}")])
    kw = dict(kwargs)
    if kw.pop("pretrained", False):
        raise ConfigError([("model.kwargs", "pretrained: nothing is downloaded; set model.pretrained: true "
                                            "with model.checkpoint: PATH")])
    try:
        return timm.create_model(name, pretrained=False, num_classes=num_classes, **kw)
    except TypeError as exc:
        raise ConfigError([("model.kwargs", f"timm:{name} refused them: {exc}")]) from None


def build_py(module: str, attr: str, num_classes: int, kwargs: dict) -> nn.Module:
    label = f"py:{module}:{attr}"
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise ConfigError([("model.name", f"{label}: cannot import module {module!r} ({exc}); is its package "
                                          "installed or on PYTHONPATH?")]) from None
    fn = mod
    for part in attr.split("."):
        if not hasattr(fn, part):
            raise ConfigError([("model.name", f"{label}: module {module!r} has no attribute {attr!r}")])
        fn = getattr(fn, part)
    if not callable(fn):
        raise ConfigError([("model.name", f"{label}: {attr!r} in module {module!r} is not callable")])
    try:
        net = fn(num_classes=num_classes, **kwargs)
    except TypeError as exc:
        raise ConfigError([("model.kwargs", f"{label} refused num_classes={num_classes} and model.kwargs "
                                            f"{kwargs}: {exc}")]) from None
    if not isinstance(net, nn.Module):
        raise ConfigError([("model.name", f"{label} returned {type(net).__name__}, expected a torch.nn.Module")])
    return net


def load_weights(net: nn.Module, path: str) -> None:
    """A local state_dict (or a checkpoint holding one under state_dict/model), weights only."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError([("model.checkpoint", f"no such file: {p}")])
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - an unreadable or unsafe file: name it
        raise ConfigError([("model.checkpoint", f"{p} is not a weights-only torch file: {exc}")]) from None
    if isinstance(state, dict):
        for k in ("state_dict", "model"):
            if isinstance(state.get(k), dict):
                state = state[k]
                break
    if not isinstance(state, dict):
        raise ConfigError([("model.checkpoint", f"{p} holds {type(state).__name__}, expected a state_dict")])
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as exc:          # shapes that differ
        raise ConfigError([("model.checkpoint", f"{p} does not fit the model: {str(exc).splitlines()[1].strip()} "
                                                "(match model.kwargs and data.num_classes to the checkpoint)")]) from None
    if missing or unexpected:
        raise ConfigError([("model.checkpoint", f"{p} does not fit the model: missing {missing[:5]}, "
                                                f"unexpected {unexpected[:5]} (a different head? match "
                                                "data.num_classes to the checkpoint)")])


def build_measured(cfg, num_classes: int, weights: bool = True) -> BlockModel:
    """The model of a timm:, py: or wrn28 configuration as a BlockModel (random init, then
    model.checkpoint when given)."""
    m = cfg.model
    spec = model_spec.parse(m.name)
    if spec.kind == "timm":
        net = build_timm(spec.name, num_classes, m.kwargs)
    elif spec.kind == "py":
        net = build_py(spec.name, spec.attr, num_classes, m.kwargs)
    else:
        from .wide_resnet import wide_resnet  # the built-in measured network
        net = wide_resnet(spec.name, m.width, num_classes)
    if weights and m.checkpoint:
        load_weights(net, m.checkpoint)
    if isinstance(net, BlockModel) and not m.blocks:
        net.blocks_from = getattr(net, "blocks_from", "the model's own blocks")
        net.warnings = getattr(net, "warnings", [])
        return net
    groups, source, warnings = derive(net, m.blocks, m.name)
    if not groups:
        raise ConfigError([("model.name", f"{m.name} has no parameters to train")])
    return GenericBlockModel(net, groups, source, warnings)
