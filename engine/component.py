"""The hooks every training component (sparsifier, freezer, sieve, ledger) implements.

The trainer calls them in a fixed order; a component that is switched off is still present
and does nothing, so the loop has no special cases.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class LoopState:
    """Where the loop is, for the components to read (``trainer.state``). The trainer alone
    writes it, before the hooks that need each value run (docs/architecture.md)."""
    epoch: int = 0                  # the epoch being trained (set before on_epoch_start)
    batch_index: int = -1           # index of the batch in flight within the epoch
    batches_in_epoch: int = 0       # batches of the current epoch
    global_batch: int = 0           # samples of the batch in flight over all ranks (one process: its size)
    frozen_prefix: int = 0          # leading blocks frozen this epoch (from the freeze plan)
    densities: dict[str, float] = field(default_factory=dict)  # mask densities (set before on_epoch_end)


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
