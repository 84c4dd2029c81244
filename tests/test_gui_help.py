"""`spfde-gui --help` names the headless subcommands."""
import pytest


def test_gui_help_lists_the_subcommands(capsys):
    from spfde_gui.__main__ import _parser
    with pytest.raises(SystemExit):
        _parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "report RUN_DIR" in out and "export --tensorboard" in out


def test_the_help_menu_opens_every_listed_guide_and_about(qtbot, tmp_path):
    """Each guide entry points at a docs/ file that exists; a tree without docs/ gets one
    disabled line instead of dead entries."""
    from pathlib import Path

    from PySide6.QtWidgets import QMainWindow

    from spfde_gui.window import help_menu
    w = QMainWindow()
    qtbot.addWidget(w)
    help_menu.install(w)
    menu = [a for a in w.menuBar().actions() if a.text() == "&Help"][0].menu()
    texts = [a.text() for a in menu.actions() if a.text()]
    assert texts[0] == "Using the studio" and texts[-1] == "About SpFDE Studio"
    for text, name in help_menu.GUIDES:
        assert text in texts and (help_menu.DOCS_DIR / name).is_file(), name
    bare = QMainWindow()
    qtbot.addWidget(bare)
    help_menu.install(bare, docs=Path(tmp_path))
    menu = [a for a in bare.menuBar().actions() if a.text() == "&Help"][0].menu()
    first = menu.actions()[0]
    assert "docs/ folder" in first.text() and not first.isEnabled()
