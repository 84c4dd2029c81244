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
