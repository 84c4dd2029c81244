"""Wall-time estimates from measured speed (engine.cost.wall_time): what a run records, what
plan and the studio then say, and an honest 'unknown' before any measurement."""
from __future__ import annotations

import io
import json

import pytest

from engine import cli
from engine.config import from_dict
from engine.cost import wall_time
from engine.cost.projection import project

TINY = {"name": "wt", "seed": 1, "device": "cpu", "epochs": 2, "batch_size": 32, "interval": 1,
        "model": {"name": "resnet20", "width": 0.25},
        "data": {"name": "synthetic", "image_size": 12, "train_size": 96, "test_size": 32, "num_classes": 4,
                 "augment": False},
        "sparsity": {"target": 0.8}, "sieve": {"ratio": 0.25}}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("SPFDE_CACHE_DIR", str(d))
    return d / wall_time.CACHE_FILE


def test_executed_flops_count_masked_layers_densely_and_what_freezing_and_sieving_skip():
    # dense 100, sparsity saves 90 (the sparse run is 10, a 10x scale), sieving 2, freezing 1
    f = {"spent": 7.5, "dense": 100.0, "saved": {"sparsity": 90.0, "sieve": 2.0, "freeze": 1.0},
         "overhead": {"analysis": 0.5}}
    assert wall_time.executed_flops(f) == pytest.approx(100 - 10 * 3 + 10 * 0.5)
    assert wall_time.executed_flops({"spent": 5.0}) == 5.0          # no dense figure: the spent


def test_no_measurement_is_unknown_with_the_reason(cache):
    cfg = from_dict(TINY)
    est = wall_time.estimate(cfg, project(cfg))
    assert est["seconds"] is None and "--calibrate" in est["why"]
    assert wall_time.describe(est).startswith("wall time: unknown")


def test_a_recorded_rate_gives_the_estimate_and_a_corrupt_cache_is_ignored(cache):
    cfg = from_dict(TINY)
    plan = project(cfg)
    wall_time.record(cfg, "cpu", 2e9, "test")
    est = wall_time.estimate(cfg, plan)
    assert est["seconds"] == pytest.approx(wall_time.STARTUP_S + wall_time.executed_flops(plan["flops"]) / 2e9)
    assert est["sieve_saves_s"] > 0 and est["freeze_saves_s"] == 0
    # another batch size is another key: unknown
    assert wall_time.lookup(cfg.replace(batch_size=64)) is None
    cache.write_text("{not json")
    assert wall_time.lookup(cfg) is None
    cache.write_text(json.dumps({wall_time.key(cfg, "cpu"): {"flops_per_s": -1}}))   # nonsense rate
    assert wall_time.lookup(cfg) is None


def test_a_run_records_its_speed_and_plan_then_prints_a_wall_time(cache, tmp_path, capsys):
    from engine.run.telemetry import Emitter
    from engine.training.trainer import Trainer
    cfg = from_dict(TINY)
    d = tmp_path / "run"
    d.mkdir()
    out = io.StringIO()
    assert Trainer(cfg, d, Emitter(d, stream=out, progress_bar=False)).fit() == "completed"
    hit = wall_time.lookup(cfg)
    assert hit and hit["flops_per_s"] > 0 and "run run" in hit["source"]
    # the rate is the run's executed FLOPs over its wall-clock time from the first epoch's
    # start, which holds at least the epochs' training and evaluation times
    ends = [json.loads(line) for line in out.getvalue().splitlines()]
    ends = [e for e in ends if e["event"] == "epoch_end"]
    flops = sum(wall_time.executed_flops(e["flops_epoch"]) for e in ends)
    secs = sum(e["epoch_time"] + e["eval_time"] for e in ends)
    assert 0 < hit["flops_per_s"] <= flops / secs
    f = tmp_path / "wt.yaml"
    f.write_text(json.dumps(TINY))
    assert cli.main(["plan", "--config", str(f)]) == 0
    assert "wall time: about" in capsys.readouterr().out


def test_calibration_that_fails_leaves_the_estimate_unknown(cache, tmp_path, capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    f = tmp_path / "gpu.yaml"
    f.write_text(json.dumps({**TINY, "device": "cuda"}))
    assert cli.main(["plan", "--config", str(f), "--calibrate"]) == 0
    assert "wall time: unknown" in capsys.readouterr().out


def test_calibration_measures_and_records(cache, tmp_path, capsys):
    f = tmp_path / "wt.yaml"
    f.write_text(json.dumps(TINY))
    assert cli.main(["plan", "--config", str(f), "--calibrate", "--json"]) == 0
    est = json.loads(capsys.readouterr().out)["wall_time"]
    assert est["seconds"] > est["startup_s"] > 0 and "calibration" in est["source"]


def test_a_measured_start_up_is_kept_by_a_later_calibration(cache):
    cfg = from_dict(TINY)
    wall_time.record(cfg, "cpu", 1e9, "run", startup_s=12.5)
    wall_time.record(cfg, "cpu", 2e9, "calibration")
    hit = wall_time.lookup(cfg)
    assert hit["flops_per_s"] == 2e9 and hit["startup_s"] == 12.5
    assert wall_time.estimate(cfg, project(cfg))["startup_s"] == 12.5


def test_durations_read_as_a_person_would():
    assert wall_time.duration(None) == "unknown" and wall_time.duration(42.4) == "42 s"
    assert wall_time.duration(125) == "2 min 05 s" and wall_time.duration(7260) == "2 h 01 min"


def test_sweep_plan_uses_the_machines_rate_and_start_up(cache, tmp_path, capsys):
    import yaml

    from engine.sweep import cells as cells_mod
    from engine.sweep import spec as spec_mod
    sweep = tmp_path / "s.yaml"
    over = {**{k: v for k, v in TINY.items() if k not in ("name", "seed")}, "freeze": {"target": 0}}
    sweep.write_text(yaml.safe_dump({"name": "s", "base": {"preset": "demo"}, "overrides": over, "seeds": 1,
                                     "axes": {"sparsity.target": [0.5, 0.8]}, "sweep_dir": str(tmp_path / "sweeps")}))
    assert cli.main(["sweep", str(sweep), "--plan"]) == 0
    assert f"{cells_mod.CELL_OVERHEAD_S:.3g} s start-up per cell" in capsys.readouterr().out   # nothing measured
    cells = cells_mod.build(spec_mod.load(sweep))
    wall_time.record(from_dict(cells[0].config), "cpu", 1e9, "a run", startup_s=12.5)
    assert cli.main(["sweep", str(sweep), "--plan"]) == 0
    out = capsys.readouterr().out
    assert "at 1e+09 executed FLOPs/s" in out and "12.5 s start-up per cell" in out
    total = sum(12.5 + cells_mod.executed_flops(c.projected) / 1e9 for c in cells)
    assert f"estimated total: {cells_mod._duration(total)} " in out
