"""The pure half of a sparse-training method: its schedule and the extra FLOPs it spends.

Pure Python (no torch at import): engine.cost.projection, engine.cost.ledger, the config validator and the
GUI preview read it, and the Sparsifier component follows it, so the projected and the
trained schedules cannot drift apart. A method's torch rule (how it scores, drops and grows)
lives in the same module, inside functions that import torch when called.

Sparsities are overall sparsities of the sparse (not kept-dense) layers.
"""
from __future__ import annotations

import math
from typing import Any

# Every method-specific field of ``sparsity``; a method lists the ones it uses in ``fields``.
METHOD_FIELDS = ("score_lambda", "slack", "slack_late", "late_start", "search_end", "em_delta",
                 "update_fraction", "update_steps", "update_every", "score_batches", "em_delta_late", "temperature", "reinit_fc")


class Method:
    """Base schedule: a fixed mask at the target sparsity, nothing spent on top of training."""

    name = ""
    summary = ""
    # sparsity.<field> -> the default of the method's paper (used when the field is None).
    fields: dict[str, Any] = {}
    # The layer-wise split when sparsity.distribution is auto; None: the method allocates
    # globally (SNIP, GraSP), so distribution does not apply.
    distribution: str | None = "uniform"
    # False when the layer densities depend on the data (a global threshold on scores): the
    # plan then prices the ``distribution`` split of the target, an estimate.
    exact_plan = True
    # True when masks change between steps (RigL); the Sparsifier then calls step_update.
    step_based = False

    def __init__(self, cfg, samples: list[int] | None = None):
        self.cfg = cfg
        self.target = float(cfg.sparsity.target)
        self.samples = samples     # training samples per epoch (the plan's), when known

    # ---------------------------------------------------------------- fields
    def param(self, field: str) -> Any:
        v = getattr(self.cfg.sparsity, field)
        return self.fields[field] if v is None else v

    @property
    def active(self) -> bool:
        return self.target > 0.0

    def layer_distribution(self) -> str:
        d = self.cfg.sparsity.distribution
        return (self.distribution or "uniform") if d == "auto" else d

    # ---------------------------------------------------------------- schedule
    def training_sparsity(self, epoch: int) -> float:
        """Overall sparsity of the sparse layers while training during ``epoch``."""
        return self.target if self.active else 0.0

    def mask_update(self, epoch: int) -> tuple[float, float] | None:
        """(prune_to, grow_to) sparsities of the update at the start of ``epoch``, or None."""
        return None

    def update_epochs(self) -> list[int]:
        """Every epoch at whose start the mask changes (ascending)."""
        return []

    def sparsity_changes(self) -> list[int]:
        """Epochs (> 0) at which training_sparsity may change: the schedule's segments."""
        return []

    def check(self, n_sparse_layers: int, train_size: int) -> list[tuple[str, str]]:
        """What this method cannot do with this model or data, before training starts."""
        return []

    # ---------------------------------------------------------------- cost
    def overhead(self, epoch: int, samples: int, fwd_sparse_unfrozen: float, fwd_dense_unfrozen: float,
                 fwd_dense: float, train_size: int) -> dict[str, float]:
        """FLOPs spent in ``epoch`` on top of training ``samples`` samples, by source."""
        return {}

    # ---------------------------------------------------------------- helpers
    def _snap(self, fraction: float) -> int:
        # half rounds up (Python's round() would send 4.5 to 4)
        iv = self.cfg.interval
        return int(math.floor(fraction * self.cfg.epochs / iv + 0.5)) * iv
