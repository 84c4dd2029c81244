"""Where the bundled assets are (presets, icons, the report template, sweeps): one answer
for the engine, the studio and the report.

A wheel installs the repository's ``assets/`` folder as the data-only package
``spfde_assets`` (setup.py), found with importlib.resources; a source checkout (tests,
``PYTHONPATH=.``, an editable install) uses its own ``assets/`` folder, so a working tree
always reads the assets it holds. Pure Python.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

PACKAGE = "spfde_assets"
_CHECKOUT = Path(__file__).resolve().parent.parent   # a source tree holds pyproject.toml here


def root() -> Path:
    """The assets folder."""
    here = _CHECKOUT / "assets"
    if here.is_dir() and (_CHECKOUT / "pyproject.toml").is_file():
        return here
    try:
        found = resources.files(PACKAGE)
    except ModuleNotFoundError:
        raise FileNotFoundError(f"the SpFDE assets are missing: no {here} and no installed {PACKAGE} "
                                f"package (reinstall spfde-studio)") from None
    return Path(str(found))          # a regular package of a wheel: a real folder


def path(*parts: str) -> Path:
    """A file or folder inside the assets: ``path("presets", "demo.yaml")``."""
    return root().joinpath(*parts)
