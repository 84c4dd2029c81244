"""The layering rules, checked: the GUI never loads torch, the engine never loads Qt, and the
shared pure-Python modules load neither (so the GUI starts fast and `plan` needs no torch)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from pure_modules import modules_of, path_of, pure_names  # noqa: E402  (the list lives in pyproject.toml)

PURE_NAMES = pure_names()
PURE = sorted({m for name in PURE_NAMES for m in modules_of(name)})


def _loaded_after(imports: list[str]) -> set[str]:
    code = ("import sys\n" + "".join(f"import {m}\n" for m in imports)
            + "print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


@pytest.mark.parametrize("name", PURE_NAMES)
def test_pure_list_names_real_modules(name):
    assert path_of(name).exists(), f"pyproject's pure list names {name}, which does not exist"


def test_pure_modules_import_neither_torch_nor_qt():
    # one interpreter for all of them (each alone only when that fails, to name the culprit)
    loaded = _loaded_after(PURE)
    if "torch" in loaded or {"PySide6", "pyqtgraph"} & loaded:
        culprits = [m for m in PURE if {"torch", "PySide6", "pyqtgraph"} & _loaded_after([m])]
        pytest.fail(f"pure modules that load torch or Qt: {culprits}")
    assert len(PURE) >= len(PURE_NAMES)


def test_gui_never_imports_torch():
    mods = ["spfde_gui"] + sorted(
        "spfde_gui." + ".".join(p.relative_to(ROOT / "spfde_gui").with_suffix("").parts)
        for p in (ROOT / "spfde_gui").rglob("*.py") if p.name != "__init__.py")
    loaded = _loaded_after([m for m in mods if not m.endswith("__main__")])
    assert "torch" not in loaded


def test_engine_sources_never_import_qt():
    for p in (ROOT / "engine").rglob("*.py"):
        text = p.read_text(encoding="utf-8")
        for bad in ("import PySide6", "from PySide6", "import pyqtgraph", "from pyqtgraph"):
            assert bad not in text, f"{p} imports Qt ({bad})"


def test_cli_loads_torch_only_when_training():
    # `plan`, `validate` and the thread policy run before torch loads: importing the CLI (and
    # the launcher that decides on torchrun) must not load it, or OMP_WAIT_POLICY comes too late
    loaded = _loaded_after(["engine.cli", "engine.training.launcher"])
    assert "torch" not in loaded
