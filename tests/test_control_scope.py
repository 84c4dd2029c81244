"""Stop, Checkpoint and Kill act on the engine's run: disabled (with the reason) while another,
finished run is on screen; Checkpoint now confirms."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

pytestmark = pytest.mark.gui


def test_controls_follow_the_run_in_view(studio, monkeypatch):
    from spfde_gui.model.run_model import RunModel
    w = studio
    live, other = RunModel(), RunModel()
    monkeypatch.setattr(w.controller, "is_running", lambda: True)
    monkeypatch.setattr(w.controller, "model", live, raising=False)
    sent = []
    monkeypatch.setattr(w.controller, "checkpoint", lambda: sent.append("checkpoint"))
    w.open_model(other)                      # a finished run from the Runs tab
    assert not w.act_stop.isEnabled() and not w.act_ckpt.isEnabled() and not w.act_kill.isEnabled()
    assert "not in view" in w.act_stop.toolTip()
    w.open_model(live)
    assert w.act_stop.isEnabled() and w.act_ckpt.isEnabled() and w.act_kill.isEnabled()
    w.act_ckpt.trigger()
    assert sent == ["checkpoint"] and "Checkpoint requested" in w.statusBar().currentMessage()
    monkeypatch.setattr(w.controller, "is_running", lambda: False)   # before the fixture's teardown


def test_a_paused_sweep_cell_is_resumed_by_the_sweep_not_the_toolbar(studio, monkeypatch, tmp_path):
    from types import SimpleNamespace

    from spfde_gui.model.run_model import RunModel
    from spfde_gui.window import main_window
    w = studio
    monkeypatch.setattr(main_window, "resume_blocker", lambda m, running: "")   # a checkpoint is there
    cell = RunModel()
    cell.run_dir = tmp_path / "sweeps" / "demo-grid-1" / "demo-c000-1"
    w.sweep_queue.manifest = SimpleNamespace(dir=tmp_path / "sweeps" / "demo-grid-1")
    w.sweep_queue.running = False                                              # paused
    w.open_model(cell)
    assert not w.act_resume.isEnabled() and "paused sweep" in w.act_resume.toolTip()
    other = RunModel()
    other.run_dir = tmp_path / "runs" / "demo-1"
    w.open_model(other)
    assert w.act_resume.isEnabled()
    w.sweep_queue.manifest = None
