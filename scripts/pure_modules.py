"""The pure (no torch, no Qt) packages and modules, as pyproject.toml's import-linter
contract names them: the one list that the contract, mypy (``make lint``) and
tests/test_layering.py share.

    python scripts/pure_modules.py            # dotted names, one per line
    python scripts/pure_modules.py --paths    # their files and folders (for mypy)
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:          # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = "The shared pure modules import neither torch nor Qt"


def pure_names(root: Path = ROOT) -> list[str]:
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    for contract in data["tool"]["importlinter"]["contracts"]:
        if contract["name"] == CONTRACT:
            return list(contract["source_modules"])
    raise SystemExit(f"pyproject.toml: no import-linter contract named {CONTRACT!r}")


def path_of(name: str, root: Path = ROOT) -> Path:
    """The package folder or the module file of a dotted name."""
    p = root / name.replace(".", "/")
    return p if p.is_dir() else p.with_suffix(".py")


def modules_of(name: str, root: Path = ROOT) -> list[str]:
    """A module's name, or every module of a package (its files, present and future)."""
    p = path_of(name, root)
    if not p.is_dir():
        return [name]
    return sorted(".".join(f.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
                  for f in p.rglob("*.py"))


if __name__ == "__main__":
    names = pure_names()
    print("\n".join(str(path_of(n).relative_to(ROOT)) for n in names) if "--paths" in sys.argv[1:]
          else "\n".join(names))
