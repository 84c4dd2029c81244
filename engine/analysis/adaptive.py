"""Adaptive layer freezing (``freeze.scheme: adaptive``), beyond the paper.

In the spirit of AutoFreeze and Egeria: a block freezes once it has stopped changing. The
rule, applied after each measurement (engine.analysis.schedule):

* blocks freeze front to back, at most one per measurement, never past the freezable
  blocks of ``freeze.layer_fraction`` (the single-shot limit);
* the next block freezes when, for the last ``freeze.adaptive.patience`` measurements,
  its output CKA against the previous measurement stayed >= ``freeze.adaptive.cka`` and
  the structural similarity of each of its sparse layers stayed >=
  ``freeze.adaptive.mask_similarity`` (a block without sparse layers is judged on CKA);
* the FLOPs budget holds: the single-shot plan for ``freeze.target`` is a deadline, a
  block it freezes freezes at its single-shot epoch at the latest, so the run saves at
  least the target whatever the measurements say. Early freezing only saves more.

``engine.freezing.schedule`` prices the range this gives: the deadline plan (least saving) and
the earliest plan the rule allows (every freezable block frozen as soon as the patience
permits). The run reports what it achieved (the ledger's ``saved.freeze``).

The LR (SpFDE's progressive freezing ends each block's cosine at its freeze epoch): a block
found stable after epoch m keeps training for ``freeze.adaptive.anneal_epochs`` (a) more
epochs while its cosine is re-planned from the LR it had in epoch m to end_lr at its freeze
epoch f = m + 1 + a (``annealed_lr``); with a = 0 it freezes at once, at the LR it had.
"""
from __future__ import annotations

import math
from collections.abc import Sequence


def stable(cka: Sequence[float | None], similarity: Sequence[float | None], cka_min: float,
           sim_min: float, patience: int) -> bool:
    """Whether the last ``patience`` measurements of one block are all above both thresholds.

    cka[i], similarity[i]: the block's values at measurement i (None: not measured, e.g.
    the first measurement has no previous one; a similarity of None also means the block
    has no sparse layer and is judged on CKA only)."""
    if patience < 1 or len(cka) < patience:
        return False
    recent_cka = list(cka)[-patience:]
    if any(v is None or v < cka_min for v in recent_cka):
        return False
    recent_sim = list(similarity)[-patience:]
    return all(v is None or v >= sim_min for v in recent_sim)


def next_prefix(prefix: int, freezable: int, cka_history: dict[int, list], sim_history: dict[int, list],
                cka_min: float, sim_min: float, patience: int) -> int:
    """The frozen prefix after a measurement: prefix + 1 when block ``prefix`` is stable."""
    if prefix >= freezable:
        return prefix
    b = prefix
    if stable(cka_history.get(b, []), sim_history.get(b, []), cka_min, sim_min, patience):
        return prefix + 1
    return prefix


def earliest_prefix(epochs: int, measure_at: Sequence[int], freezable: int, patience: int,
                    anneal: int = 0) -> list[int]:
    """The most freezing the rule allows: the first CKA comes at the second measurement, so
    block k can be found stable at measurement ``patience + k`` (0-based) and freezes
    ``anneal`` epochs after the next one."""
    freeze_at = []
    for k in range(freezable):
        i = patience + k
        if i < len(measure_at) and measure_at[i] + 1 + anneal < epochs:
            freeze_at.append(measure_at[i] + 1 + anneal)
    return [sum(1 for t in freeze_at if t <= e) for e in range(epochs)]


def annealed_lr(lr_from: float, end_lr: float, decided_after: int, freeze_epoch: int, epoch: int) -> float:
    """A stable block's LR in ``epoch``: its cosine re-planned from ``lr_from`` (its LR in epoch
    ``decided_after``) to ``end_lr`` at ``freeze_epoch``, the epoch it freezes."""
    span = freeze_epoch - decided_after
    if epoch >= freeze_epoch or span <= 0:
        return end_lr
    t = (epoch - decided_after) / span
    return end_lr + 0.5 * (lr_from - end_lr) * (1 + math.cos(math.pi * t))
