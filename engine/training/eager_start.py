"""Keep a run that does not compile from importing ``torch._dynamo`` (about 2 s of start-up).

torch imports ``torch._dynamo`` on the first call of an optimizer: its methods
(``add_param_group``, ``zero_grad``, ``state_dict``...), its functional steps and DDP's
forward helper are wrapped in ``torch._disable_dynamo``, and every ``step`` in
``_use_grad_for_differentiable``, which imports Dynamo to place two graph breaks. On the
2-core development VM that import costs 2.1 s of CPU, as much as ``import torch`` itself, and
every sweep cell and search trial pays it again (docs/benchmarks.md, "Start-up of a run").

Outside ``torch.compile`` both wrappers only call the function (the graph breaks are no-ops),
so a run with ``compile: false``:

* gives each ``_disable_dynamo``-wrapped function itself as its "disabled" form (the
  ``__dynamo_disable`` attribute the wrapper looks up before it imports anything);
* swaps the optimizer class's ``_use_grad`` layer of ``step`` for one that sets the same grad
  mode without the graph breaks, keeping the outer layer (step hooks, profiler label).

A run with ``compile: true`` takes both back, leaving torch as it ships, and so does
``SPFDE_EAGER_START=0`` in the environment (a way out should a later torch change these
wrappers, and the benchmark's baseline: benchmarks/bench_startup.py).
"""
from __future__ import annotations

import functools
import os
import sys
from types import FunctionType, ModuleType

import torch
import torch._compile
from torch.optim.optimizer import Optimizer, _use_grad_for_differentiable

_MARK = "__dynamo_disable"
# One code object is shared by every wrapper torch._disable_dynamo makes.
_WRAPPER_CODE = torch._compile._disable_dynamo(lambda: None).__code__
# The modules whose functions and classes a training step calls through such wrappers.
_MODULE_PREFIXES = ("torch.optim", "torch.nn.parallel.distributed")
_USE_GRAD_CODE = _use_grad_for_differentiable(lambda self: None).__code__
_HOOKS_CODE = Optimizer.profile_hook_step(lambda self: None).__code__
_ORIGINAL_STEP: dict[type, object] = {}    # optimizer class -> its step as torch made it
ENV_OFF = "SPFDE_EAGER_START"               # "0": leave torch's wrappers as they ship


def _wrapped_by_dynamo_disable(obj, depth: int = 0):
    """The functions inside ``obj`` that ``torch._disable_dynamo`` wrapped (looking through
    functools.wraps chains and closures, as torch.optim's ``maybe_fallback`` holds one)."""
    if not isinstance(obj, FunctionType) or depth > 3:
        return
    if obj.__code__ is _WRAPPER_CODE:
        inner = getattr(obj, "__wrapped__", None)
        if isinstance(inner, FunctionType):
            yield inner
        return
    for cell in obj.__closure__ or ():
        try:
            value = cell.cell_contents
        except ValueError:            # an empty cell
            continue
        yield from _wrapped_by_dynamo_disable(value, depth + 1)


def _candidates():
    for name, module in list(sys.modules.items()):
        if not isinstance(module, ModuleType) or not name.startswith(_MODULE_PREFIXES):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, type) and value.__module__.startswith(_MODULE_PREFIXES):
                for attr in vars(value).values():
                    yield from _wrapped_by_dynamo_disable(getattr(attr, "__func__", attr))
            else:
                yield from _wrapped_by_dynamo_disable(value)


def _eager_use_grad(raw):
    """``_use_grad_for_differentiable`` without its graph breaks (no-ops outside compile)."""
    @functools.wraps(raw)
    def step(*args, **kwargs):
        prev = torch.is_grad_enabled()
        try:
            torch.set_grad_enabled(args[0].defaults["differentiable"])
            return raw(*args, **kwargs)
        finally:
            torch.set_grad_enabled(prev)
    return step


def _eager_step(step):
    """The eager replacement of an optimizer class's ``step`` (None when its layers are not
    the ones torch makes: then it is left alone)."""
    code = getattr(step, "__code__", None)
    if code is _USE_GRAD_CODE:
        return _eager_use_grad(step.__wrapped__)
    inner = getattr(step, "__wrapped__", None)
    if code is _HOOKS_CODE and getattr(inner, "__code__", None) is _USE_GRAD_CODE:
        hooked = Optimizer.profile_hook_step(_eager_use_grad(inner.__wrapped__))
        hooked.hooked = True          # Optimizer.__init__ must not wrap it a second time
        return hooked
    return None


def _configure_step(cls: type, compile_model: bool) -> int:
    owner = next((c for c in cls.__mro__ if "step" in vars(c)), None)
    if owner is None or owner is Optimizer:
        return 0
    if compile_model:
        if owner in _ORIGINAL_STEP:
            owner.step = _ORIGINAL_STEP.pop(owner)
            return 1
        return 0
    if owner in _ORIGINAL_STEP:
        return 0
    eager = _eager_step(vars(owner)["step"])
    if eager is None:
        return 0
    _ORIGINAL_STEP[owner] = vars(owner)["step"]
    owner.step = eager
    return 1


def configure(compile_model: bool, optimizer_cls: type | None = None) -> int:
    """Mark (``compile_model`` false) or unmark (true) the wrapped functions of the loaded
    optimizer and DDP modules, and swap (or restore) ``optimizer_cls.step``'s grad-mode layer;
    returns how many were changed."""
    compile_model = compile_model or os.environ.get(ENV_OFF, "1") == "0"
    changed = _configure_step(optimizer_cls, compile_model) if optimizer_cls else 0
    for fn in _candidates():
        marked = vars(fn).get(_MARK) is fn
        if not compile_model and _MARK not in vars(fn):
            setattr(fn, _MARK, fn)
            changed += 1
        elif compile_model and marked:
            delattr(fn, _MARK)
            changed += 1
    return changed
