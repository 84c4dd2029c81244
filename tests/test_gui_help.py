"""`spfde-gui --help` names the headless subcommands."""
import pytest


def test_gui_help_lists_the_subcommands(capsys):
    from spfde_gui.__main__ import _parser
    with pytest.raises(SystemExit):
        _parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "report RUN_DIR" in out and "export --tensorboard" in out
