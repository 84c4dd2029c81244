"""The Search tab drives a real tiny search (a `spfde-train search` subprocess, synthetic
data) under QT_QPA_PLATFORM=offscreen: the cost range, Start, the live trials table, the
figures, the advice, "use these settings", Pause/continue, and `--open SEARCH_DIR`."""
from pathlib import Path

import pytest
import yaml

pytest.importorskip("optuna")
pytest.importorskip("pytestqt")

TINY = {"device": "cpu", "epochs": 2, "interval": 1, "batch_size": 16, "model": {"width": 0.25},
        "analysis": {"enabled": False}, "freeze": {"target": 0}, "sieve": {"ratio": 0},
        "checkpoint": {"every": 1},
        "data": {"image_size": 8, "train_size": 96, "test_size": 32, "num_classes": 4, "augment": False}}


def tiny_file(tmp_path: Path, trials: int = 3) -> Path:
    f = tmp_path / "tiny_search.yaml"
    f.write_text(yaml.safe_dump({"name": "gui-tiny", "base": {"preset": "demo"}, "overrides": TINY,
                                 "space": {"sparsity.target": [0.5, 0.95], "sieve.ratio": [0, 0.5]},
                                 "budget": {"fraction": 0.2}, "trials": trials, "sampler": "random",
                                 "pruner": "none"}))
    return f


@pytest.fixture
def tab(studio, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    t = studio.search
    t.searches_dir = lambda: tmp_path / "searches"
    yield t
    t.shutdown(wait_ms=60000)


def test_search_tab_runs_a_tiny_search_and_uses_the_best_settings(studio, tab, tmp_path, qtbot):
    tab.load_file(tiny_file(tmp_path, trials=2))     # the plain-MEST reference and one more
    assert "Projected cost of the space" in tab.cost.text() and "Plain-MEST reference trial: sieve.ratio=0" \
        in tab.cost.text()
    # a bad bound is named before anything runs
    row = next(r for r in range(tab.space.rowCount()) if tab.space.item(r, 0).text() == "sparsity.target")
    tab.space.item(row, 1).setText("[0.5, 1.5]")
    assert not tab.plan() and "space.sparsity.target" in tab.cost.text()
    assert not tab.start()
    tab.space.item(row, 1).setText("[0.5, 0.95]")
    assert tab.plan()
    assert tab.start()
    assert tab.is_running() and not tab.start_btn.isEnabled() and tab.pause_btn.isEnabled()
    qtbot.waitUntil(lambda: tab.state == "finished", timeout=300_000)
    assert tab.proc.exitCode() == 0, tab._stderr[-2000:]
    folder = tmp_path / "searches" / "gui-tiny"
    assert tab.folder == folder and (folder / "trials.json").is_file()
    states = [tab.table.item(r, 1).text() for r in range(tab.table.rowCount())]
    assert states.count("complete") == 2
    assert tab.table.item(0, 0).text() == "#0 (plain MEST)"
    assert "best within the budget" in tab.advice.toPlainText()
    assert all(w.renderer().isValid() for w in tab.figs.values())
    svgs = tab.figure_svgs()
    assert "budget" in svgs["scatter"] and "<circle" in svgs["history"]
    # use these settings: the best trial's configuration in the form
    best = tab.best_config()
    tab.use_btn.click()
    assert studio.form.config().to_dict()["sparsity"]["target"] == pytest.approx(best["sparsity"]["target"])
    assert studio.left.currentIndex() == 0
    written = tab.write_report()
    assert written and written["html"].is_file() and written["pdf"].stat().st_size > 0
    _open_and_continue(folder, tmp_path, qtbot)


def _open_and_continue(folder: Path, tmp_path: Path, qtbot) -> None:
    """`spfde-gui --open SEARCH_DIR` on the finished study, then one more trial in it (the
    study is not refused as another file's). Part of the test above: it reuses its search."""
    from spfde_gui.window.app import build_window
    win = build_window(open_run=str(folder), runs_dir=str(tmp_path / "runs"))
    win.close_policy = "kill"
    qtbot.addWidget(win)
    assert win.tabs.currentWidget() is win.search
    assert win.search.table.rowCount() >= 2 and win.search.name_edit.text() == "gui-tiny"
    assert "best within the budget" in win.search.advice.toPlainText()
    win.search.trials.setValue(3)
    assert win.search.start()
    qtbot.waitUntil(lambda: win.search.state == "finished", timeout=300_000)
    assert win.search.proc.exitCode() == 0, win.search._stderr[-2000:]
    assert win.search.folder == folder
    states = [r["state"] for r in win.search.snapshot["trials"]]
    assert states.count("complete") == 3
    win.close()


def test_search_tab_pause_then_continue(tab, tmp_path, qtbot):
    f = tiny_file(tmp_path, trials=2)
    d = yaml.safe_load(f.read_text())
    d["overrides"]["epochs"] = 6
    d["overrides"]["data"]["train_size"] = 1024
    d["name"] = "gui-pause"
    f.write_text(yaml.safe_dump(d))
    tab.load_file(f)
    assert tab.start()
    folder = tmp_path / "searches" / "gui-pause"

    def trained_an_epoch():
        tab.refresh()
        snap = tab.snapshot
        return snap is not None and any(r.get("curve") for r in snap["trials"])

    qtbot.waitUntil(trained_an_epoch, timeout=300_000)
    tab.pause()
    assert tab.state == "pausing" and not tab.pause_btn.isEnabled()
    qtbot.waitUntil(lambda: tab.state == "paused", timeout=120_000)
    assert tab.start_btn.text().endswith("Continue")
    states = [tab.table.item(r, 1).text() for r in range(tab.table.rowCount())]
    assert "interrupted" in states
    assert tab.start()
    qtbot.waitUntil(lambda: tab.state == "finished", timeout=300_000)
    assert tab.proc.exitCode() == 0, tab._stderr[-2000:]
    import json
    snap = json.loads((folder / "trials.json").read_text())
    assert [r["state"] for r in snap["trials"]].count("complete") == 2
    events = [json.loads(ln) for ln in (folder / "sweep_events.jsonl").read_text().splitlines() if ln.strip()]
    assert any(e.get("event") == "trial_resumed" for e in events)


def test_use_the_form_as_the_base(studio, tab):
    studio.form.set_field("sparsity.target", 0.8)
    studio.form.set_field("epochs", 7)
    tab.base_from_form()
    d = tab.search_dict()
    assert d["overrides"]["epochs"] == 7 and d["overrides"]["sparsity"]["target"] == 0.8
    assert tab.plan(), tab.cost.text()
    from engine.search import spec as spec_mod
    spec = spec_mod.parse(d)
    assert spec.base["epochs"] == 7 and spec.base["sparsity"]["target"] == 0.8
