"""Adaptive CPU threads: the intra-op thread count follows the machine during a run.

Pure Python (no torch): ``ThreadTuner`` is fed the wall time and size of each batch and
answers which thread count to use next; ``engine.training.adaptive_threads`` applies it
with ``torch.set_num_threads`` and emits the ``threads`` event.

Why: the count fixed at start-up (``threads: auto``, every usable core) collapses when a
neighbour takes a core (docs/benchmarks.md: 0.29-0.36x beside one busy loop on 2 cores),
while one thread fewer loses little. So the tuner holds a count for ``hold`` batches,
then probes a neighbouring count (one fewer, or one more, up to the cores it started
with) for ``probe`` batches after one settling batch, and keeps whichever gave more
samples per second by at least ``margin``. A probe that was slower doubles the wait before
the next probe in that direction (up to ``max_hold``), so a quiet machine pays for probing
less and less; one that was faster but within the margin costs nothing and is retried after
``hold`` batches (beside a busy loop on the 2-core VM one thread was 1.04x two in a first
probe and 1.2-1.3x in later batches: one close probe must not put the move off for 64
batches); any change resets the waits, so the run goes back up when the machine frees.

Speeds are medians of 6 per-batch rates on each side (one batch slowed by a neighbour's
burst does not decide), and a probe must win by 8%. Both were chosen on recorded batch
rates of ResNet-20 on the 2-core VM (docs/threads.md), where per-batch noise is about 11%
and the moves worth making are 1.1-1.3x (one thread beside a busy loop 1.23x two; two on a
quiet machine 1.13x one): with 3 rates and 15% the move down beside a busy loop was made
in 63% of probes, with 6 and 8% in 91%, while a false move on a quiet machine stays rare
(0.5% of probes; it is undone by the next upward probe).

A probe whose first timed batch is already ``abort`` times slower than the held count ends
there, a loss: an upward probe beside a busy neighbour (where the higher count collapses)
then costs one slow batch, not ``probe`` of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Change:
    """A decided change of thread count (the ``threads`` event's content)."""
    threads: int
    previous: int
    images_per_s: float          # throughput measured at the new count
    previous_images_per_s: float  # and at the old one


@dataclass
class ThreadTuner:
    max_threads: int             # the count it starts with and never exceeds
    hold: int = 32               # batches at a count before a probe
    probe: int = 6               # measured batches of a probe (after one settling batch)
    margin: float = 0.08         # a probe must be this much faster to be kept
    abort: float = 1.5           # a probe's first timed batch this much slower ends it
    max_hold: int = 512          # longest wait between probes in one direction
    current: int = 0
    _phase: str = "hold"
    _count: int = 0              # batches in this phase
    _times: list[float] = field(default_factory=list)   # (seconds) measured batches of this phase
    _sizes: list[int] = field(default_factory=list)
    _baseline: float = 0.0       # samples/s of the held count, from the end of its hold
    _wait: dict[int, int] = field(default_factory=dict)  # direction (-1/+1) -> batches to hold
    _next_dir: int = -1
    _candidate: int = 0

    def __post_init__(self) -> None:
        if self.max_threads < 1:
            raise ValueError(f"max_threads: expected a positive number of threads, got {self.max_threads}")
        self.current = self.current or self.max_threads
        self._wait = {-1: self.hold, +1: self.hold}

    @property
    def probing(self) -> int | None:
        """The count being tried, or None while holding."""
        return self._candidate if self._phase == "probe" else None

    def threads_now(self) -> int:
        return self._candidate if self._phase == "probe" else self.current

    def restart(self) -> None:
        """Forget the open measurement (an epoch boundary: evaluation and checkpoints are
        not batches), back to holding the current count."""
        self._phase, self._count = "hold", 0
        self._times, self._sizes = [], []

    def _speed(self) -> float:
        """Median samples/s of the measured batches (0 when none)."""
        rates = sorted(n / t for n, t in zip(self._sizes, self._times) if t > 0)
        if not rates:
            return 0.0
        mid = len(rates) // 2
        return rates[mid] if len(rates) % 2 else (rates[mid - 1] + rates[mid]) / 2

    def _directions(self) -> list[int]:
        out = []
        if self.current > 1:
            out.append(-1)
        if self.current < self.max_threads:
            out.append(+1)
        return out

    def batch_done(self, seconds: float, samples: int) -> tuple[int | None, Change | None]:
        """Record one batch. Returns (the thread count to set now or None, a kept Change or None)."""
        self._count += 1
        if self._phase == "hold":
            return self._after_hold_batch(seconds, samples), None
        return self._after_probe_batch(seconds, samples)

    def _after_hold_batch(self, seconds: float, samples: int) -> int | None:
        dirs = self._directions()
        if not dirs:
            return None                          # one core: nothing to tune
        if self._next_dir not in dirs:
            self._next_dir = dirs[0]
        wait = self._wait[self._next_dir]
        if self._count > max(1, wait - self.probe):    # the baseline: the hold's last batches
            self._times.append(seconds)
            self._sizes.append(samples)
        if self._count < wait:
            return None
        self._baseline = self._speed()
        self._phase, self._count, self._times, self._sizes = "probe", 0, [], []
        self._candidate = self.current + self._next_dir
        return self._candidate

    def _after_probe_batch(self, seconds: float, samples: int) -> tuple[int | None, Change | None]:
        if self._count > 1:                      # the first batch at a new count settles
            self._times.append(seconds)
            self._sizes.append(samples)
        lost_early = len(self._times) == 1 and self._speed() * self.abort < self._baseline
        if self._count < self.probe + 1 and not lost_early:
            return None, None
        speed, direction = (0.0 if lost_early else self._speed()), self._candidate - self.current
        dirs_before = self._directions()
        change = None
        if speed > self._baseline * (1 + self.margin):
            change = Change(self._candidate, self.current, speed, self._baseline)
            self.current = self._candidate
            self._wait = {-1: self.hold, +1: self.hold}
        elif speed < self._baseline:
            self._wait[direction] = min(self.max_hold, self._wait[direction] * 2)
        else:
            # faster, but not by the margin: the probe cost nothing, and a gap this close is
            # where one noisy probe misjudges a real gain, so try again after the base hold
            self._wait[direction] = self.hold
        # alternate the direction of the next probe where both are possible
        others = [d for d in self._directions() if d != direction] or dirs_before
        self._next_dir = others[0] if others else direction
        self.restart()
        return (None if change else self.current), change
