"""The cost panel's "Measure this machine's speed" button (spfde_gui/window/speed_calibration.py):
before any measurement the wall time is "unknown" and the button shows; clicked, it runs
`spfde-train plan --calibrate` on the form's configuration in an engine process, the rate
lands in the throughput cache, and the wall time becomes an estimate equal to the one
engine.cost.wall_time computes from that cache. A calibration that cannot run leaves it
unknown, saying why."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from engine.config import from_dict  # noqa: E402
from engine.cost import projection, wall_time  # noqa: E402

pytestmark = pytest.mark.gui

TINY = {"name": "cal", "seed": 1, "device": "cpu", "threads": 1, "epochs": 2, "batch_size": 16, "interval": 1,
        "model": {"name": "resnet20", "width": 0.25},
        "data": {"name": "synthetic", "image_size": 8, "train_size": 64, "test_size": 16, "num_classes": 4,
                 "augment": False},
        "sparsity": {"target": 0.8}, "freeze": {"target": 0}, "sieve": {"ratio": 0},
        "analysis": {"enabled": False}}


def _panel(qtbot, cfg):
    from spfde_gui.window.cost_preview import CostPreview
    pv = CostPreview()
    qtbot.addWidget(pv)
    pv.schedule(cfg)
    qtbot.waitUntil(lambda: not pv.busy(), timeout=30000)
    return pv


def test_measuring_turns_an_unknown_wall_time_into_the_caches_estimate(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("SPFDE_CACHE_DIR", str(tmp_path / "cache"))        # nothing measured yet
    cfg = from_dict(TINY)
    pv = _panel(qtbot, cfg)
    assert pv.values["wall"].text() == "unknown" and pv.calibrate_btn.isVisibleTo(pv)
    assert "--calibrate" in pv.values["wall"].toolTip()
    assert pv.calibrate() and not pv.calibrate()          # one measurement at a time
    assert pv.values["wall"].text() == "measuring…" and not pv.calibrate_btn.isEnabled()
    qtbot.waitUntil(lambda: not pv.calibration.running(), timeout=300000)
    qtbot.waitUntil(lambda: not pv.busy(), timeout=30000)
    hit = wall_time.lookup(cfg)
    assert hit is not None and "calibration" in hit["source"]
    expected = wall_time.estimate(cfg, projection.project(cfg), hit)["seconds"]
    assert pv.values["wall"].text().startswith(wall_time.duration(expected))
    assert not pv.calibrate_btn.isVisibleTo(pv)


def test_a_failed_measurement_leaves_it_unknown_saying_why(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("SPFDE_CACHE_DIR", str(tmp_path / "cache"))
    cfg = from_dict({**TINY, "device": "cuda:7"})           # no such device here
    pv = _panel(qtbot, cfg)
    if pv.values["wall"].text() != "unknown":
        pytest.skip("this machine has a measured speed for cuda:7")
    done = []
    pv.calibration.finished.connect(lambda ok, tail: done.append((ok, tail)))
    assert pv.calibrate()
    qtbot.waitUntil(lambda: bool(done), timeout=300000)
    qtbot.waitUntil(lambda: not pv.busy(), timeout=30000)
    assert pv.values["wall"].text() == "unknown" and pv.calibrate_btn.isEnabled()
    assert "calibration failed, the wall time stays unknown" in pv.values["wall"].toolTip()
