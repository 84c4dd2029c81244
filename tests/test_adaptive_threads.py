"""Adaptive CPU threads (engine.training.thread_tuner, adaptive_threads): the tuner, fed
simulated batch times, moves to the faster count and back; the component applies it."""
from __future__ import annotations

import pytest

from engine import config as C
from engine.run.events import validate_event
from engine.training.thread_tuner import ThreadTuner


def drive(tuner, speed_of, batches, samples=32):
    """Run ``batches`` simulated batches; ``speed_of(threads, i)`` gives samples/s. Returns the
    kept changes and the count in effect after each batch."""
    changes, counts, now = [], [], tuner.threads_now()
    for i in range(batches):
        new, change = tuner.batch_done(samples / speed_of(now, i), samples)
        if change is not None:
            changes.append(change)
            now = change.threads
        elif new is not None:
            now = new
        assert now == tuner.threads_now()
        counts.append(now)
    return changes, counts


def test_quiet_machine_keeps_every_core_and_probes_less_and_less():
    t = ThreadTuner(max_threads=2, hold=20, probe=3)
    changes, counts = drive(t, lambda n, i: 100.0 * n, 2000)
    assert changes == [] and t.current == 2
    probed = sum(1 for c in counts if c == 1)
    assert probed / len(counts) < 0.03          # the cost of probing on a quiet machine


def test_busy_neighbour_moves_down_then_back_up_when_it_leaves():
    busy = range(100, 600)
    speed = lambda n, i: (60.0 if n == 2 else 90.0) if i in busy else 100.0 * n
    t = ThreadTuner(max_threads=2, hold=20, probe=3)
    changes, counts = drive(t, speed, 1200)
    assert [c.threads for c in changes] == [1, 2]
    down, up = changes
    assert down.images_per_s > down.previous_images_per_s
    assert counts[590] == 1 and counts[-1] == 2


def test_noise_below_the_margin_changes_nothing():
    t = ThreadTuner(max_threads=4, hold=10, probe=3, margin=0.05)
    changes, _ = drive(t, lambda n, i: 100.0 + (3.0 if n == 3 else 0.0), 500)
    assert changes == [] and t.current == 4


def test_one_core_never_probes_and_bad_max_is_an_error():
    t = ThreadTuner(max_threads=1)
    assert drive(t, lambda n, i: 50.0, 200) == ([], [1] * 200)
    with pytest.raises(ValueError, match="max_threads"):
        ThreadTuner(max_threads=0)


def test_threads_event_is_in_the_schema():
    from engine.run.events import make_event
    ev = make_event("threads", epoch=0, batch=40, threads=1, previous=2, images_per_s=90.0)
    assert validate_event(ev) == []
    assert validate_event(make_event("threads", epoch=0, batch=40)) != []


def test_component_is_off_for_fixed_counts_and_gpus():
    pytest.importorskip("torch")
    from engine.training.adaptive_threads import wanted
    cfg = C.from_dict({"threads": 2})
    assert not wanted(cfg, "cpu", 1, {})
    auto = C.from_dict({})
    assert not wanted(auto, "cuda", 1, {})
    assert not wanted(auto, "cpu", 2, {})
    assert not wanted(auto, "cpu", 1, {"SPFDE_ADAPTIVE_THREADS": "0"})


def test_component_sets_torch_threads_and_emits_on_a_kept_change():
    torch = pytest.importorskip("torch")
    from engine.component import LoopState
    from engine.training.adaptive_threads import AdaptiveThreads
    old = torch.get_num_threads()
    clock = iter(range(10_000))
    events = []

    class View:
        state = LoopState(epoch=1, batch_index=0)

        def emit(self, name, **fields):
            events.append((name, fields))

    try:
        torch.set_num_threads(2)
        comp = AdaptiveThreads(True, ThreadTuner(max_threads=2, hold=6, probe=2), clock=lambda: next(clock) * 1.0)
        comp.on_epoch_start(View(), 1)
        idx = torch.zeros(8)
        # every batch takes one clock tick whatever the count: never faster, so no change kept
        for _ in range(30):
            comp.on_batch_end(View(), idx, None, None)
        assert events == [] and comp.tuner.current == 2
        assert torch.get_num_threads() == comp.tuner.threads_now()
    finally:
        torch.set_num_threads(old)


def test_run_model_and_report_show_the_thread_changes(tmp_path):
    from engine.run.events import make_event
    from spfde_gui.model.run_model import RunModel
    m = RunModel()
    assert m.threads_text() == ""
    m.ingest(make_event("threads", epoch=1, batch=40, threads=1, previous=2, images_per_s=241.0,
                        previous_images_per_s=110.0))
    text = m.threads_text()
    assert text.startswith("1 CPU threads") and "110.0 -> 241.0" in text and "epoch 2" in text


def test_one_slow_batch_does_not_decide_and_noise_under_the_default_margin_changes_nothing():
    # quiet 2 threads at 100/s, 1 thread at 80/s; every 7th batch a neighbour's burst halves it
    speed = lambda n, i: (100.0 if n == 2 else 80.0) * (0.5 if i % 7 == 0 else 1.0)
    changes, counts = drive(ThreadTuner(max_threads=2, hold=20, probe=3), speed, 1500)
    assert changes == [] and counts[-1] == 2
    jitter = lambda n, i: 100.0 * (1.03 if (n == 3) == (i % 2 == 0) else 0.97)   # +-3%, under the 8% margin
    assert drive(ThreadTuner(max_threads=4, hold=10), jitter, 600)[0] == []


def first_probe_moves(fast_alone: float, slow_alone: float, seeds: int = 400, noise: float = 0.11) -> float:
    """Share of seeds in which the default tuner, starting at 2 threads, keeps 1 thread at its
    first probe; batch rates are the given medians with Gaussian noise of ``noise`` (CV)."""
    import random
    moved = 0
    for seed in range(seeds):
        rng = random.Random(seed)
        def speed(n, i, rng=rng):
            mean = fast_alone if n == 1 else slow_alone
            return max(1.0, rng.gauss(mean, noise * mean))
        t = ThreadTuner(max_threads=2)
        changes, _ = drive(t, speed, t.hold + t.probe + 1)
        moved += bool(changes)
    return moved / seeds


def test_the_default_tuner_makes_the_moves_the_recorded_2_core_rates_call_for():
    # medians recorded on the 2-core VM (ResNet-20, 32 px, batch 64; docs/threads.md): beside a
    # busy loop 1 thread 178.6/s against 2 threads 144.9/s; quiet 1 thread 201.6/s, 2 threads 227.2/s
    assert first_probe_moves(178.6, 144.9) >= 0.85       # (3 rates and a 15% margin: about 0.6)
    assert first_probe_moves(201.6, 227.2) <= 0.02


def test_an_upward_probe_beside_a_busy_neighbour_ends_after_one_slow_batch():
    # beside a busy loop two threads collapse (30/s) while one runs at 80/s
    speed = lambda n, i: 30.0 if n == 2 else 80.0
    t = ThreadTuner(max_threads=2, hold=20, probe=3)
    changes, counts = drive(t, speed, 400)
    assert [c.threads for c in changes] == [1] and counts[-1] == 1
    first_down = counts.index(1)
    later = counts[first_down + 4:]                # after the kept move down
    # each upward probe: one settling batch and one timed batch at 2 threads, then back
    runs = [len(r) for r in "".join("x" if c == 2 else "." for c in later).split(".") if r]
    assert runs and all(r == 2 for r in runs)


def test_a_probe_that_was_slower_backs_off_and_one_within_the_margin_retries_soon():
    def probe_starts(speed_of_one):
        t = ThreadTuner(max_threads=2, hold=20, probe=3)
        _, counts = drive(t, lambda n, i: 100.0 if n == 2 else speed_of_one, 200)
        return [i for i in range(1, len(counts)) if counts[i] == 1 and counts[i - 1] == 2]

    slower = probe_starts(80.0)       # a loss: the wait doubles, 20 -> 40 -> 80 batches
    assert [b - a for a, b in zip(slower, slower[1:])][:2] == [4 + 40, 4 + 80]
    close = probe_starts(104.0)       # faster, but under the 8% margin: retried after the hold
    assert len(close) >= 6 and {b - a for a, b in zip(close, close[1:])} == {4 + 20}


def moved_by(batch: int, gap: float, seeds: int = 400, noise: float = 0.11) -> float:
    """Share of seeds in which the default tuner, starting at 2 threads beside a neighbour that
    makes one thread ``gap`` times faster, runs one thread at ``batch``."""
    import random
    moved = 0
    for seed in range(seeds):
        rng = random.Random(seed)
        def speed(n, i, rng=rng):
            mean = 200.0 * (gap if n == 1 else 1.0)
            return max(1.0, rng.gauss(mean, noise * mean))
        moved += drive(ThreadTuner(max_threads=2), speed, batch)[1][-1] == 1
    return moved / seeds


def test_a_modest_gain_is_taken_within_two_short_epochs_despite_noisy_first_probes():
    # bench_cpu_threads.py times the second of two 40-batch epochs. One thread 1.15x two with
    # 11% batch noise: a first probe inside the margin used to put the next one off for 64
    # batches, so only 80% of runs were at one thread by batch 80 (95% now).
    assert moved_by(80, 1.15) >= 0.9
