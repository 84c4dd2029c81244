"""One figure per quantity: the FLOPs tab's dotted "projected spent" line ends where the
projection (plan, cost preview, report) says the run spends, analysis probes included."""
import pytest

from engine.config import load_preset
from engine.cost.projection import format_plan, project
from engine.run.payloads import cumulative_spent


def _proj(*extra):
    return project(load_preset("demo", ["epochs=10", "freeze.target=0.13", *extra]))


def test_projected_line_ends_at_the_spent_figure_with_analysis_probes():
    p = _proj("analysis.enabled=true")
    assert p["flops"]["overhead"]["analysis"] > 0 and p["probes"]
    # what run_started.projected carries (engine.training.trainer) is enough to draw it
    event = {k: p[k] for k in ("flops", "memory", "segments", "method", "probes")}
    cum = cumulative_spent(event)
    assert len(cum) == 10
    assert cum[-1] == pytest.approx(p["flops"]["spent"], rel=1e-9)
    # the per-epoch rows agree too
    assert cumulative_spent({"epochs": list(p["epochs"])})[-1] == pytest.approx(p["flops"]["spent"], rel=1e-9)
    # and the FLOPs tab uses it
    from spfde_gui.views.flops import _projected_cumulative
    assert _projected_cumulative(event)[-1] == pytest.approx(p["flops"]["spent"], rel=1e-9)


def test_without_analysis_the_line_is_the_segments():
    p = _proj("analysis.enabled=false")
    assert p["probes"] == []
    assert cumulative_spent(p)[-1] == pytest.approx(p["flops"]["spent"], rel=1e-9)


def test_plan_and_studio_name_the_same_freeze_start_epoch():
    from spfde_gui.fmt import shown_epoch
    p = _proj()
    start = p["freeze_plan"]["start_epoch"]
    assert f"start epoch {shown_epoch(start)} " in format_plan(p)


def test_the_freeze_share_is_one_figure_in_the_plan_the_tabs_the_report_and_the_cli(tmp_path, qtbot):
    """A real run with the analyses on (overhead FLOPs in the spent): the FLOPs tab's freeze
    'achieved' is the plan's share, computed by one function (engine.run.payloads.saving_shares),
    and the CLI, the Layer-freezing tab and the report name both freeze figures alike."""
    import io

    from engine.config import from_dict
    from engine.freezing.schedule import saving_text
    from engine.run.payloads import saving_shares
    from engine.run.telemetry import Emitter
    from engine.training.trainer import Trainer
    from spfde_gui.model.run_model import RunModel
    from spfde_gui.report import export_report
    from spfde_gui.views.flops import FlopsView, achieved_fractions
    from spfde_gui.views.freeze import FreezeView
    cfg = from_dict({"name": "one", "seed": 1, "device": "cpu", "epochs": 4, "batch_size": 32, "interval": 1,
                     "model": {"name": "resnet20", "width": 0.25},
                     "data": {"name": "synthetic", "image_size": 12, "train_size": 128, "test_size": 32,
                              "num_classes": 4, "augment": False},
                     "sparsity": {"target": 0.8}, "freeze": {"target": 0.1},
                     "analysis": {"enabled": True, "every": 1, "probe_size": 16}})
    plan = project(cfg)
    d = tmp_path / "run"
    d.mkdir()
    assert Trainer(cfg, d, Emitter(d, stream=io.StringIO(), progress_bar=False)).fit() == "completed"
    m = RunModel.load(d)
    share = plan["freeze_plan"]["achieved"]
    fin = m.finished["flops"]
    assert fin["overhead"]["analysis"] > 0                       # the overhead is in the spent
    assert saving_shares(fin)["freeze"] == pytest.approx(share, rel=1e-9)
    assert achieved_fractions(m)["freeze"] == pytest.approx(share, rel=1e-9)
    shown = f"{100 * share:.1f}%"
    text = saving_text(plan["freeze_plan"])
    assert f"share of the run's training FLOPs {shown}" in text and "reduction" in text
    assert text in format_plan(plan)
    fv, lv = FreezeView(), FlopsView()
    for v in (fv, lv):
        qtbot.addWidget(v)
        v.set_model(m)
        v.refresh(force=True)
    assert text in fv.info.text()
    assert f"{shown} achieved" in lv.summary.text()
    html = export_report(d, tmp_path / "out", formats="html")["html"].read_text(encoding="utf-8")
    assert text in html
