"""Circular data sieving and forgetting tracking, simulated without the trainer.

A simulated run presents the sieve's active set each epoch in seeded batches with seeded
random correctness (each sample has its own accuracy, so easy and hard samples exist), and
checks the invariants of the algorithm against straightforward pure-Python references.
"""
from __future__ import annotations

import io
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from engine.config import RunConfig, sieve_oneshot_epoch
from engine.run.events import validate_event
from engine.sieving.forgetting import ForgettingTracker
from engine.sieving.sieve import Sieve, forgetting_histogram
from engine.training.seeding import gen

N = 200
BATCH = 32


def make_cfg(**over) -> RunConfig:
    base = {"seed": 3, "epochs": 30, "interval": 2, "batch_size": BATCH,
            "data.train_size": N, "sieve.ratio": 0.2, "sieve.update_ratio": 0.3}
    base.update(over)
    return RunConfig().replace(**base)


class FakeTrainer(SimpleNamespace):
    """Just the attributes the sieve reads: cfg, device, train_size and emit."""

    def __init__(self, cfg, n=N):
        super().__init__(cfg=cfg, device=torch.device("cpu"), train_size=n, events=[])

    def emit(self, name, **fields):
        self.events.append({"event": name, "v": 1, "time": 0.0, **fields})


def sample_accuracy(n, seed=11):
    return torch.rand(n, generator=gen(seed, "acc"))


def run_sim(cfg, start_epoch=0, sieve=None, trainer=None, stop_at=None, history=None):
    """Simulate epochs [start_epoch, cfg.epochs). ``stop_at=(epoch, batch)`` stops before that
    batch and returns the state. ``history`` collects (epoch, tracking, indices, correct)."""
    trainer = trainer or FakeTrainer(cfg)
    if sieve is None:
        sieve = Sieve(cfg)
        sieve.on_run_start(trainer)
    acc = sample_accuracy(trainer.train_size)
    trained = torch.zeros(trainer.train_size, dtype=torch.bool)
    per_epoch = []
    for epoch in range(start_epoch, cfg.epochs):
        sieve.on_epoch_start(trainer, epoch)
        idx = sieve.epoch_indices(epoch)
        per_epoch.append(idx.clone())
        order = idx[torch.randperm(idx.numel(), generator=gen(cfg.seed, "order", epoch))]
        for b, s in enumerate(range(0, order.numel(), BATCH)):
            if stop_at == (epoch, b):
                return sieve, trainer, per_epoch, trained
            bi = order[s:s + BATCH]
            correct = torch.rand(bi.numel(), generator=gen(cfg.seed, "correct", epoch, b)) < acc[bi]
            if history is not None:
                history.append((epoch, sieve.tracking, bi.tolist(), correct.tolist()))
            trained[bi] = True
            sieve.on_batch_end(trainer, bi, correct, None)
        record = {}
        sieve.on_epoch_end(trainer, epoch, record)
        assert record["sieve"]["active"] + record["sieve"]["removed"] == trainer.train_size
    assert stop_at is None, f"the run never reached stop_at={stop_at}"
    return sieve, trainer, per_epoch, trained


def reference_scores(batches, n):
    """Pure-Python forgetting counts: transitions correct -> wrong between consecutive
    presentations; a sample never correct scores +inf."""
    prev = [False] * n
    count = [0] * n
    ever = [False] * n
    for idx, correct in batches:
        for i, c in zip(idx, correct):
            if prev[i] and not c:
                count[i] += 1
            prev[i] = c
            ever[i] = ever[i] or c
    return [float(count[i]) if ever[i] else math.inf for i in range(n)]


# ---- the forgetting tracker ---------------------------------------------------------------
def test_tracker_matches_reference_over_intervals():
    n = 50
    t = ForgettingTracker(n)
    g = gen(0, "tracker-test")
    acc = torch.rand(n, generator=g)
    for _interval in range(3):
        t.reset()
        batches = []
        for _step in range(40):
            # duplicates across batches and several presentations per "epoch" on purpose
            idx = torch.randint(0, n, (16,), generator=g).unique()
            idx = idx[torch.randperm(idx.numel(), generator=g)]
            correct = torch.rand(idx.numel(), generator=g) < acc[idx]
            batches.append((idx.tolist(), correct.tolist()))
            t.update(idx, correct)
        ref = reference_scores(batches, n)
        assert t.scores().tolist() == ref
        assert sum(1 for r in ref if 0 < r < math.inf) > 5     # the test exercises real events
        assert sum(1 for r in ref if r == math.inf) >= 1


def test_never_correct_ranks_hardest_and_reset_clears():
    t = ForgettingTracker(4)
    t.update(torch.tensor([0, 1, 2, 3]), torch.tensor([True, True, False, True]))
    t.update(torch.tensor([0, 1, 2, 3]), torch.tensor([False, True, False, False]))
    t.update(torch.tensor([0, 3]), torch.tensor([True, False]))
    s = t.scores()
    assert s.tolist() == [1.0, 0.0, math.inf, 1.0]
    assert torch.argmax(s).item() == 2
    t.reset()
    assert torch.isinf(t.scores()).all() and t.count.sum().item() == 0
    # previous correctness is cleared too: no event across the interval boundary
    t.update(torch.tensor([1]), torch.tensor([False]))
    assert t.count[1].item() == 0


# ---- circular sieving over a whole run ----------------------------------------------------
def test_circular_invariants_over_a_run():
    cfg = make_cfg()
    sieve = Sieve(cfg)
    tr = FakeTrainer(cfg)
    sieve.on_run_start(tr)
    initial_queue = sieve.queue.tolist()
    removed = int(round(0.2 * N))
    assert len(initial_queue) == removed
    _, _, per_epoch, trained = run_sim(cfg, sieve=sieve, trainer=tr)

    for idx in per_epoch:
        assert idx.numel() == N - removed
        assert idx.unique().numel() == idx.numel()
    active, queue = set(sieve.active.tolist()), sieve.queue.tolist()
    assert len(queue) == len(set(queue)) == removed
    assert not active & set(queue) and len(active | set(queue)) == N
    assert trained.all(), "every sample is trained on at least once"

    ups = [e for e in tr.events if e["event"] == "sieve_update"]
    assert [e["epoch"] for e in ups] == list(range(cfg.interval, cfg.epochs, cfg.interval))
    k = int(round(0.3 * removed))
    seen_in = []
    for e in ups:
        assert validate_event(e) == []
        assert e["k"] == k == len(e["swapped_in"]) == len(e["swapped_out"])
        assert e["active_size"] == N - removed and e["removed_size"] == removed
        assert not set(e["swapped_in"]) & set(e["swapped_out"])
        h = e["histogram"]
        assert sum(h["counts"]) + h["never_correct"] == N - removed
        assert len(h["edges"]) == len(h["counts"]) + 1
        seen_in += e["swapped_in"]
    # FIFO: the samples come back in the initial queue's order until it is exhausted
    assert seen_in[:removed] == initial_queue
    waiting = [e["initial_waiting"] for e in ups]
    assert waiting == [max(0, removed - k * (i + 1)) for i in range(len(ups))]
    # and the queue is shuffled from then on (a FIFO queue would return the oldest removals)
    first_after = next(i for i, w in enumerate(waiting) if w == 0) + 1
    fifo_next = (ups[first_after - 2]["swapped_out"] + ups[first_after - 1]["swapped_out"])[:k] \
        if first_after >= 2 else None
    assert fifo_next is not None and ups[first_after]["swapped_in"] != fifo_next


def test_circular_moves_the_easiest_by_reference_counts():
    cfg = make_cfg(epochs=12)
    history = []
    sieve, tr, per_epoch, _ = run_sim(cfg, history=history)
    ups = {e["epoch"]: e for e in tr.events if e["event"] == "sieve_update"}
    active_before = {cfg.interval * (i + 1): per_epoch[cfg.interval * (i + 1) - 1] for i in range(len(ups))}
    for ep, e in ups.items():
        window = [(i, c) for (epo, tracking, i, c) in history if ep - cfg.interval <= epo < ep]
        assert all(tracking for (epo, tracking, _, _) in history if ep - cfg.interval <= epo < ep)
        ref = reference_scores(window, N)
        out = e["swapped_out"]
        kept = sorted(set(active_before[ep].tolist()) - set(out))
        assert max(ref[i] for i in out) <= min(ref[i] for i in kept)
        hist = forgetting_histogram(torch.tensor([ref[i] for i in active_before[ep].tolist()]))
        assert hist == e["histogram"]


def test_deterministic_for_a_seed():
    a = run_sim(make_cfg(epochs=14))
    b = run_sim(make_cfg(epochs=14))
    c = run_sim(make_cfg(epochs=14, seed=4))
    strip = lambda tr: [{k: v for k, v in e.items() if k != "time"} for e in tr.events]
    assert strip(a[1]) == strip(b[1])
    assert torch.equal(a[0].active, b[0].active) and torch.equal(a[0].queue, b[0].queue)
    assert not torch.equal(a[0].active, c[0].active)


@pytest.mark.parametrize("stop_at", [(7, 2), (8, 0), (4, 4)])
def test_resume_mid_run_continues_identically(stop_at):
    cfg = make_cfg(epochs=16)
    full, tr_full, _, _ = run_sim(cfg)
    part, tr_part, _, _ = run_sim(cfg, stop_at=stop_at)
    buf = io.BytesIO()
    torch.save(part.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)

    resumed = Sieve(cfg)
    tr2 = FakeTrainer(cfg)
    resumed.load_state_dict(state)
    resumed.on_run_start(tr2)
    # finish the interrupted epoch from its batch (the trainer replays its order), then go on
    epoch, batch = stop_at
    resumed.on_epoch_start(tr2, epoch)        # a repeated epoch start must not update again
    acc = sample_accuracy(N)
    idx = resumed.epoch_indices(epoch)
    order = idx[torch.randperm(idx.numel(), generator=gen(cfg.seed, "order", epoch))]
    for b, s in enumerate(range(0, order.numel(), BATCH)):
        if b < batch:
            continue
        bi = order[s:s + BATCH]
        correct = torch.rand(bi.numel(), generator=gen(cfg.seed, "correct", epoch, b)) < acc[bi]
        resumed.on_batch_end(tr2, bi, correct, None)
    resumed.on_epoch_end(tr2, epoch, {})
    run_sim(cfg, start_epoch=epoch + 1, sieve=resumed, trainer=tr2)

    strip = lambda evs: [{k: v for k, v in e.items() if k != "time"} for e in evs]
    assert strip(tr_part.events + tr2.events) == strip(tr_full.events)
    assert torch.equal(resumed.active, full.active) and torch.equal(resumed.queue, full.queue)
    assert torch.equal(resumed.tracker.count, full.tracker.count)


# ---- off and oneshot ----------------------------------------------------------------------
def test_off_is_all_indices_and_inert():
    cfg = make_cfg(**{"sieve.ratio": 0.0})
    sieve, tr, per_epoch, _ = run_sim(cfg)
    assert sieve.tracker is None and not sieve.tracking and tr.events == []
    assert all(torch.equal(i, torch.arange(N)) for i in per_epoch)
    assert per_epoch[0] is per_epoch[-1] or torch.equal(per_epoch[0], per_epoch[-1])
    assert sieve.epoch_indices(0) is sieve.epoch_indices(5)     # cached, not rebuilt


def test_oneshot_removes_least_forgotten_at_its_epoch():
    cfg = make_cfg(**{"sieve.mode": "oneshot", "sieve.ratio": 0.24, "epochs": 16})
    E = sieve_oneshot_epoch(cfg)
    assert 0 < E < cfg.epochs
    history = []
    sieve, tr, per_epoch, _ = run_sim(cfg, history=history)
    removed = int(round(0.24 * N))
    assert [i.numel() for i in per_epoch] == [N] * E + [N - removed] * (cfg.epochs - E)
    ups = [e for e in tr.events if e["event"] == "sieve_update"]
    assert len(ups) == 1 and ups[0]["epoch"] == E and validate_event(ups[0]) == []
    out = ups[0]["swapped_out"]
    assert len(out) == len(set(out)) == ups[0]["k"] == removed == ups[0]["removed_size"]
    assert not set(out) & set(per_epoch[-1].tolist())
    ref = reference_scores([(i, c) for (epo, _, i, c) in history if epo < E], N)
    kept = per_epoch[-1].tolist()
    assert max(ref[i] for i in out) <= min(ref[i] for i in kept)
    assert not sieve.tracking      # nothing left to decide


# ---- distributed: identical statistics and decisions on every rank --------------------------
DIST_WORKER = r"""
import sys, json, torch, torch.distributed as dist
from types import SimpleNamespace
sys.path.insert(0, sys.argv[4])
from engine.config import RunConfig
from engine.training.seeding import gen
from engine.sieving.sieve import Sieve
rank, world, init = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
cfg = RunConfig().replace(**{"seed": 5, "epochs": 7, "interval": 3, "data.train_size": 120,
                             "sieve.ratio": 0.25})
events = []
tr = SimpleNamespace(cfg=cfg, device=torch.device("cpu"), train_size=120,
                     emit=lambda name, **f: events.append(f))
s = Sieve(cfg); s.on_run_start(tr)
acc = torch.rand(120, generator=gen(1, "acc"))
log = []
for epoch in range(cfg.epochs):
    s.on_epoch_start(tr, epoch)
    idx = s.epoch_indices(epoch)
    order = idx[torch.randperm(idx.numel(), generator=gen(5, "order", epoch))]
    for b, st in enumerate(range(0, order.numel(), 10)):
        bi = order[st:st + 10]
        c = torch.rand(bi.numel(), generator=gen(5, "correct", epoch, b)) < acc[bi]
        if b % world == rank:          # this rank's share; a sample changes rank between epochs
            s.on_batch_end(tr, bi, c, None)
        log.append((epoch, s.tracking, bi.tolist(), c.tolist()))
    s.on_epoch_end(tr, epoch, {})
    if epoch == 5:
        snap = s.tracker.scores().tolist()
print(json.dumps({"rank": rank, "active": s.active.tolist(), "queue": s.queue.tolist(),
                  "scores": snap, "events": events, "log": log}))
dist.destroy_process_group()
"""


def test_distributed_ranks_agree_and_match_single_process(tmp_path):
    import json
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed unavailable")
    script = tmp_path / "worker.py"
    script.write_text(DIST_WORKER)
    init = f"file://{tmp_path / 'pg'}"
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, str(script), str(r), "2", init, root],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for r in range(2)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    a, b = outs
    assert a["active"] == b["active"] and a["queue"] == b["queue"]
    assert a["scores"] == b["scores"]
    assert len(a["events"]) == 2 and b["events"] == []       # only rank 0 reports
    # the merged statistics equal the single-process reference over all ranks' batches
    window = [(i, c) for (epo, tracking, i, c) in a["log"] if 3 <= epo <= 5]
    assert a["scores"] == reference_scores(window, 120)


# ---- a real tiny run through the trainer --------------------------------------------------
def test_real_tiny_run_sieve_events(tmp_path):
    from engine.run import folder as run_dir_mod
    from engine.run.events import read_events
    from engine.run.telemetry import Emitter
    from engine.training.trainer import Trainer

    cfg = RunConfig().replace(**{
        "name": "sieve-tiny", "seed": 1, "device": "cpu", "epochs": 5, "interval": 2, "batch_size": 32,
        "model.name": "resnet20", "model.width": 0.25, "data.image_size": 8, "data.train_size": 96,
        "data.test_size": 32, "data.num_classes": 4, "sparsity.target": 0.0, "checkpoint.every": 0,
        "sieve.ratio": 0.25, "sieve.update_ratio": 0.5})
    d = run_dir_mod.create(cfg, tmp_path)
    emitter = Emitter(d, stream=io.StringIO())
    trainer = Trainer(cfg, d, emitter)
    actives = {}
    original = trainer.sieve.epoch_indices

    def recording(epoch):
        idx = original(epoch)
        actives[epoch] = set(idx.tolist())
        return idx
    trainer.sieve.epoch_indices = recording
    try:
        assert trainer.fit() == "completed"
    finally:
        emitter.close()

    events = list(read_events(d / "events.jsonl"))
    removed, k = 24, 12
    ends = [e for e in events if e["event"] == "epoch_end"]
    assert [e["active_samples"] for e in ends] == [96 - removed] * 5
    assert all(e["sieve"]["active"] == 96 - removed and e["sieve"]["removed"] == removed for e in ends)
    ups = [e for e in events if e["event"] == "sieve_update"]
    assert [e["epoch"] for e in ups] == [2, 4]
    for e in ups:
        assert validate_event(e) == []
        before, after = actives[e["epoch"] - 1], actives[e["epoch"]]
        out, inn = set(e["swapped_out"]), set(e["swapped_in"])
        assert e["k"] == k == len(out) == len(inn)
        assert out <= before and not inn & before
        assert after == (before - out) | inn
        assert sum(e["histogram"]["counts"]) + e["histogram"]["never_correct"] == 96 - removed
    assert ups[0]["initial_waiting"] == removed - k and ups[1]["initial_waiting"] == 0
    # both updates together returned the whole initial queue, in order, once
    assert len(set(ups[0]["swapped_in"] + ups[1]["swapped_in"])) == removed
    assert set().union(*actives.values()) == set(range(96))
    fin = next(e for e in events if e["event"] == "run_finished")
    assert fin["flops"]["saved"]["sieve"] > 0
