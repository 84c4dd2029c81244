"""Malformed input that used to end in a traceback: exit 2 with a message, nothing left behind."""
from __future__ import annotations

import pytest

from engine import cli
from engine.run import folder


def test_cuda_without_a_gpu_is_refused_before_any_run_folder(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    runs = tmp_path / "runs"
    rc = cli.main(["run", "--preset", "demo", "--set", "device=cuda", "--run-dir", str(runs)])
    assert rc == 2
    assert "device" in capsys.readouterr().err
    assert not runs.exists() or list(runs.iterdir()) == []


def test_nul_in_run_dir_is_a_run_dir_error(tmp_path):
    class Cfg:
        name = "x"
        run_dir = str(tmp_path / "a\0b")
    with pytest.raises(folder.RunDirError, match="NUL"):
        folder.create(Cfg())


@pytest.mark.parametrize("where", ["set", "file"])
def test_an_integer_over_4300_digits_is_exit_2_naming_the_field(where, tmp_path, capsys):
    huge = "9" * 5000
    if where == "set":
        argv = ["validate", "--preset", "demo", "--set", f"epochs={huge}"]
    else:
        f = tmp_path / "big.yaml"
        f.write_text(f"epochs: {huge}\n", encoding="utf-8")
        argv = ["validate", "--config", str(f)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "4300 digits" in err and ("epochs" in err or "big.yaml" in err)
    assert huge not in err                               # the value is cut in the message
