"""The built wheel is complete: installed into a fresh virtual environment, with the source
tree NOT importable, it plans the demo preset, trains two epochs of it and writes the report
(presets, the report template and the icon ship as package data: engine/assets.py)."""
from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("engine", "spfde_gui", "assets", "pyproject.toml", "setup.py", "README.md")

pytestmark = pytest.mark.slow


def _run(cmd, cwd, env, timeout=600):
    out = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{cmd}\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
    return out.stdout


def test_wheel_installs_and_runs_from_anywhere(tmp_path):
    # Build from a copy: the build must not leave build/ or egg-info in the working tree.
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(p, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", QT_QPA_PLATFORM="offscreen")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", tmp_path / "dist", src], cwd=tmp_path, env=env)
    wheel = next((tmp_path / "dist").glob("spfde_studio-*.whl"))

    # A fresh environment holding only the wheel; the dependencies (torch, Qt, ...) come from
    # this interpreter's site-packages through a .pth line (no download), which processes no
    # .pth of its own, so an editable install of a checkout there stays invisible.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path, env=env)
    py = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index", wheel],
         cwd=tmp_path, env=env)
    purelib = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        cwd=tmp_path, env=env).strip())
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (purelib / "zz_spfde_test_deps.pth").write_text("\n".join(deps) + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run([py, "-c", "import engine, spfde_gui, spfde_assets; "
                  "print(engine.__file__); print(spfde_gui.__file__); print(spfde_assets.__file__)"],
                 cwd=elsewhere, env=env)
    for line in where.split():
        assert Path(line).is_relative_to(venv), f"imported from outside the wheel install: {line}"

    bin_ = venv / "bin"
    plan = _run([bin_ / "spfde-train", "plan", "--preset", "demo"], cwd=elsewhere, env=env)
    assert "model resnet20" in plan and "freeze plan" in plan
    # the shipped sweeps and searches are found by name from the wheel's assets
    sweep = _run([bin_ / "spfde-train", "sweep", "demo_grid", "--plan"], cwd=elsewhere, env=env)
    assert "sweep demo-grid: 8 cells" in sweep
    search = _run([bin_ / "spfde-train", "search", "demo_budget", "--plan"], cwd=elsewhere, env=env)
    assert "plain-MEST reference trial" in search

    runs = elsewhere / "runs"
    _run([bin_ / "spfde-train", "run", "--preset", "demo", "--run-dir", runs, "--set", "epochs=2",
          "--set", "interval=1", "--set", "freeze.target=0.03", "--set", "data.train_size=256",
          "--set", "data.test_size=64", "--set", "checkpoint.every=0", "--set", "threads=1"],
         cwd=elsewhere, env=env)
    run_dir = next(runs.iterdir())
    out = _run([bin_ / "spfde-gui", "report", run_dir, "--out", elsewhere / "report", "--formats", "html,json"],
               cwd=elsewhere, env=env)
    html = (elsewhere / "report" / "report.html").read_text(encoding="utf-8")
    assert "html" in out and "<html" in html.lower() and "demo" in html
    assert not (ROOT / "build").exists() or (ROOT / "build").stat().st_mtime < wheel.stat().st_mtime
