"""Launch is disabled while the planner refuses the form's configuration (the reason in its
tooltip), and an unreachable freeze target is one click from the reachable maximum."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import Qt

pytestmark = pytest.mark.gui


def test_unreachable_target_disables_launch_and_offers_the_maximum(studio, qtbot):
    w, pv = studio, studio.preview
    w.form.load_preset("demo")
    w.form.set_field("sieve.ratio", 0.1)
    w.form.set_field("epochs", 10)            # the README's shortened demo, before its fix
    qtbot.waitUntil(lambda: pv.rejection is not None and not pv.busy(), timeout=10000)
    assert "not reachable" in pv.rejection
    assert not w.launch_btn.isEnabled() and not w.act_launch.isEnabled()
    assert ":disabled" in w.launch_btn.styleSheet()    # a style sheet hides the native disabled look
    assert "not reachable" in w.launch_btn.toolTip() and w.launch_btn.toolTip().startswith("Cannot launch")
    assert w.launch() is False and not w.controller.is_running()
    assert "not reachable" in w.launch_msg.text()
    assert pv.fix_btn.isVisible() and "13.6%" in pv.fix_btn.text()

    qtbot.mouseClick(pv.fix_btn, Qt.LeftButton)
    assert w.form.config().freeze.target == pytest.approx(0.136)
    qtbot.waitUntil(lambda: pv.result is not None and not pv.busy(), timeout=10000)
    assert pv.rejection is None and not pv.fix_btn.isVisible()
    assert w.launch_btn.isEnabled() and not w.launch_btn.toolTip().startswith("Cannot")

