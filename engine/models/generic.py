"""Any network as a BlockModel: a timm model or a user's factory, split into freeze blocks
by parameter groups instead of by a sequential forward.

The wrapped network keeps its own ``forward`` and its own module names: the wrapper
registers the network's top-level children, parameters and buffers under the same
names, so layer names, ``state_dict`` keys, ``model.blocks`` prefixes and
``sparsity.dense_layers`` patterns all read as in the user's model (``layer1.0.conv1``,
``blocks.3.attn.qkv``). A freeze block is a ``BlockGroup``: the largest modules whose
parameters all belong to it, plus its loose parameters (ViT's ``cls_token``).

Freezing without a sequential forward: the freezer switches the frozen blocks'
``requires_grad`` off and ``BlockModel`` puts their modules in eval mode. Blocks are
checked to run in forward order (``check_forward_order``), so a frozen prefix only ever
sees inputs that need no gradient: autograd then records nothing for it, which saves its
backward exactly as the sequential ``torch.no_grad()`` prefix of the built-in models does.
"""
from __future__ import annotations

from torch import nn

from .base import PRUNABLE_TYPES, BlockModel


def _local(name: str) -> str:
    return name.replace(".", "__")       # module/parameter names may not contain dots


class BlockGroup(nn.Module):
    """One freeze block: modules (whole) and loose parameters of the wrapped network."""

    def __init__(self, modules: list[tuple[str, nn.Module]], loose: list[tuple[str, nn.Parameter]]):
        super().__init__()
        for name, m in modules:
            self.add_module(_local(name), m)
        self.member_names = [name for name, _ in modules]
        self.loose_names = [name for name, _ in loose]
        for name, p in loose:
            self.register_parameter(_local(name), p)

    def forward(self, x):                 # a group is not a stage: the network runs as a whole
        raise RuntimeError("a BlockGroup does not run on its own; call the model")


Members = tuple[list[tuple[str, nn.Module]], list[tuple[str, nn.Parameter]]]   # (modules, loose parameters)


def split_modules(net: nn.Module, groups: list[list[str]]) -> list[Members]:
    """Per group (lists of parameter names): its maximal modules and its loose parameters.

    A module whose parameters all belong to one group joins that group whole; a module
    without parameters joins the group of the module registered before it (so a pooling
    layer or a dropout follows its stage's train/eval mode)."""
    owner: dict[str, int] = {}
    for g, names in enumerate(groups):
        for n in names:
            owner[n] = g
    out: list[Members] = [([], []) for _ in groups]

    def group_set(prefix: str, m: nn.Module) -> set[int]:
        return {owner[f"{prefix}{n}"] for n, _ in m.named_parameters() if f"{prefix}{n}" in owner}

    last = [0]

    def visit(prefix: str, module: nn.Module) -> None:
        for n, p in module.named_parameters(recurse=False):
            g = owner[f"{prefix}{n}"]
            out[g][1].append((f"{prefix}{n}", p))
            last[0] = g
        for cname, child in module.named_children():
            full = f"{prefix}{cname}"
            gs = group_set(full + ".", child)
            if len(gs) == 1:
                (g,) = gs
                out[g][0].append((full, child))
                last[0] = g
            elif not gs:
                out[last[0]][0].append((full, child))
            else:
                visit(full + ".", child)

    visit("", net)
    return out


class GenericBlockModel(BlockModel):
    """A network with its own forward, split into freeze blocks by parameter groups."""

    sequential = False    # blocks do not run one after the other (the analyses need that)

    def __init__(self, net: nn.Module, groups: list[tuple[str, list[str]]], blocks_from: str,
                 warnings: list[str] | None = None):
        parts = dict(net.named_children())
        split = split_modules(net, [names for _, names in groups])
        blocks = [(name, BlockGroup(mods, loose)) for (name, _), (mods, loose) in zip(groups, split)]
        super().__init__(parts, blocks)
        for n, p in net.named_parameters(recurse=False):
            self.register_parameter(n, p)
        for n, b in net.named_buffers(recurse=False):
            self.register_buffer(n, b, persistent=n not in net._non_persistent_buffers_set)
        object.__setattr__(self, "net", net)
        self.blocks_from = blocks_from
        self.warnings = list(warnings or [])

    def forward(self, x):
        return self.net(x)

    def train(self, mode: bool = True):
        self.net.training = mode          # the root's own flag (its children are ours too)
        return super().train(mode)

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        # a conversion may replace tensors: the network and the groups keep sharing ours
        for n in list(self.net._parameters):
            self.net._parameters[n] = self._parameters[n]
        for n in list(self.net._buffers):
            self.net._buffers[n] = self._buffers[n]
        for group in self.blocks:
            for full in group.loose_names:
                group._parameters[_local(full)] = self.get_parameter(full)
        return self

    def layer_tags(self) -> dict[str, set[str]]:
        """stem: the first conv/linear layer; head: the last one (registration order);
        shortcut: 1x1 projections named shortcut or downsample."""
        names = [n for n, _ in self.prunable()]
        tags: dict[str, set[str]] = {n: set() for n in names}
        if names:
            tags[names[0]].add("stem")
            tags[names[-1]].add("head")
        for n in names:
            if self.is_shortcut(n):
                tags[n].add("shortcut")
        return tags


def prunable_of(net: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in net.named_modules() if isinstance(m, PRUNABLE_TYPES)]
