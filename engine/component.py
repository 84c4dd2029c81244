"""The hooks every training component (sparsifier, freezer, sieve, ledger, trackers) implements.

The trainer calls them in a fixed order; a component that is switched off is still present
and does nothing, so the loop has no special cases.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


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
    # set by an after_backward hook to skip this batch's optimizer step (RigL's mask-update
    # steps, as google-research/rigl); the trainer clears it after the step it skipped
    skip_step: bool = False


class TrainerView(Protocol):
    """What a component may read of the trainer (engine.training.trainer.Trainer), and its
    one way to speak: ``emit``. Typed loosely where the value is a torch object, so this
    module stays pure (the studio and mypy read it without torch)."""
    cfg: Any                # engine.config.RunConfig
    state: LoopState        # where the loop is
    model: Any              # engine.models.base.BlockModel
    optimizer: Any          # torch.optim.SGD, one parameter group per block
    device: Any             # torch.device
    data: Any               # engine.data.loaders: the batch iterators
    speed: Any              # engine.training.precision: autocast and scaler
    arch: Any               # engine.cost.arch.Arch of the model
    plan: dict | None       # the run's projection (engine.cost.projection)
    train_size: int
    num_classes: int
    components: list

    def emit(self, event: str, /, **fields: Any) -> Any: ...


class Component:
    """A training component: the trainer calls these hooks in a fixed order, each with the
    trainer as a ``TrainerView``."""
    name = "component"

    def on_run_start(self, trainer: TrainerView) -> None:
        """After the model, optimizer and data exist (and after a resume's load_state_dict)."""

    def on_epoch_start(self, trainer: TrainerView, epoch: int) -> None:
        """Before the epoch's first batch: mask updates, freezing, sieve updates happen here."""

    def after_backward(self, trainer: TrainerView) -> None:
        """Gradients are ready, the optimizer has not stepped yet."""

    def after_step(self, trainer: TrainerView) -> None:
        """The optimizer has stepped."""

    def on_batch_end(self, trainer: TrainerView, indices, correct, loss) -> None:
        """indices: dataset indices of the batch; correct: bool tensor from the training forward."""

    def on_epoch_end(self, trainer: TrainerView, epoch: int, record: dict) -> None:
        """Add fields to the epoch_end event in ``record``."""

    def on_event(self, trainer: TrainerView, event: dict) -> None:
        """An event the run has just emitted (written to the stream already); a component
        that reacts must not block: the trackers hand it to a background queue."""

    def on_run_end(self, trainer: TrainerView, status: str) -> None:
        """The session ends: completed, stopped, finished_unsaved, or failed (an exception
        leaves the loop; the error event follows). Must not raise."""

    def overhead_flops(self, trainer: TrainerView, epoch: int) -> dict[str, float]:
        """FLOPs this component spent in ``epoch`` on top of the training itself, by source
        (e.g. ``{"analysis": ...}``); the ledger adds them to ``spent`` and ``overhead``.
        Called by the ledger at the end of the epoch, after every on_epoch_end."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
