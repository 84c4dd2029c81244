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
    assert "not reachable" in w.form.editors["freeze.target"].error_label.text()   # at the field

    qtbot.mouseClick(pv.fix_btn, Qt.LeftButton)
    assert w.form.config().freeze.target == pytest.approx(0.136)
    qtbot.waitUntil(lambda: pv.result is not None and not pv.busy(), timeout=10000)
    assert pv.rejection is None and not pv.fix_btn.isVisible()
    assert not w.form.editors["freeze.target"].error_label.isVisible()
    assert w.launch_btn.isEnabled() and not w.launch_btn.toolTip().startswith("Cannot")



def test_config_message_takes_the_error_and_hint():
    from spfde_gui.system.engine_process import config_message
    tail = ("15:00:00 INFO engine: CPU threads: 2\ninvalid configuration (1 error):\n"
            "  freeze.target: target not reachable\nhint: rerun with --set freeze.target=0.136\n")
    assert config_message(tail).splitlines() == ["invalid configuration (1 error):",
                                                 "  freeze.target: target not reachable",
                                                 "hint: rerun with --set freeze.target=0.136"]
    assert config_message("Traceback (most recent call last):\nKeyError: 'x'") == ""


@pytest.mark.slow
def test_engine_refusing_the_config_reads_refused_not_crashed(studio, qtbot, tmp_path):
    """A configuration that reaches the engine anyway (here: started past the form) is
    refused by it with exit 2: the run reads *refused*, with the engine's message."""
    from engine import config as cfgmod
    w = studio
    cfg = cfgmod.load(cfgmod.preset_path("demo"), ["sieve.ratio=0.1", "epochs=10"])   # fields valid, plan not
    m = w.controller.start_run(cfg, tmp_path / "runs")
    assert w.controller.wait_finished(60000)
    qtbot.waitUntil(lambda: not w.controller.is_running(), timeout=10000)
    assert w.controller.exit_code == 2
    assert m.status == "refused"
    assert "not reachable" in m.error["message"] and "--set freeze.target=0.136" in m.error["message"]


def test_missing_cifar_folder_is_flagged_at_the_field(studio, qtbot, tmp_path):
    w, pv = studio, studio.preview
    w.form.load_preset("cifar100_resnet32x2_spfde")
    w.form.set_field("data.root", str(tmp_path / "no-such-folder"))
    qtbot.waitUntil(lambda: pv.rejection is not None and not pv.busy(), timeout=10000)
    ed = w.form.editors["data.root"]
    assert "does not exist" in ed.error_label.text() and ed.error_label.isVisible()
    assert not w.launch_btn.isEnabled() and "does not exist" in w.launch_btn.toolTip()
    assert w.launch() is False and not w.controller.is_running()


def test_per_gpu_row_is_hidden_for_one_process(studio, qtbot):
    pv = studio.preview
    studio.form.load_preset("demo")
    studio.form.set_field("device", "cpu")
    qtbot.waitUntil(lambda: pv.result is not None and not pv.busy(), timeout=10000)
    assert not pv.values["per_gpu"].isVisible() and not pv.row_labels["per_gpu"].isVisible()


def test_preset_box_says_edited_after_a_change(studio):
    form = studio.form
    form.load_preset("demo")
    assert form.preset_box.currentText() == "demo"
    form.set_field("epochs", 12)
    assert form.preset_box.currentText() == "demo (edited)"
    form.load_preset("demo")
    assert form.preset_box.currentText() == "demo"


def test_a_timm_model_on_the_demo_preset_is_one_click_from_valid(studio, qtbot, monkeypatch):
    from spfde_gui.system import model_tables
    measured = []

    def engine_subprocess(cfg, check=None):  # the measurement is another test's (test_gui_models)
        measured.append(cfg.model.name)
        raise model_tables.MeasureError("not measured in this test")
    monkeypatch.setattr(model_tables, "measure", engine_subprocess)
    w, pv = studio, studio.preview
    w.form.load_preset("demo")               # width 0.5 and the Section 3 analyses on
    w.form.set_field("model.name", "timm:resnet18")
    qtbot.waitUntil(lambda: pv.fix_btn.isVisible(), timeout=10000)
    assert w.form.config() is None and w.launch() is False
    assert pv.fix_btn.text() == "Use model.width = 1, analysis.enabled = false"
    assert pv.fix_btn.toolTip() == "The same as --set model.width=1 --set analysis.enabled=false"
    qtbot.mouseClick(pv.fix_btn, Qt.LeftButton)
    cfg = w.form.config()
    assert cfg is not None and cfg.model.width == 1 and cfg.analysis.enabled is False
    qtbot.waitUntil(lambda: measured == ["timm:resnet18"], timeout=10000)   # now it goes on to the plan
    assert not pv.fix_btn.isVisible()
