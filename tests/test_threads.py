"""The CPU thread policy (engine.training.threads): the ``threads`` field, the environment it sets
before torch loads, and the CLI applying it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from engine import config as C
from engine.training import threads

ROOT = Path(__file__).resolve().parent.parent
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def test_auto_uses_every_usable_core_and_passive_waiting():
    n = threads.usable_cores()
    assert threads.environment("auto", {}) == {"OMP_NUM_THREADS": str(n), "MKL_NUM_THREADS": str(n),
                                               "OMP_WAIT_POLICY": "PASSIVE"}


def test_exported_settings_win_over_auto_but_not_over_a_count():
    env = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "ACTIVE"}
    assert threads.environment("auto", env) == {}
    assert threads.environment("3", env) == {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3"}
    assert threads.environment(2, {"GOMP_SPINCOUNT": "1000"}) == {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    with pytest.raises(ValueError, match="threads"):
        threads.environment("0", {})


def test_threads_field_accepts_auto_or_a_count():
    assert C.from_dict({}).threads == "auto"
    assert C.from_dict({"threads": 4}).threads == "4"            # YAML's 4 is the count "4"
    assert C.load_preset("demo", ["threads=2"]).threads == "2"
    for bad in (0, -1, 1.5, "many", "", True, 10_000):
        with pytest.raises(C.ConfigError) as exc:
            C.from_dict({"threads": bad})
        assert [f for f, _ in exc.value.errors] == ["threads"], bad


@pytest.mark.slow
def test_cli_applies_the_setting_before_torch_loads(tmp_path):
    cfg = {"name": "thr", "device": "cpu", "epochs": 1, "batch_size": 16, "interval": 1, "threads": 1,
           "model": {"name": "resnet20", "width": 0.25},
           "data": {"name": "synthetic", "image_size": 8, "train_size": 32, "test_size": 16, "num_classes": 4},
           "sparsity": {"target": 0.5}, "freeze": {"target": 0.0}, "sieve": {"ratio": 0.0},
           "checkpoint": {"every": 0}}
    path = tmp_path / "thr.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    code = ("import os, sys; from engine.cli import main; rc = main(sys.argv[1:]); "
            "print('ENV', os.environ.get('OMP_NUM_THREADS'), os.environ.get('OMP_WAIT_POLICY'), file=sys.stderr); "
            "sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code, "run", "--config", str(path), "--run-dir", str(tmp_path / "runs")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    started = next(json.loads(l) for l in out.stdout.splitlines() if '"run_started"' in l)
    assert started["device_name"].endswith("1 threads)"), started["device_name"]   # torch saw it
    assert "ENV 1 PASSIVE" in out.stderr
