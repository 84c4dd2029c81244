"""The hooks every training component (sparsifier, freezer, sieve, ledger) implements.

The trainer calls them in a fixed order; a component that is switched off is still present
and does nothing, so the loop has no special cases.
"""
from __future__ import annotations

from typing import Any


class Component:
    name = "component"

    def on_run_start(self, trainer) -> None:
        """After the model, optimizer and data exist (and after a resume's load_state_dict)."""

    def on_epoch_start(self, trainer, epoch: int) -> None:
        """Before the epoch's first batch: mask updates, freezing, sieve updates happen here."""

    def after_backward(self, trainer) -> None:
        """Gradients are ready, the optimizer has not stepped yet."""

    def after_step(self, trainer) -> None:
        """The optimizer has stepped."""

    def on_batch_end(self, trainer, indices, correct, loss) -> None:
        """indices: dataset indices of the batch; correct: bool tensor from the training forward."""

    def on_epoch_end(self, trainer, epoch: int, record: dict) -> None:
        """Add fields to the epoch_end event in ``record``."""

    def overhead_flops(self, trainer, epoch: int) -> dict[str, float]:
        """FLOPs this component spent in ``epoch`` on top of the training itself, by source
        (e.g. ``{"analysis": ...}``); the ledger adds them to ``spent`` and ``overhead``.
        Called by the ledger at the end of the epoch, after every on_epoch_end."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
