"""Event-fuzz suite: malformed and randomly mutated events.jsonl lines never crash the run
model, its analysis data, the report or the studio's views; they are skipped and counted."""
from __future__ import annotations

import json

import numpy as np
import pytest

from spfde_gui.model import analysis_data
from spfde_gui.model.event_guard import MAX_BLOCKS, check
from spfde_gui.model.run_model import RunModel
from tests.event_fuzz import DEEP_LINE, HOSTILE_LINES, mutated_lines, real_events


def exercise(m: RunModel) -> None:
    """Every read the studio and the report make of a model."""
    from spfde_gui.report import builder
    m.summary(), m.timing(), m.frozen_matrix(), m.planned_frozen_matrix(), m.status, m.name
    for c in m.columns():
        m.column(c)
    analysis_data.has_analysis(m)
    for kind in ("cka", "similarity_to_final", "block_mask_similarity", "mask_similarity"):
        analysis_data.heat(m, kind)
    analysis_data.grad_norms(m)
    analysis_data.freeze_marks(m, list(m.block_names))
    analysis_data.adaptive_summary(m)
    builder.render_html(m, {})


def write(tmp_path, lines):
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    return RunModel.load(tmp_path)


def test_each_hostile_line_is_skipped_and_counted(tmp_path):
    good = [json.dumps(e) for e in real_events()]
    for i, bad in enumerate(HOSTILE_LINES):
        assert check(bad) is not None, bad
        d = tmp_path / f"r{i}"
        d.mkdir()
        m = write(d, [*good[:3], json.dumps(bad), *good[3:]])
        assert m.n_skipped == 1, bad
        assert m.n_epochs == 3
        exercise(m)
        from spfde_gui.report import builder, load_run
        assert "1 line of events.jsonl skipped" in builder.render_html(load_run(d), {})
    assert m.frozen_matrix().shape[0] < MAX_BLOCKS


def test_deep_nesting_is_skipped_not_a_recursion_error(tmp_path):
    deep_field = '{"event": "epoch_end", "x": ' + "[" * 50000 + "]" * 50000 + "}"
    m = write(tmp_path, [json.dumps(real_events()[0]), DEEP_LINE, deep_field])
    assert m.n_skipped == 2 and m.run_started is not None


def test_real_events_all_pass_the_guard():
    assert [check(e) for e in real_events()] == [None] * len(real_events())


def test_random_mutations_never_crash_the_model_or_report(tmp_path):
    base = [json.dumps(e) for e in real_events()]
    lines = mutated_lines(300, seed=24)
    for i in range(0, len(lines), 30):           # 10 runs, each a real run with 30 mutated lines
        d = tmp_path / f"m{i}"
        d.mkdir()
        m = write(d, base[:1] + lines[i:i + 30] + base[1:])
        exercise(m)
        assert m.n_events + m.n_skipped >= len(base)
        assert np.all(m.frozen_matrix() <= 1)


def test_views_survive_hostile_runs(tmp_path):
    pytest.importorskip("PySide6")
    from PySide6.QtWidgets import QApplication

    from spfde_gui.views import analysis, flops, freeze, hardware, sieve, training
    from spfde_gui.views.base import RunView
    QApplication.instance() or QApplication([])
    base = [json.dumps(e) for e in real_events()]
    models = [write(tmp_path, base[:1] + mutated_lines(60, seed=7) + [json.dumps(b) for b in HOSTILE_LINES] + base[1:])]
    for mod in (analysis, flops, freeze, hardware, sieve, training):
        for cls in vars(mod).values():
            if isinstance(cls, type) and cls.__module__ == mod.__name__ and issubclass(cls, RunView) and cls is not RunView:
                view = cls()
                for m in models:
                    view.set_model(m)


def test_runs_panel_loads_a_folder_of_bad_runs_without_looping(tmp_path):
    pytest.importorskip("PySide6")
    import os

    from PySide6.QtWidgets import QApplication

    from spfde_gui.window.runs_panel import RunsPanel
    QApplication.instance() or QApplication([])
    base = [json.dumps(e) for e in real_events()]
    for i, bad in enumerate(HOSTILE_LINES):
        d = tmp_path / f"bad{i}-20260101-000000"
        d.mkdir()
        (d / "config.yaml").write_text("name: x\n")
        (d / "events.jsonl").write_text("\n".join([*base[:2], json.dumps(bad), DEEP_LINE, *base[2:]]) + "\n")
    fifo = tmp_path / "fifo-20260101-000000"
    fifo.mkdir()
    (fifo / "config.yaml").write_text("name: x\n")
    os.mkfifo(fifo / "events.jsonl")           # would hang a reader that opens it
    panel = RunsPanel(tmp_path)
    panel.rescan()
    for _ in range(400):                       # results arrive through the event loop
        panel.wait_idle(50)
        QApplication.processEvents()
        if not panel.loading():
            break
    assert not panel.loading()
    loaded = [m for p, m in panel.models.items() if p.name.startswith("bad")]
    assert len(loaded) == len(HOSTILE_LINES) and all(m.n_skipped == 2 for m in loaded)
    panel.shutdown()
