"""Old import paths of modules that moved into concept packages (issue 18), so a user's
script with ``import engine.plan`` keeps working: the old name is an alias of the module at
its new path, with a DeprecationWarning that names the new path. Nothing is imported until
an old name is asked for."""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType

MOVED: dict[str, str] = {
    "engine.events": "engine.run.events",
    "engine.payloads": "engine.run.payloads",
    "engine.telemetry": "engine.run.telemetry",
    "engine.commands": "engine.run.control",
    "engine.run_dir": "engine.run.folder",
    "engine.run_lock": "engine.run.lock",
    "engine.arch": "engine.cost.arch",
    "engine.costmodel": "engine.cost.costmodel",
    "engine.plan": "engine.cost.projection",
    "engine.ledger": "engine.cost.ledger",
    "engine.resources": "engine.cost.preflight",
    "engine.datasets_info": "engine.data.sizes",
    "engine.dst_schedule": "engine.sparsity.schedule",
    "engine.freeze_plan": "engine.freezing.schedule",
    "engine.freezer": "engine.freezing.freezer",
    "engine.sieve": "engine.sieving.sieve",
    "engine.forgetting": "engine.sieving.forgetting",
    "engine.trainer": "engine.training.trainer",
    "engine.checkpoint": "engine.training.checkpoint",
    "engine.resume": "engine.training.resume",
    "engine.lr_schedule": "engine.training.lr_schedule",
    "engine.speed": "engine.training.precision",
    "engine.threads": "engine.training.threads",
    "engine.seeding": "engine.training.seeding",
    "engine.distributed": "engine.training.distributed",
    "engine.process_group": "engine.training.process_group",
    "engine.sweep.commands": "engine.sweep.cli",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old name and loads it as the module at the new path (the same object)."""

    def __init__(self) -> None:
        self._own_spec: dict = {}

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}: import it from there", DeprecationWarning, stacklevel=3)
        module = importlib.import_module(new)
        self._own_spec[new] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # the import system stamped the old name's spec on the module: give it back its own
        module.__spec__ = self._own_spec.pop(module.__name__, module.__spec__)


def install() -> None:
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_Alias())
