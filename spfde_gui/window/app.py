"""Application set-up: the QApplication, its style, and the window opened as the CLI asked."""
from __future__ import annotations

import sys

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from engine import assets
from engine.sweep.manifest import is_sweep_dir
from spfde_gui.search.report import is_search_dir
from spfde_gui.window.main_window import MainWindow

ICON = assets.path("icons", "spfde.svg")
STYLE = """
QMainWindow, QWidget { font-size: 12px; }
QGroupBox { font-weight: bold; border: 1px solid #d6d9de; border-radius: 5px; margin-top: 10px; padding-top: 6px; }
QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 4px; color: #2b4a7a; }
QTabBar::tab { padding: 5px 12px; }
QTabBar::tab:selected { font-weight: bold; }
QToolBar { spacing: 4px; padding: 2px; }
QPushButton#launch { background: #2b6cb0; color: white; border-radius: 4px; }
QPushButton#launch:disabled { background: #9db5d3; }
"""


def make_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("SpFDE Studio")
    app.setOrganizationName("SpFDE")
    if ICON.is_file():
        app.setWindowIcon(QIcon(str(ICON)))
    app.setStyleSheet(STYLE)
    return app


def build_window(preset: str | None = None, config: str | None = None, open_run: str | None = None,
                 runs_dir: str | None = None):
    win = MainWindow(runs_dir=runs_dir)
    if preset:
        win.form.load_preset(preset)
        if runs_dir:
            win.form.set_field("run_dir", runs_dir)
    if config:
        win.form.load_file(config)
        if runs_dir:
            win.form.set_field("run_dir", runs_dir)
    if open_run:
        if is_search_dir(open_run):      # a budget search: its trials, figures and advice
            win.search.open_folder(open_run)
            win.tabs.setCurrentWidget(win.search)
        elif is_sweep_dir(open_run):       # a sweep folder: its results table, not an empty run
            win.sweep_results.set_sweep(open_run)
            win.tabs.setCurrentWidget(win.sweep_results)
        else:
            win.open_run(open_run)
            win.tabs.setCurrentIndex(0)
    return win


def run(preset=None, config=None, open_run=None, runs_dir=None) -> int:
    app = make_app()
    win = build_window(preset, config, open_run, runs_dir)
    win.show()
    return app.exec()
