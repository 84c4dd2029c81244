"""BlockModel: a network split into freeze blocks, with its prunable layers named.

Subclasses register their parts as ordinary attributes (``stem``, ``layer1`` ... ``head``)
so module paths, and with them the layer names used by masks, ``engine.cost.arch`` and the
events, read ``stem.conv``, ``layer1.0.conv1``, ``head.fc``. ``blocks`` is an unregistered
view of the same modules in forward order: registering it too would store every weight a
second time in ``state_dict``.
"""
from __future__ import annotations

import torch
from torch import nn

PRUNABLE_TYPES = (nn.Conv2d, nn.Linear)


class BlockModel(nn.Module):
    # blocks run one after the other (forward below); the Section 3 analyses rely on it
    sequential = True

    def __init__(self, parts: dict[str, nn.Module], blocks: list[tuple[str, nn.Module]]):
        """parts: top-level modules by attribute name (their names prefix the layer names);
        blocks: (block name, module) in forward order, every module inside some part."""
        super().__init__()
        if not blocks:
            raise ValueError("a BlockModel needs at least one block")
        for attr, module in parts.items():
            setattr(self, attr, module)
        object.__setattr__(self, "blocks", nn.ModuleList([m for _, m in blocks]))
        self.block_names: list[str] = [name for name, _ in blocks]
        self._frozen_prefix = 0

    # ---- freezing
    @property
    def frozen_prefix(self) -> int:
        """Number of leading blocks that are frozen (run without grad, BN statistics fixed)."""
        return self._frozen_prefix

    @frozen_prefix.setter
    def frozen_prefix(self, k: int) -> None:
        k = int(k)
        if not 0 <= k <= len(self.blocks):
            raise ValueError(f"frozen_prefix must be in [0, {len(self.blocks)}], got {k}")
        self._frozen_prefix = k
        self._apply_block_modes()

    def train(self, mode: bool = True):
        super().train(mode)
        self._apply_block_modes()
        return self

    def _apply_block_modes(self) -> None:
        # A frozen block keeps its BatchNorm running statistics: it runs in eval mode even
        # while the rest of the model trains.
        for i, block in enumerate(self.blocks):
            want = self.training and i >= self._frozen_prefix
            if block.training != want:
                block.train(want)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self._frozen_prefix
        if k:
            with torch.no_grad():
                for block in self.blocks[:k]:
                    x = block(x)
            x = x.detach()
        for block in self.blocks[k:]:
            x = block(x)
        return x

    # ---- layers
    def prunable(self) -> list[tuple[str, nn.Module]]:
        """Every conv and linear layer, in forward order, by module path."""
        return [(name, m) for name, m in self.named_modules() if isinstance(m, PRUNABLE_TYPES)]

    def layer_block(self) -> dict[str, int]:
        """Layer name -> index of the block holding it."""
        owner = {}
        for i, block in enumerate(self.blocks):
            for m in block.modules():
                owner[id(m)] = i
        return {name: owner[id(m)] for name, m in self.prunable()}

    def layer_tags(self) -> dict[str, set[str]]:
        """Layer name -> groups it belongs to (``stem``, ``head``, ``shortcut``)."""
        last = len(self.blocks) - 1
        tags = {}
        for name, b in self.layer_block().items():
            t = set()
            if b == 0:
                t.add("stem")
            if b == last:
                t.add("head")
            if self.is_shortcut(name):
                t.add("shortcut")
            tags[name] = t
        return tags

    @staticmethod
    def is_shortcut(layer_name: str) -> bool:
        parts = layer_name.split(".")
        return "shortcut" in parts or "downsample" in parts


def residual_stages(stem: nn.Module, in_ch: int, widths, n: int, make_block, head_of):
    """(parts, blocks) of a CIFAR-style network: the stem, ``len(widths)`` stages of ``n``
    residual blocks (``make_block(in_ch, out_ch, stride)``, stride 2 opening every stage
    but the first) named ``layer<s>.<i>``, then ``head_of(in_ch)``. Modules are created in
    forward order, so a seeded initialisation draws the same numbers as before."""
    parts: dict[str, nn.Module] = {"stem": stem}
    blocks: list[tuple[str, nn.Module]] = [("stem", stem)]
    for s, out_ch in enumerate(widths):
        stage = nn.Sequential()
        for i in range(n):
            block = make_block(in_ch, out_ch, 2 if (s > 0 and i == 0) else 1)
            stage.append(block)
            blocks.append((f"layer{s + 1}.{i}", block))
            in_ch = out_ch
        parts[f"layer{s + 1}"] = stage
    head = head_of(in_ch)
    parts["head"] = head
    blocks.append(("head", head))
    return parts, blocks
