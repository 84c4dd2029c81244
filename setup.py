"""Packages and package data (the metadata is in pyproject.toml).

setup.py only because pyproject's ``packages.find`` cannot install a folder under another
name: the repository's ``assets/`` folder ships as the data package ``spfde_assets``, read
through importlib.resources (engine/assets.py), so presets, icons and the report template
are part of every wheel.
"""
from pathlib import Path

from setuptools import find_packages, setup

DATA = ["*.html", "*.yaml", "*.yml", "*.json", "*.svg", "*.png", "*.css"]
# every folder under assets/ is declared as a (data) package of its own: undeclared, each
# drew setuptools' "Package 'spfde_assets.presets' is absent from packages" warnings
ASSETS = ["spfde_assets"] + sorted("spfde_assets." + ".".join(d.relative_to("assets").parts)
                                   for d in Path("assets").rglob("*") if d.is_dir() and d.name != "__pycache__")

setup(
    packages=find_packages(include=["engine", "engine.*", "spfde_gui", "spfde_gui.*"]) + ASSETS,
    package_dir={"spfde_assets": "assets"},
    package_data={name: DATA for name in ASSETS},
)
