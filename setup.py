"""Packages and package data (the metadata is in pyproject.toml).

setup.py only because pyproject's ``packages.find`` cannot install a folder under another
name: the repository's ``assets/`` folder ships as the data package ``spfde_assets``, read
through importlib.resources (engine/assets.py), so presets, icons and the report template
are part of every wheel.
"""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["engine", "engine.*", "spfde_gui", "spfde_gui.*"]) + ["spfde_assets"],
    package_dir={"spfde_assets": "assets"},
    package_data={"spfde_assets": ["*.html", "**/*.yaml", "**/*.yml", "**/*.json", "**/*.svg", "**/*.png",
                                   "**/*.html", "**/*.css"]},
)
