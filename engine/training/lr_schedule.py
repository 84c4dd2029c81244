"""Per-epoch learning rate: linear warm-up, then cosine from optim.lr to optim.end_lr.

Each freeze block has its own schedule end (``block_lr_end``): a block that freezes at epoch
e reaches end_lr at e (progressive freezing); the others end at the last epoch.
"""
from __future__ import annotations

import math


def block_lr(cfg, epoch: int, end_epoch: int | None = None) -> float:
    """The LR for ``epoch`` (0-based) of a block whose cosine reaches end_lr at ``end_epoch``."""
    o = cfg.optim
    end = cfg.epochs if end_epoch is None else end_epoch
    warm = o.warmup_epochs
    if epoch < warm:
        return o.lr * (epoch + 1) / warm
    if epoch >= end:
        return o.end_lr
    span = max(1, end - warm)
    t = (epoch - warm) / span
    return o.end_lr + 0.5 * (o.lr - o.end_lr) * (1 + math.cos(math.pi * t))
