"""The terminal progress bar of ``spfde-train run``, drawn by tqdm from the events themselves.

One tqdm bar per epoch: batch n of N, images/s and loss from the ``progress`` event, the
time left for the epoch (tqdm's smoothed rate) and for the run (that plus the remaining
epochs at the last epoch's duration). tqdm is imported with the first bar, so
``spfde-train --help`` and the planner never load it; the emitter makes a bar only for a
person at a terminal (stderr a TTY; docs/engine.md), and the bar writes to its own stream (stderr), never
to stdout, which carries the JSON events.
"""
from __future__ import annotations

import time
from typing import IO, Any

from engine.run.summary import summary_lines

# {remaining} is tqdm's estimate for this epoch; the postfix carries images/s and the run's.
BAR_FORMAT = "epoch {desc} |{bar}| batch {n_fmt}/{total_fmt} [{elapsed}<{remaining} epoch{postfix}]"
BAR_WIDTH = 100        # tqdm's ncols when the stream has no size (not a terminal)


def fmt_interval(seconds: float) -> str:
    """tqdm's own interval format ([H:]MM:SS), so the run's time left reads like the epoch's."""
    from tqdm import tqdm
    return str(tqdm.format_interval(max(0.0, seconds)))


class ProgressBar:
    """Turns events into a tqdm bar and epoch lines on ``out``."""

    def __init__(self, out: IO[str]):
        self.out = out
        self.epochs: int | None = None
        self.run_dir: str | None = None
        self._bar: Any = None           # the epoch's tqdm bar, or None between epochs
        self._bar_epoch: int | None = None
        self._epoch_start = 0.0         # when this epoch's first progress event arrived
        self._epoch_time: float | None = None   # the last finished epoch's duration

    def on_event(self, ev: dict) -> None:
        name = ev.get("event")
        try:
            if name == "run_started":
                self.epochs = (ev.get("config") or {}).get("epochs")
                self.run_dir = ev.get("run_dir")
            elif name == "progress":
                self._progress(ev)
            elif name == "epoch_end":
                self._epoch_end(ev)
            elif name == "run_finished":
                self.close(keep=True)    # where it stopped stays on screen, the summary below it
                self.out.write("".join(line + "\n" for line in summary_lines(ev, self.run_dir)))
                self.out.flush()
            elif name == "error":
                self.close(keep=True)
        except (OSError, ValueError):
            pass                         # a closed terminal never stops training

    def _progress(self, ev: dict) -> None:
        epoch, batch, batches = int(ev["epoch"]), int(ev["batch"]), max(1, int(ev["batches"]))
        if self._bar is None or self._bar_epoch != epoch or self._bar.total != batches:
            self.close()
            from tqdm import tqdm  # only a terminal run draws a bar: not at engine start-up
            self._bar = tqdm(total=batches, file=self.out, desc=f"{epoch + 1}/{self.epochs or '?'}",
                             bar_format=BAR_FORMAT, ncols=None if _isatty(self.out) else BAR_WIDTH,
                             dynamic_ncols=_isatty(self.out), leave=False, mininterval=0, smoothing=0.3)
            self._bar_epoch = epoch
            self._epoch_start = time.monotonic()
        bar = self._bar
        bar.update(max(0, batch - bar.n))
        bar.set_postfix_str(self.postfix(ev, self.run_left(epoch, batch, batches)), refresh=True)

    def run_left(self, epoch: int, batch: int, batches: int) -> float | None:
        """Seconds left in the run: this epoch's rest plus the epochs after it, each as long
        as the last finished one (or as this one's pace while none has finished)."""
        if not self.epochs or batch <= 0:
            return None
        elapsed = time.monotonic() - self._epoch_start
        per_epoch = self._epoch_time or elapsed * batches / batch
        this_left = elapsed * (batches - batch) / batch
        return this_left + max(0, self.epochs - epoch - 1) * per_epoch

    @staticmethod
    def postfix(ev: dict, run_left: float | None) -> str:
        loss, ips = ev.get("loss"), ev.get("images_per_s")
        parts = [f"loss {loss:.3f}" if loss is not None else "",
                 f"{ips:.0f} img/s" if ips else "",
                 f"run {fmt_interval(run_left)} left" if run_left is not None else ""]
        return ", ".join(p for p in parts if p)

    def _epoch_end(self, ev: dict) -> None:
        self.close()
        if isinstance(ev.get("epoch_time"), (int, float)):
            self._epoch_time = float(ev["epoch_time"])
        ta = ev.get("test_acc")
        self.out.write(f"epoch {ev['epoch'] + 1}/{ev['epochs']} train loss {ev['train_loss']:.3f} "
                       f"acc {ev['train_acc']:.3f}" + (f" | test acc {ta:.3f}" if ta is not None else "")
                       + f" | {ev['epoch_time']:.1f}s\n")
        self.out.flush()

    def close(self, keep: bool = False) -> None:
        """End the open bar: cleared (an epoch line follows) or, ``keep``, left on its own line."""
        bar, self._bar = self._bar, None
        if bar is not None:
            try:
                bar.leave = keep
                bar.close()
            except (OSError, ValueError):
                pass


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
