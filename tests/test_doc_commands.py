"""Every `spfde-train` command the README and docs/ show runs as written.

validate/plan/sweep --plan run in-process (milliseconds: no torch, no training); a `run` is
checked by the projection it starts with (what refused the README's shortened demo before),
and the README's own demo command is trained once, shrunk by `--set` to a few hundred samples.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from engine import cli
from tests.doc_commands import ROOT, commands

CMDS = commands()


def test_the_docs_show_commands():
    kinds = {argv[0] for _, _, argv in CMDS}
    assert {"validate", "plan", "run", "sweep"} <= kinds, CMDS


def _without_executor(args: list[str]) -> list[str]:
    """A run's arguments less where it runs (--executor, --slurm*): plan has none of them."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("--executor", "--slurm", "--slurm-config"):
            skip = True
            continue
        if not a.startswith(("--executor=", "--slurm=", "--slurm-config=")):
            out.append(a)
    return out


def _checked(argv: list[str]) -> list[str]:
    """The command as the test runs it: a run is planned (the CIFAR data need not be here;
    a run on Slurm is planned the same way), a sweep is only planned."""
    if argv[0] == "run":
        return ["plan", *_without_executor(argv[1:])]
    if argv[0] == "sweep" and "--plan" not in argv:
        return [*argv, "--plan"]
    return argv


@pytest.mark.parametrize("where,line,argv", CMDS, ids=[f"{f}:{n}" for f, n, _ in CMDS])
def test_doc_command_runs_as_written(where, line, argv, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    rc = cli.main(_checked(argv))
    err = capsys.readouterr().err
    assert rc == 0, f"{where}:{line}: spfde-train {' '.join(argv)} -> exit {rc}\n{err}"


def test_unreachable_target_prints_the_fixing_set(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    rc = cli.main(["validate", "--config", "assets/presets/demo.yaml", "--set", "sieve.ratio=0.1",
                   "--set", "epochs=10"])
    err = capsys.readouterr().err
    assert rc == 2
    hint = next(line for line in err.splitlines() if line.startswith("hint: rerun with"))
    sets = hint.split("rerun with ", 1)[1].split()
    assert sets[:1] == ["--set"] and sets[1].startswith("freeze.target=")
    # the suggested target is accepted, and is the reachable maximum rounded down
    assert float(sets[1].split("=")[1]) == pytest.approx(0.136)
    assert cli.main(["validate", "--config", "assets/presets/demo.yaml", "--set", "sieve.ratio=0.1",
                     "--set", "epochs=10", *sets]) == 0


@pytest.mark.parametrize("model,fixes", [
    ("timm:resnet18", ["model.width=1", "analysis.enabled=false"]),
    # the width is judged from the name; that the factory runs as a whole, once it is measured
    ("py:toy_models:small_convnet", ["model.width=1", "analysis.enabled=false"]),
])
def test_a_preset_given_another_kind_of_model_is_fixed_by_the_sets_it_prints(model, fixes, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT / "tests"))       # validate imports a py: model's module
    argv = ["validate", "--preset", "demo", "--set", f"model.name={model}"]
    taken: list[str] = []
    for _ in range(3):                                      # follow each hint, as a user would
        rc = cli.main(argv)
        err = capsys.readouterr().err
        if rc == 0:
            break
        assert rc == 2
        hint = next(line for line in err.splitlines() if line.startswith("hint: rerun with"))
        sets = hint.split("rerun with ", 1)[1].split()
        assert sets[0::2] == ["--set"] * (len(sets) // 2)
        taken += sets[1::2]
        argv += sets
    assert rc == 0 and taken == fixes


def test_no_fix_is_suggested_for_what_has_no_single_answer():
    from engine import config as C
    with pytest.raises(C.ConfigError) as exc:        # a built-in's width out of range: the user's call
        C.from_dict({"model": {"width": -1}})
    assert exc.value.suggestions == {}
    with pytest.raises(C.ConfigError) as exc:        # a bad model name: nothing else is judged
        C.from_dict({"model": {"name": "timm:", "width": 0.5}})
    assert exc.value.suggestions == {}


@pytest.mark.slow
def test_readme_demo_run_trains_when_shrunk(tmp_path):
    where, line, argv = next(c for c in CMDS if c[0] == "README.md" and c[2][0] == "run")
    shrink = ["--set", "data.train_size=320", "--set", "data.test_size=64",
              "--set", "analysis.enabled=false", "--set", f"run_dir={tmp_path}"]
    p = subprocess.run([sys.executable, "-m", "engine.cli", *argv, *shrink], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"{where}:{line}\n{p.stderr[-2000:]}"
    events = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    assert events[-1]["event"] == "run_finished", events[-1]
