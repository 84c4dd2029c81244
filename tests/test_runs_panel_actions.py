"""The Runs table: extra columns, the filter, renaming and deleting a run (asking first,
refusing a running one), against real run folders."""
from __future__ import annotations

import pytest

from engine.run.lock import RunLock
from spfde_gui.model import run_row
from spfde_gui.window import run_actions
from tests.test_gui import _record


def _panel(qtbot, runs):
    from spfde_gui.window.runs_panel import RunsPanel
    panel = RunsPanel(runs)
    qtbot.addWidget(panel)
    panel.rescan()
    qtbot.waitUntil(lambda: not panel.loading(), timeout=20000)
    panel.rescan()
    return panel


def _names(panel, visible_only=True):
    t = panel.table
    return sorted(t.item(r, 1).text() for r in range(t.rowCount()) if not (visible_only and t.isRowHidden(r)))


def test_extra_columns_show_the_settings_and_the_filter_matches_all_words(qtbot, tmp_path):
    from spfde_gui.window.runs_panel import BASE_COLUMNS, COLUMNS
    runs = tmp_path / "runs"
    _record(runs / "mest-1", name="mest")
    _record(runs / "spfde-2", name="spfde", n_epochs=3, finish=False)
    panel = _panel(qtbot, runs)
    # hidden until asked for: the panel stays narrow
    assert all(panel.table.isColumnHidden(c) for c in range(len(BASE_COLUMNS), len(COLUMNS)))
    row = next(r for r in range(panel.table.rowCount()) if panel.table.item(r, 1).text() == "mest-1")
    col = {n: i for i, n in enumerate(COLUMNS)}
    texts = {n: panel.table.item(row, col[n]).text() for n in run_row.EXTRA_COLUMNS}
    assert texts["sparsity"] == "90%" and texts["freeze"] == "20%" and texts["sieve"] == "20%"
    assert texts["duration"] == "6 s" and texts["date"] != "–"
    panel.filter.setText("spfde")
    assert _names(panel) == ["spfde-2"]
    panel.filter.setText("completed 90%")           # every word must match, in any column
    assert _names(panel) == ["mest-1"]
    panel.filter.setText("completed nothing-like-this")
    assert _names(panel) == []
    panel.filter.setText("")
    assert _names(panel) == ["mest-1", "spfde-2"]


def test_rename_asks_for_the_name_and_refuses_a_taken_or_bad_one(qtbot, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    a = _record(runs / "a-1")
    _record(runs / "b-2")
    panel = _panel(qtbot, runs)
    refused = []
    monkeypatch.setattr(panel, "_refused", lambda what, exc: refused.append(str(exc)))
    for bad in ("b-2", "../escape", ".hidden", ""):
        monkeypatch.setattr(panel, "_ask_name", lambda p, bad=bad: bad)
        assert panel.rename(a.resolve()) is None
    assert any("already exists" in r for r in refused) and any("not a usable folder name" in r for r in refused)
    assert a.is_dir() and not (tmp_path / "escape").exists()
    monkeypatch.setattr(panel, "_ask_name", lambda p: "renamed")
    new = panel.rename(a.resolve())
    assert new == (runs / "renamed").resolve() and new.is_dir() and not a.exists()
    assert _names(panel) == ["b-2", "renamed"]


def test_delete_asks_first_and_refuses_a_running_run(qtbot, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    a = _record(runs / "a-1")
    b = _record(runs / "b-2")
    panel = _panel(qtbot, runs)
    refused = []
    monkeypatch.setattr(panel, "_refused", lambda what, exc: refused.append(str(exc)))
    monkeypatch.setattr(panel, "_confirm_delete", lambda p: False)        # the user says no
    assert not panel.delete(a.resolve()) and a.is_dir()
    monkeypatch.setattr(panel, "_confirm_delete", lambda p: True)
    with RunLock(b):                                                        # an engine holds it
        assert not panel.delete(b.resolve())
    assert b.is_dir() and "still running" in refused[-1]
    assert panel.delete(a.resolve()) and not a.exists()
    assert _names(panel) == ["b-2"]


def test_actions_refuse_folders_outside_the_runs_folder_and_links(tmp_path):
    runs = tmp_path / "runs"
    a = _record(runs / "a-1")
    other = _record(tmp_path / "elsewhere" / "x-1")
    with pytest.raises(run_actions.RunActionError, match="not a run folder of"):
        run_actions.delete_run(other, runs)
    link = runs / "link-1"
    link.symlink_to(a)
    with pytest.raises(run_actions.RunActionError, match="symbolic link"):
        run_actions.delete_run(link, runs)
    (runs / "plain").mkdir()
    with pytest.raises(run_actions.RunActionError, match="not a run folder"):
        run_actions.delete_run(runs / "plain", runs)
    assert a.is_dir() and other.is_dir() and (runs / "plain").is_dir()


def test_run_row_formats_and_matching():
    assert run_row._duration(59) == "59 s" and run_row._duration(61) == "1 min 01 s"
    assert run_row._duration(3725) == "1 h 02 min"
    assert run_row._duration(None) == "–" and run_row._pct(0.9) == "90%" and run_row._pct(True) == "–"
    assert run_row.matches("MEST 90", ["mest_ems", "90%"]) and not run_row.matches("rigl", ["mest_ems"])
    assert run_row.extra_cells(None) == ["–"] * len(run_row.EXTRA_COLUMNS)


def test_the_accuracy_plots_mark_where_a_run_was_resumed(qtbot, tmp_path):
    """A run stopped after epoch 3 (event epochs 0-2) and resumed: a dashed 'resumed' line
    between the third and fourth epoch on both epoch plots."""
    import json

    from engine.run.events import make_event
    from spfde_gui.model.run_model import RunModel
    from spfde_gui.views.training import TrainingView
    d = _record(tmp_path / "runs" / "r-1", n_epochs=6)
    lines = [json.loads(x) for x in (d / "events.jsonl").read_text().splitlines()]
    start = dict(lines[0], resumed=True, start_epoch=3, start_batch=0)
    lines.insert(6, json.loads(json.dumps(make_event("run_finished", status="stopped", epochs_completed=3, final={},
                                                     flops={}, wall_time=3.0))))
    lines.insert(7, start)                       # after event epoch 2, the third
    (d / "events.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    m = RunModel.load(d)
    assert m.resume_points() == [3.5] and m.n_epochs == 6
    v = TrainingView()
    qtbot.addWidget(v)
    v.set_model(m)
    v.refresh(force=True)
    marks = [(p, line.value()) for p, line in v._resume_lines]
    assert {x for _p, x in marks} == {3.5} and {p for p, _x in marks} == {v.acc_ep, v.loss_ep}


def test_sweep_cells_are_listed_under_their_sweep_which_folds(qtbot, tmp_path, monkeypatch):
    import os
    import time as time_mod

    from PySide6.QtCore import Qt

    from engine.sweep.manifest import MANIFEST
    runs = tmp_path / "runs"
    old = _record(runs / "old-1", name="old")
    sweep = tmp_path / "sweeps" / "grid-20261206-120000"
    sweep.mkdir(parents=True)
    (sweep / MANIFEST).write_text("format: 1\ncells: []\n")
    c1 = _record(sweep / "grid-c001-x", name="grid")
    c0 = _record(sweep / "grid-c000-x", name="grid", finish=False)
    (sweep / "configs").mkdir()                          # not a run: not listed
    _record(tmp_path / "sweeps" / "not-a-sweep" / "stray", name="stray")   # no manifest: not a sweep
    now = time_mod.time()
    os.utime(old / "events.jsonl", (now - 600, now - 600))       # the sweep is newer: listed first
    panel = _panel(qtbot, runs)
    t = panel.table
    col1 = [t.item(r, 1).text() for r in range(t.rowCount())]
    assert col1 == ["grid-20261206-120000 · 2 cells", "  ↳ grid-c000-x", "  ↳ grid-c001-x", "old-1"]
    assert t.item(0, 2).text() == "1/2 done, 1 running"     # c000 has no run_finished and was just written
    assert [r.path for r in panel._rows[1:3]] == [c0.resolve(), c1.resolve()]
    # the sweep's row has no compare box; a cell's has, and ticking it compares that run
    assert not (t.item(0, 0).flags() & Qt.ItemIsUserCheckable)
    t.item(2, 0).setCheckState(Qt.Checked)
    assert [m.run_dir.resolve() for m in panel.compared()] == [c1.resolve()]
    # double-click on the sweep folds its cells away, and again unfolds them
    opened = []
    panel.open_requested.connect(opened.append)
    panel._open_row(0, 1)
    assert [t.isRowHidden(r) for r in range(4)] == [False, True, True, False] and not opened
    panel._open_row(0, 1)
    assert not any(t.isRowHidden(r) for r in range(4))
    panel._open_row(1, 1)                                # a cell opens like any run
    assert len(opened) == 1 and opened[0].run_dir.resolve() == c0.resolve()
    # the filter keeps a sweep's row while one of its cells matches
    panel.filter.setText("c001")
    assert [t.isRowHidden(r) for r in range(4)] == [False, True, False, True]
    panel.filter.setText("old")
    assert [t.isRowHidden(r) for r in range(4)] == [True, True, True, False]


def test_closing_the_panel_stops_a_long_replay_at_once(qtbot, tmp_path, monkeypatch):
    # a replay still running when Qt destroys its worker thread aborts the studio
    import time

    from spfde_gui.window import runs_panel
    runs = tmp_path / "runs"
    _record(runs / "huge-1")
    started = []

    def slow_replay(path):                  # pure Python, like a replay of a huge events.jsonl
        started.append(path)
        end = time.monotonic() + 8.0
        while time.monotonic() < end:
            pass
    monkeypatch.setattr(runs_panel.RunModel, "load", staticmethod(slow_replay))
    panel = runs_panel.RunsPanel(runs)
    qtbot.addWidget(panel)
    panel.rescan()
    qtbot.waitUntil(lambda: bool(started), timeout=20000)
    panel.shutdown()
    assert panel.tasks.wait(0)              # no worker left (without the interrupt: 8 s more)
