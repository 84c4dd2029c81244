"""The training component that applies ``ThreadTuner`` (engine.training.thread_tuner) to
a CPU run with ``threads: auto``: it times each batch, sets ``torch.set_num_threads`` and
emits a ``threads`` event whenever it keeps a different count.

Off (no hooks do anything) on a GPU, with a fixed count, under torchrun, when torch runs
one thread (one core, or an exported OMP_NUM_THREADS=1) and with SPFDE_ADAPTIVE_THREADS=0.
Results do not depend on the count beyond float reduction order (docs/threads.md).
"""
from __future__ import annotations

import os
import time

import torch

from engine.component import Component, TrainerView
from engine.training.thread_tuner import ThreadTuner

ENV_OFF = "SPFDE_ADAPTIVE_THREADS"    # "0" switches the tuner off (a benchmark's fixed `auto`)


def wanted(cfg, device_type: str, world: int, environ=None) -> bool:
    """Whether this run tunes its threads."""
    env = os.environ if environ is None else environ
    return (str(cfg.threads) == "auto" and device_type == "cpu" and world == 1
            and env.get(ENV_OFF, "1") != "0" and torch.get_num_threads() > 1)


class AdaptiveThreads(Component):
    name = "threads"

    def __init__(self, enabled: bool, tuner: ThreadTuner | None = None, clock=time.monotonic):
        self.enabled = enabled
        self.tuner = tuner or ThreadTuner(max_threads=max(1, torch.get_num_threads()))
        self.clock = clock
        self._last: float | None = None

    def on_epoch_start(self, trainer: TrainerView, epoch: int) -> None:
        if self.enabled:
            # The first interval would include the evaluation, checkpoints and the epoch's
            # set-up: not timed. The hold/probe count carries on, so short epochs still probe.
            self._last = None

    def on_batch_end(self, trainer: TrainerView, indices, correct, loss) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if self._last is None:
            self._last = now
            return
        seconds, self._last = now - self._last, now
        new, change = self.tuner.batch_done(seconds, int(indices.shape[0]))
        if change is not None:
            self._set(change.threads)
            state = trainer.state
            trainer.emit("threads", epoch=int(state.epoch), batch=int(state.batch_index) + 1,
                         threads=change.threads, previous=change.previous,
                         images_per_s=round(change.images_per_s, 2),
                         previous_images_per_s=round(change.previous_images_per_s, 2),
                         max_threads=self.tuner.max_threads)
        elif new is not None:
            self._set(new)

    @staticmethod
    def _set(n: int) -> None:
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)

    def state_dict(self) -> dict:
        return {"threads": self.tuner.current} if self.enabled else {}

    def load_state_dict(self, state: dict) -> None:
        # A resumed run starts again from every core: the machine may have changed meanwhile.
        pass
