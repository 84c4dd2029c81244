"""Fixtures shared by the studio's test modules."""
from __future__ import annotations

import pytest


@pytest.fixture
def studio(qtbot, tmp_path):
    """A shown MainWindow on an empty runs folder that never asks on close and leaves no
    engine behind (the window fixtures of the studio tests build on it)."""
    from spfde_gui.window.main_window import MainWindow
    w = MainWindow(runs_dir=tmp_path / "runs")
    w.close_policy = "kill"       # never a modal question, never an orphan engine
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    yield w
    if w.controller.is_running():
        w.controller.kill()
        w.controller.wait_finished(5000)
    w.close()
