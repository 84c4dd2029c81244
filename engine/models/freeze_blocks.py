"""Freeze blocks of a network that does not declare them: parameter groups, front to back.

In order of preference: ``model.blocks`` (module-name prefixes from the config), the
model's own ``freeze_blocks()`` method (a factory's), timm's ``group_matcher(coarse=True)``
(the grouping timm uses for layer-wise LR decay), and last the top-level children in
registration order, with a warning that says so. Every parameter must fall in exactly
one block; the forward order is checked when the model is measured (engine.models.measure).
"""
from __future__ import annotations

from torch import nn

from engine.config import ConfigError

Groups = list[tuple[str, list[str]]]    # (block name, parameter names), front to back


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def from_prefixes(net: nn.Module, blocks: list, field: str) -> Groups:
    """Blocks given as prefixes: each entry a prefix, or (name, prefix or [prefixes])."""
    specs: list[tuple[str, list[str]]] = []
    for entry in blocks:
        if isinstance(entry, str):
            specs.append((entry, [entry]))
        elif isinstance(entry, (tuple, list)) and len(entry) == 2 and isinstance(entry[0], str):
            pre = [entry[1]] if isinstance(entry[1], str) else list(entry[1])
            specs.append((entry[0], pre))
        else:
            raise ConfigError([(field, f"expected a module-name prefix or (name, prefixes), got {entry!r}")])
    names = [n for n, _ in net.named_parameters()]
    groups: Groups = []
    seen: dict[str, str] = {}
    for block, prefixes in specs:
        members = [n for n in names if any(_matches(n, p) for p in prefixes)]
        if not members:
            raise ConfigError([(field, f"block {block!r} ({', '.join(prefixes)}) holds no parameter; the model's "
                                       f"top-level modules are {', '.join(n for n, _ in net.named_children())}")])
        twice = [n for n in members if n in seen]
        if twice:
            raise ConfigError([(field, f"parameter {twice[0]} is in block {seen[twice[0]]!r} and in {block!r}: "
                                       "blocks must not overlap")])
        seen.update({n: block for n in members})
        groups.append((block, members))
    missing = [n for n in names if n not in seen]
    if missing:
        raise ConfigError([(field, f"the blocks do not cover the model: {len(missing)} parameter(s) outside every "
                                   f"block ({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}); "
                                   "add prefixes for them, front to back")])
    return groups


def from_timm(net: nn.Module) -> Groups | None:
    """timm's coarse parameter grouping, named by the modules it holds."""
    matcher = getattr(net, "group_matcher", None)
    if matcher is None:
        return None
    try:
        from timm.models import group_parameters  # timm: only for timm-style models
        grouped = group_parameters(net, matcher(coarse=True))
    except Exception:   # noqa: BLE001 - a model without a usable grouping falls back
        return None
    lists = [list(v) for _, v in sorted(grouped.items())]
    return [(_group_name(names, i, len(lists)), names) for i, names in enumerate(lists)]


def _common(params: list[str]) -> str:
    """The longest module path every parameter name starts with ('' if none)."""
    parts = [p.split(".")[:-1] for p in params]      # module paths, without the parameter's own name
    common: list[str] = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return ".".join(common)


def _group_name(params: list[str], index: int, count: int) -> str:
    common = _common(params)
    if common:
        return common
    if index == 0:
        return "stem"
    if index == count - 1:
        return "head"
    tops: dict[str, list[str]] = {}
    for p in params:
        tops.setdefault(p.split(".")[0], []).append(p)
    names = [_common(ps) or top for top, ps in tops.items()]
    return "+".join(names[:3]) + ("+..." if len(names) > 3 else "")


def fallback(net: nn.Module) -> Groups:
    """Top-level children with parameters, in registration order; the network's own
    parameters (a class token) join the first block."""
    own = [n for n, _ in net.named_parameters(recurse=False)]
    groups: Groups = []
    for cname, child in net.named_children():
        names = [f"{cname}.{n}" for n, _ in child.named_parameters()]
        if names:
            groups.append((cname, names))
    if not groups:
        return [("model", own)] if own else []
    groups[0] = (groups[0][0], own + groups[0][1])
    return groups


def derive(net: nn.Module, blocks: list, label: str) -> tuple[Groups, str, list[str]]:
    """(groups, where they came from, warnings) for ``net`` (``label``: the model.name)."""
    if blocks:
        return from_prefixes(net, list(blocks), "model.blocks"), "model.blocks", []
    own = getattr(net, "freeze_blocks", None)
    if callable(own):
        return from_prefixes(net, list(own()), f"{label}: freeze_blocks()"), "freeze_blocks()", []
    timm_groups = from_timm(net)
    if timm_groups and len(timm_groups) > 1:
        return timm_groups, "timm group_matcher(coarse=True)", []
    groups = fallback(net)
    warning = (f"{label}: no freeze blocks declared (no model.blocks, freeze_blocks() or timm group_matcher): "
               f"using its {len(groups)} top-level modules in registration order ({', '.join(n for n, _ in groups)}); "
               "check them with `spfde-train plan` or set model.blocks")
    return groups, "top-level modules (fallback)", [warning]
