"""When the run in view should end (spfde_gui.model.run_state.finish_estimate): the plan's
executed FLOPs still to go at this session's pace, checked against hand arithmetic. Freezing
makes later epochs cheaper, so the end comes sooner than the epochs left at the current pace."""
from __future__ import annotations

import pytest

from spfde_gui.model.run_model import RunModel
from spfde_gui.model.run_state import clock_text, finish_estimate

G = 1e9


def _model(plan_saved: dict, epochs: list[tuple[float, float]], session_t: float = 90.0, status_events=()) -> RunModel:
    """A run whose plan is 100 GFLOPs dense at 90% sparsity; ``epochs``: (time, dense so far)."""
    m = RunModel()
    m.set_process_state(True)
    m.ingest({"event": "run_started", "time": session_t, "run_id": "r", "run_dir": "r", "device": "cpu",
              "dataset": {}, "resumed": False, "start_epoch": 0, "config": {"name": "r", "epochs": 10},
              "model": {"name": "m", "blocks": []},
              "projected": {"flops": {"dense": 100 * G, "spent": 10 * G, "saved": {"sparsity": 90 * G, **plan_saved},
                                      "overhead": {}}}})
    for i, (t, dense) in enumerate(epochs):
        m.ingest({"event": "epoch_end", "time": t, "epoch": i, "flops": {
            "dense": dense, "spent": dense / 10, "saved": {"sparsity": 0.9 * dense, "freeze": 0.0, "sieve": 0.0},
            "overhead": {}}})
    for ev in status_events:
        m.ingest(ev)
    return m


def test_the_end_is_the_flops_to_go_at_this_sessions_pace():
    # 10 GFLOPs executed an epoch, one epoch every 10 s after the first: 1 GFLOP/s
    m = _model({}, [(100.0, 10 * G), (110.0, 20 * G), (120.0, 30 * G)])
    est = finish_estimate(m, now=125.0)
    assert est["flops_per_s"] == pytest.approx(1 * G)
    assert est["ends"] == pytest.approx(120 + 70)            # 100 - 30 GFLOPs to go at 1 GFLOP/s
    assert est["left_s"] == pytest.approx(65.0) and est["started"] == 90.0
    assert "ends about" in clock_text(est) and "1 min left" in clock_text(est)


def test_planned_freezing_brings_the_end_forward():
    # the plan freezes 5 GFLOPs of sparse work: 10x that of executed (dense) work is skipped
    m = _model({"freeze": 5 * G}, [(100.0, 10 * G), (110.0, 20 * G), (120.0, 30 * G)])
    assert finish_estimate(m, now=120.0)["ends"] == pytest.approx(120 + (100 - 50 - 30))


def test_one_epoch_in_counts_from_the_sessions_start_and_none_without_a_plan_or_an_epoch():
    m = _model({}, [(100.0, 10 * G)])
    assert finish_estimate(m, now=100.0)["ends"] == pytest.approx(100 + 90 * 10 / 10)   # 10 GFLOPs in 10 s
    assert finish_estimate(_model({}, []), now=100.0) is None
    done = _model({}, [(100.0, 10 * G)], status_events=[{"event": "run_finished", "time": 101.0,
                                                         "status": "completed", "epochs_completed": 1}])
    assert finish_estimate(done) is None and clock_text(None) == ""
