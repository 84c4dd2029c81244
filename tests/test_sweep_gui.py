"""The studio's sweep queue and results view (pytest-qt, offscreen): build a sweep from the
form plus an axis, see each cell's projected cost, reorder and drop waiting cells, start,
pause (the running cell checkpoints), start again (it resumes), and read the results."""
import csv
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from engine.sweep import cells as cells_mod
from engine.sweep import manifest, results, spec, state

TINY = {"device": "cpu", "epochs": 2, "interval": 1, "batch_size": 4, "model": {"width": 0.25},
        "data": {"image_size": 8, "train_size": 40, "test_size": 16, "num_classes": 4, "augment": False},
        "freeze": {"target": 0}, "sieve": {"ratio": 0}, "checkpoint": {"every": 1}}


@pytest.fixture
def window(studio, tmp_path):
    from engine.config import load_preset
    cfg = load_preset("demo").to_dict()
    for k, v in TINY.items():
        cfg[k] = {**cfg[k], **v} if isinstance(v, dict) else v
    cfg["run_dir"] = str(tmp_path / "runs")
    studio.form.set_config(cfg)
    return studio


def test_bad_axis_is_shown_with_its_name(window):
    q = window.sweep_queue
    q.add_axis("sparsity.target", "0.5, lots")
    assert q.plan() is False
    assert "axes.sparsity.target" in q.message.text() and "lots" in q.message.text()
    assert q.table.rowCount() == 0 and not q.start_btn.isEnabled()
    # a good plan, then a bad one: the old cells go, Start cannot run them
    q.axes.item(0, 1).setText("0.5, 0.8")
    assert q.plan() is True and q.table.rowCount() == 2 and q.start_btn.isEnabled()
    q.axes.item(0, 1).setText("0.5, 1.5")
    assert q.plan() is False and q.cells == [] and q.table.rowCount() == 0 and not q.start_btn.isEnabled()
    assert q.start() is False


@pytest.mark.slow
def test_queue_plans_reorders_drops_runs_pauses_and_resumes(window, qtbot, tmp_path):
    q = window.sweep_queue
    q.name_edit.setText("gui")
    q.add_axis("sparsity.target", "0.5, 0.8, 0.6")
    assert q.plan() is True
    assert q.table.rowCount() == 3
    assert [q.table.item(r, 0).text() for r in range(3)] == ["gui-c000", "gui-c001", "gui-c002"]
    flops = [float(q.table.item(r, 3).text()) for r in range(3)]
    assert flops[1] < flops[2] < flops[0]                 # projected cost per cell: sparser is cheaper
    assert "cells, about" in q.total.text()

    q.table.selectRow(1)
    assert q.move(-1) is True                             # 0.8 first
    assert [c.setting["sparsity.target"] for c in q.cells] == [0.8, 0.5, 0.6]
    q.table.selectRow(2)
    assert q.drop() is True
    q.table.selectRow(1)
    assert q.drop() is True                               # one cell left keeps the test short
    assert [c.name for c in q.cells] == ["gui-c001"]

    assert q.start() is True
    m = q.manifest
    assert m is not None and [c.name for c in m.cells] == ["gui-c001"]
    assert m.dir.parent == (tmp_path / "sweeps").resolve()
    qtbot.waitUntil(lambda: window.controller.model is not None and window.controller.model.n_epochs >= 1,
                    timeout=120000)
    assert window.model is window.controller.model      # the running cell is live in the views
    q.pause()
    qtbot.waitUntil(lambda: not window.controller.is_running() and q._current is None, timeout=120000)
    assert not q.running
    sts = {s.cell.name: s.action for s in state.states(manifest.read(m.dir))}
    assert sts["gui-c001"] in ("resume", "done")          # checkpointed (or it had just finished)

    assert q.start() is True                              # continues: resumes the paused cell
    qtbot.waitUntil(lambda: not q.running, timeout=180000)
    assert "Sweep finished" in q.message.text()
    lines = results.latest_lines(manifest.read_jsonl(m.dir / manifest.RESULTS))
    assert sorted(lines) == ["gui-c001"] and lines["gui-c001"]["status"] == "completed"
    assert q.table.item(0, 5).text() == "completed"

    view = window.sweep_results                           # the queue handed its sweep over
    assert view.manifest is not None and view.manifest.dir == m.dir
    assert view.table.rowCount() == 1
    with qtbot.waitSignal(view.open_runs) as sig:
        view.open_row(0)
    assert len(sig.args[0]) == 1 and window.model.run_dir == sig.args[0][0]


def test_results_view_table_gaps_pareto_and_exports(qtbot, tmp_path):
    from spfde_gui.sweep.results_view import SweepResultsView
    s = spec.parse({"name": "v", "base": {"preset": "demo"}, "overrides": TINY,
                    "axes": {"sparsity.target": [0.5, 0.8]}, "seeds": 2})
    m = manifest.create(s, cells_mod.build(s), tmp_path)
    accs = {0: 0.6, 1: 0.64, 2: 0.7}
    for c in m.cells:
        if c.index == 3:
            manifest.append_jsonl(m.dir / manifest.RESULTS, {"cell": c.name, "status": "failed", "error": "boom"})
            continue
        manifest.append_jsonl(m.dir / manifest.RESULTS, {
            "cell": c.name, "status": "completed", "run_dir": None, "final_test_acc": accs[c.index],
            "best_test_acc": accs[c.index], "flops_spent": 2e6 if c.index < 2 else 1e6,
            "peak_memory_bytes": 2**20, "wall_time": 3.0})
    v = SweepResultsView()
    qtbot.addWidget(v)
    v.set_sweep(m.dir)
    assert v.table.rowCount() == 2
    head = [v.table.horizontalHeaderItem(k).text() for k in range(v.table.columnCount())]
    assert head[:2] == ["#", "sparsity.target"]
    seeds = head.index("seeds")
    assert v.table.item(0, seeds).text() == "2/2" and v.table.item(1, seeds).text() == "1/2 (1 failed)"
    assert v.table.item(0, head.index("final test acc (%)")).text() == "62.00 ± 2.83"
    assert v.table.item(1, 0).background().color().name() == "#fdf0e6"     # the gap is marked
    assert v.pareto_rows() == [1]                       # cheaper and more accurate
    p = v.export("csv")
    got = list(csv.DictReader(p.read_text().splitlines()))
    assert float(got[1]["final_test_acc_mean"]) == pytest.approx(0.7) and got[1]["seeds_failed"] == "1"
    assert v.export("md").read_text().count("\n") == 4
    assert "\\toprule" in v.export("tex").read_text()


def test_results_plot_frames_a_single_finished_cell(qtbot, tmp_path):
    # one point: the auto range collapses and the ticks would read 15.50000000000004
    from spfde_gui.sweep.results_view import SweepResultsView
    s = spec.parse({"name": "one", "base": {"preset": "demo"}, "overrides": TINY,
                    "axes": {"sparsity.target": [0.5, 0.8]}, "seeds": 1})
    m = manifest.create(s, cells_mod.build(s), tmp_path)
    c = m.cells[0]
    manifest.append_jsonl(m.dir / manifest.RESULTS, {
        "cell": c.name, "status": "completed", "run_dir": None, "final_test_acc": 0.155,
        "best_test_acc": 0.155, "flops_spent": 1.3554e10, "peak_memory_bytes": 2**20, "wall_time": 3.0})
    v = SweepResultsView()
    qtbot.addWidget(v)
    v.set_sweep(m.dir)
    (x0, x1), (y0, y1) = v.plot.getViewBox().viewRange()
    assert x1 - x0 > 1e9 and x0 < 1.3554e10 < x1
    assert y1 - y0 >= 1.0 and y0 < 15.5 < y1


def test_open_a_sweep_folder_shows_its_results(qtbot, tmp_path):
    # `spfde-gui --open SWEEP_DIR`: the results table, not an empty run view
    from spfde_gui.window.app import build_window
    s = spec.parse({"name": "o", "base": {"preset": "demo"}, "overrides": TINY, "axes": {"sparsity.target": [0.5, 0.8]}})
    m = manifest.create(s, cells_mod.build(s), tmp_path)
    w = build_window(open_run=str(m.dir), runs_dir=str(tmp_path / "runs"))
    w.close_policy = "kill"
    qtbot.addWidget(w)
    assert w.tabs.currentWidget() is w.sweep_results and w.sweep_results.table.rowCount() == 2
    assert "0/2 runs completed" in w.sweep_results.label.text()
