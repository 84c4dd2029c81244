"""validate warns about interval 1 with sieving (no forgetting event can be recorded), and the
shipped demo_grid sweep no longer uses it."""
from pathlib import Path

import yaml

from engine import cli
from engine.config import load_preset
from engine.config.advice import config_warnings

ROOT = Path(__file__).resolve().parent.parent


def test_interval_one_with_sieving_is_warned():
    assert any("forgetting" in w for w in config_warnings(load_preset("demo", ["interval=1"])))
    assert config_warnings(load_preset("demo")) == []
    assert config_warnings(load_preset("demo", ["interval=1", "sieve.ratio=0"])) == []


def test_validate_prints_the_warning(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert cli.main(["validate", "--preset", "demo", "--set", "interval=1", "--set", "epochs=28"]) == 0
    assert "warning: interval: 1 with sieving" in capsys.readouterr().err


def test_demo_grid_does_not_use_interval_one():
    spec = yaml.safe_load((ROOT / "assets/sweeps/demo_grid.yaml").read_text())
    assert (spec.get("overrides") or {}).get("interval", 2) >= 2

