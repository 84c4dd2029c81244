"""The studio with models beyond the built-ins: the model field takes timm:/py: names and
completes timm's, model.kwargs is typed as a mapping, a timm model is measured in an
engine subprocess for the preview, and a py: factory is imported only after the user asks."""
from __future__ import annotations

import sys

import pytest

pytestmark = pytest.mark.gui


@pytest.fixture
def window(studio):
    return studio


def _small(form):
    for path, value in (("epochs", 4), ("interval", 1), ("data.image_size", 16), ("data.train_size", 64),
                        ("data.test_size", 16), ("data.num_classes", 4), ("analysis.enabled", False),
                        ("freeze.target", 0.02)):
        form.set_field(path, value)


def test_a_factory_is_imported_only_after_the_user_asks(window, qtbot, monkeypatch):
    from spfde_gui.system import model_tables
    asked = []

    def engine_subprocess(cfg, check=None):          # what `spfde-train plan --cost-table` answers for a missing module
        asked.append(cfg.model.name)
        raise model_tables.MeasureError("model.name: py:...: cannot import module 'spfde_never_imported_pkg.models'")
    monkeypatch.setattr(model_tables, "measure", engine_subprocess)
    form, pv = window.form, window.preview
    _small(form)
    form.set_field("model.name", "py:spfde_never_imported_pkg.models:build")
    form.set_field("model.kwargs", {"depth": 3})
    qtbot.waitUntil(lambda: pv.confirm_btn.isVisible(), timeout=10000)
    assert "spfde_never_imported_pkg" not in sys.modules
    assert "Import and measure spfde_never_imported_pkg.models" in pv.confirm_btn.text()
    assert pv.rejection and "only when you click" in pv.rejection
    cfg = form.config()
    assert cfg is not None and cfg.model.kwargs == {"depth": 3}
    assert window.launch() is False                      # not measured: nothing launches
    assert asked == []                                    # not even in a subprocess
    pv.confirm_btn.click()                                # now the engine subprocess may import it
    qtbot.waitUntil(lambda: pv.error is not None and "cannot import" in pv.error, timeout=30000)
    assert asked and asked[-1] == "py:spfde_never_imported_pkg.models:build"
    assert "spfde_never_imported_pkg" not in sys.modules


def test_a_timm_model_is_measured_for_the_preview_and_its_names_complete(window, qtbot):
    pytest.importorskip("timm")
    form, pv = window.form, window.preview
    _small(form)
    form.set_field("model.name", "timm:test_resnet")
    qtbot.waitUntil(lambda: pv.result is not None and pv.result["model"]["name"] == "timm:test_resnet",
                    timeout=180000)
    assert pv.result["blocks"][0]["name"] == "stem" and pv.values["spent"].text() != "–"
    assert pv.result["model"]["blocks_from"].startswith("timm group_matcher")
    qtbot.waitUntil(lambda: getattr(form, "timm_name_count", 0) > 0, timeout=180000)
    completer = form.editors["model.name"].input.completer()
    names = [completer.model().index(i, 0).data() for i in range(completer.model().rowCount())]
    assert "timm:resnet18" in names and "resnet20" in names
    # a mapping typed without braces reads as one
    form.editors["model.kwargs"].input.setText("drop_rate: 0.1")
    assert form.editors["model.kwargs"].value() == ({"drop_rate": 0.1}, None)
    form.editors["model.kwargs"].input.setText("[1, 2]")
    assert form.editors["model.kwargs"].value()[1] is not None
