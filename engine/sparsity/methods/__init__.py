"""The registry of sparse-training methods: name -> its plug-in class (methods/<name>.py).

Adding a method is one module (a ``Method`` subclass: fields, schedule, cost, torch rule)
plus one entry here (the config's ``sparsity.algorithm`` choices are this registry's names); docs/sparse-training.md
walks through it. Pure Python: torch is imported only inside the rules.
"""
from __future__ import annotations

from .base import METHOD_FIELDS, Method
from .grasp import GraSP
from .mest import MestEM, MestEMS
from .rigl import RigL
from .set import SET
from .snip import SNIP
from .static import Static

METHODS: dict[str, type[Method]] = {m.name: m for m in (MestEMS, MestEM, Static, SET, RigL, SNIP, GraSP)}


def method_for(cfg, samples: list[int] | None = None) -> Method:
    """The method plug-in of ``cfg`` (``samples``: training samples per epoch, for step schedules)."""
    return METHODS[cfg.sparsity.algorithm](cfg, samples)


def field_errors(cfg, defaults) -> list[tuple[str, str]]:
    """A method field set for a method that does not use it (a value other than its
    ``defaults``, the schema's default SparsityConfig)."""
    alg = cfg.sparsity.algorithm
    cls = METHODS.get(alg)
    if cls is None:
        return []
    uses = ", ".join(f"sparsity.{f}" for f in cls.fields) or "no method fields"
    errors = []
    for f in METHOD_FIELDS:
        if f not in cls.fields and getattr(cfg.sparsity, f) != getattr(defaults, f):
            errors.append((f"sparsity.{f}", f"does not apply to sparsity.algorithm={alg} (it uses {uses}); "
                           f"remove it or leave it at {getattr(defaults, f)!r}"))
    if cls.distribution is None and cfg.sparsity.distribution != "auto":
        errors.append(("sparsity.distribution", f"does not apply to sparsity.algorithm={alg} (one global "
                       f"threshold over all sparse layers); use auto"))
    return errors


__all__ = ["METHODS", "METHOD_FIELDS", "Method", "method_for", "field_errors"]
