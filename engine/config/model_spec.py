"""What ``model.name`` names: a built-in network, a timm model or a factory of the user's.

Pure text parsing: nothing is imported here. ``timm:NAME`` is checked against timm's list
when the engine builds it (timm imports torch); ``py:MODULE:ATTR`` is imported only when a
run (or ``spfde-train plan``) builds it, never by reading a configuration, so a shared
config file cannot run code by being opened.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# The paper's ResNets are described analytically (engine.cost.arch); every other network,
# the built-in WideResNet included, has its blocks and FLOPs measured by the engine.
ANALYTIC_MODELS = ("resnet20", "resnet32", "resnet56", "resnet50")
BUILTIN_MODELS = (*ANALYTIC_MODELS, "wrn28")
TIMM_PREFIX = "timm:"
PY_PREFIX = "py:"
_TIMM_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_ATTR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class ModelSpec:
    kind: str            # "builtin" | "timm" | "py"
    name: str            # built-in name, timm name, or the module path
    attr: str = ""       # py: the factory's attribute path in its module

    @property
    def measured(self) -> bool:
        """Its blocks and costs are measured on the torch model, not described analytically."""
        return not (self.kind == "builtin" and self.name in ANALYTIC_MODELS)


def parse(text: str) -> ModelSpec:
    """The model a ``model.name`` value names; ValueError with what was expected."""
    if not isinstance(text, str):
        raise ValueError(f"expected a model name, got {text!r}")
    if text.startswith(TIMM_PREFIX):
        name = text[len(TIMM_PREFIX):].strip()
        if not name or not _TIMM_NAME.match(name):
            raise ValueError(f"expected timm:NAME with a timm model name (e.g. timm:resnet18), got {text!r}")
        return ModelSpec("timm", name)
    if text.startswith(PY_PREFIX):
        rest = text[len(PY_PREFIX):]
        module, sep, attr = rest.partition(":")
        if not sep or not _MODULE.match(module) or not _ATTR.match(attr):
            raise ValueError(f"expected py:MODULE:CALLABLE (e.g. py:my_package.models:build), got {text!r}")
        return ModelSpec("py", module, attr)
    if text in BUILTIN_MODELS:
        return ModelSpec("builtin", text)
    raise ValueError(f"expected one of {', '.join(BUILTIN_MODELS)}, timm:NAME or py:MODULE:CALLABLE; got {text!r}")


def is_measured(text: str) -> bool:
    """A valid name whose costs the engine measures (False for the analytic ResNets and for
    names that do not parse)."""
    try:
        return parse(text).measured
    except ValueError:
        return False
