"""Data only: installed as the ``spfde_assets`` package (see setup.py and engine/assets.py)."""
