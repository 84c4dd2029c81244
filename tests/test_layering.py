"""The layering rules, checked: the GUI never loads torch, the engine never loads Qt, and the
shared pure-Python modules load neither (so the GUI starts fast and `plan` needs no torch)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE = ["engine.config", "engine.run.events", "engine.cost.arch", "engine.cost.costmodel", "engine.cost.projection",
        "engine.sparsity.schedule", "engine.freezing.schedule", "engine.data.sizes", "engine.data.sources",
        "engine.cost.preflight", "engine.run.lock", "engine.run.folder", "engine.data.checks",
        "engine.sparsity.methods",
        "engine.sweep.spec", "engine.sweep.cells", "engine.sweep.manifest", "engine.sweep.state",
        "engine.sweep.results", "engine.sweep.export", "engine.sweep.runner", "engine.sweep.cli",
        "engine.run.payloads", "engine.training.threads", "engine.assets", "engine.analysis.schedule", "engine.analysis.adaptive"]


def _loaded_after(imports: list[str]) -> set[str]:
    code = ("import sys\n" + "".join(f"import {m}\n" for m in imports)
            + "print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_import_neither_torch_nor_qt(module):
    path = ROOT / module.replace(".", "/")
    assert path.with_suffix(".py").exists() or (path / "__init__.py").exists(), f"{module} is gone"
    loaded = _loaded_after([module])
    assert "torch" not in loaded, f"{module} pulled in torch"
    assert not {"PySide6", "pyqtgraph"} & loaded, f"{module} pulled in Qt"


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
