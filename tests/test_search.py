"""The search file and cost-exact feasibility (pure, fast)."""
import pytest
import yaml

from engine.search import feasibility
from engine.search import spec as spec_mod
from engine.search.spec import SearchError

BASE = {"name": "t", "base": {"preset": "demo"}, "overrides": {"epochs": 2, "freeze": {"target": 0}},
        "space": {"sparsity.target": [0.5, 0.95], "sieve.ratio": [0, 0.5]}, "budget": {"fraction": 0.3}}


def parse(**kw):
    d = dict(BASE)
    d.update(kw)
    return spec_mod.parse(d)


def test_space_outside_range_names_field():
    with pytest.raises(SearchError, match="space.sparsity.target"):
        parse(space={"sparsity.target": [0.5, 1.5]})


def test_unknown_objective_named():
    with pytest.raises(SearchError, match="objective"):
        parse(objective={"maximize": "speed"})


def test_budget_below_cheapest_point_refused():
    s = parse(budget={"flops": 1.0})
    with pytest.raises(SearchError, match="budget.flops"):
        feasibility.check_budget(s)


def test_over_budget_point_infeasible_with_reason():
    s = parse()
    r = feasibility.cost_range(s)
    assert r["min"] < r["max"]
    v = feasibility.judge(s, {"sparsity.target": 0.5, "sieve.ratio": 0.0})
    assert not v.feasible and v.reason.startswith("over budget")
    assert v.projected["flops_spent"] > r["budget"]
    ok = feasibility.judge(s, r["cheapest"])
    assert ok.feasible and ok.projected["flops_spent"] <= r["budget"]


def test_bad_storage_url_masks_password(tmp_path):
    pytest.importorskip("optuna")
    from engine.search import study
    s = parse(storage="postgresql://u:secret@127.0.0.1:1/db")
    with pytest.raises(SearchError) as e:
        study.storage_for(s, tmp_path)
    assert "secret" not in str(e.value) and "127.0.0.1" in str(e.value)


def test_folder_of_another_search_refused(tmp_path):
    pytest.importorskip("optuna")
    from engine.search import study
    study.folder_for(parse(), tmp_path)
    with pytest.raises(SearchError, match="allow-change"):
        study.folder_for(parse(budget={"fraction": 0.5}), tmp_path)
    study.folder_for(parse(budget={"fraction": 0.5}), tmp_path, allow_change=True)


@pytest.mark.parametrize("name", sorted(p.stem for p in spec_mod.SEARCHES_DIR.glob("*.yaml")))
def test_shipped_searches_plan(name, capsys):
    from engine import cli
    assert name in ("demo_budget", "cifar100_half_mest") or name     # every shipped file is listed here
    s = spec_mod.load(spec_mod.SEARCHES_DIR / f"{name}.yaml")
    assert feasibility.check_budget(s)["budget"] > 0
    assert cli.main(["search", name, "--plan"]) == 0
    out = capsys.readouterr().out
    assert "plain-MEST reference trial" in out and "none:" not in out


def test_half_of_mest_budget_is_half_the_mest_presets_planned_flops():
    from engine import config as config_mod
    from engine.cost import projection
    s = spec_mod.load(spec_mod.SEARCHES_DIR / "cifar100_half_mest.yaml")
    mest = projection.project(config_mod.load_preset("cifar100_resnet32x2_mest"))["flops"]["spent"]
    assert feasibility.budget_flops(s, 1.0) == pytest.approx(0.5 * mest)


def test_budget_of_unknown_preset_named():
    with pytest.raises(SearchError, match="budget.of"):
        parse(budget={"fraction": 0.5, "of": "no_such_preset"})


def test_plain_mest_point_is_the_least_sparsity_within_the_budget():
    s = parse(space={"sparsity.target": [0.5, 0.95], "sieve.ratio": [0, 0.5]}, budget={"fraction": 0.3})
    p, why = feasibility.plain_mest_point(s)
    assert why == "" and p["sieve.ratio"] == 0
    assert feasibility.judge(s, p).feasible
    assert not feasibility.judge(s, {**p, "sparsity.target": p["sparsity.target"] - 0.002}).feasible
    none, why = feasibility.plain_mest_point(parse(space={"sparsity.target": [0.5, 0.6], "sieve.ratio": [0.1, 0.5]}))
    assert none is None and "sieve.ratio" in why


def test_gpu_hours_budget_needs_a_gpu_speed(tmp_path, monkeypatch):
    from engine import config as config_mod
    from engine.cost import wall_time
    monkeypatch.setenv("SPFDE_CACHE_DIR", str(tmp_path / "cache"))      # this machine measured nothing yet
    with pytest.raises(SearchError, match="budget.speed.*no GPU speed measured"):
        feasibility.check_budget(parse(budget={"gpu_hours": 1}))
    cpu_run = tmp_path / "run"
    cpu_run.mkdir()
    (cpu_run / "events.jsonl").write_text('{"event": "run_started", "device": "cpu"}\n')
    s = parse(budget={"gpu_hours": 1, "speed": str(cpu_run)})
    with pytest.raises(SearchError, match="budget.speed.*not a GPU"):
        feasibility.check_budget(s)
    gpu_run = tmp_path / "gpu"
    gpu_run.mkdir()
    (gpu_run / "events.jsonl").write_text(
        '{"event": "run_started", "device": "cuda:0"}\n'
        '{"event": "run_finished", "status": "completed", "wall_time": 100.0, '
        '"flops": {"spent": 1e13, "dense": 1e13, "saved": {}}}\n')
    s = parse(budget={"gpu_hours": 1, "speed": str(gpu_run)})
    rate, where = feasibility.measured_speed(s)
    assert rate["flops_per_s"] == pytest.approx(1e11) and "cuda:0" in where
    r = feasibility.check_budget(s)
    assert r["unit"] == "GPU-hours" and r["budget"] == 1.0
    # the estimate is the executed FLOPs at the measured speed plus the start-up
    v = feasibility.judge(s, r["cheapest"])
    executed = wall_time.executed_flops({"spent": v.projected["flops_spent"], "dense": v.projected["flops_dense"],
                                         "saved": v.projected["flops_saved"],
                                         "overhead": v.projected["flops_overhead"]})
    assert feasibility.cost(s, v.projected) == pytest.approx((wall_time.STARTUP_S + executed / 1e11) / 3600)
    tight = parse(budget={"gpu_hours": r["min"] * 0.5, "speed": 1e11})
    with pytest.raises(SearchError, match="budget.gpu_hours"):
        feasibility.check_budget(tight)
    # without speed: the GPU rate (and start-up) this machine measured for the base model
    s = parse(budget={"gpu_hours": 1})
    wall_time.record(config_mod.from_dict(dict(s.base)), "cuda", 2e11, "a test run", startup_s=3.0)
    rate, where = feasibility.measured_speed(s)
    assert rate["flops_per_s"] == 2e11 and "this machine's GPU" in where
    assert feasibility.cost(s, v.projected) == pytest.approx((3.0 + executed / 2e11) / 3600)


def test_advice_splits_flops_and_compares_with_plain_mest():
    from engine.search import advice
    def row(n, acc, freeze, sieve, spent, ref=False, seeds=None):
        return {"trial": n, "state": "complete", "test_acc": acc, "test_acc_seeds": seeds or [acc],
                "params": {"freeze.target": freeze, "sieve.ratio": sieve}, "reference": ref, "flops": spent,
                "flops_dense": 100.0, "flops_saved": {"sparsity": 60.0, "freeze": 5.0, "sieve": 100 - 65 - spent},
                "measured": None}
    rows = [row(0, 0.60, 0, 0, 30.0, ref=True), row(1, 0.70, 0.2, 0.2, 20.0, seeds=[0.68, 0.72]),
            row(2, 0.65, 0, 0, 25.0), {"trial": 3, "state": "infeasible", "test_acc": None}]
    a = advice.advice(rows)
    assert a["best"]["trial"] == 1 and a["mean"] == pytest.approx(0.70) and a["std"] == pytest.approx(0.02828, 1e-3)
    assert a["mest"]["trial"] == 0                      # the reference trial, not the better plain one
    assert a["gap_points"] == pytest.approx(10.0) and a["flops_ratio"] == pytest.approx(20 / 30)
    assert a["split"]["saved"] == {"sparsity": 60.0, "freezing": 5.0, "sieving": 15.0}
    text = "\n".join(advice.format_advice(a))
    assert "+10.00 accuracy points" in text and "sieving 15" in text and "± 2.83" in text
    no_ref = advice.advice(rows[1:2], {"missing": "the space's sieve.ratio starts at 0.1"})
    assert "sieve.ratio starts at 0.1" in no_ref["mest_missing"]


def _cli(tmp_path, capsys, **kw):
    from engine import cli
    f = tmp_path / "s.yaml"
    d = dict(BASE)
    d.update(kw)
    f.write_text(yaml.safe_dump(d))
    rc = cli.main(["search", str(f), "--search-dir", str(tmp_path / "out")])
    return rc, capsys.readouterr().err


def test_unreachable_storage_fails_at_once_with_the_url_masked(tmp_path, capsys):
    pytest.importorskip("optuna")
    url = f"sqlite:///{tmp_path}/no/such/dir/study.db"
    rc, err = _cli(tmp_path, capsys, storage=url)
    assert rc == 2 and url in err and "unable to open" in err
    rc, err = _cli(tmp_path, capsys, storage="postgresql://alice:hunter2@127.0.0.1:1/db")
    assert rc == 2 and "postgresql://alice:***@127.0.0.1:1/db" in err and "hunter2" not in err
    assert not list((tmp_path / "out").rglob("*.jsonl"))          # no trial, no event


def test_bad_input_through_the_cli_names_the_field_before_any_trial(tmp_path, capsys):
    rc, err = _cli(tmp_path, capsys, space={"freeze.target": [0, 1.5]})
    assert rc == 2 and "space.freeze.target" in err and "1.5" in err
    rc, err = _cli(tmp_path, capsys, budget={"flops": 10.0})
    assert rc == 2 and "budget.flops" in err and "cheapest" in err
    rc, err = _cli(tmp_path, capsys, objective={"maximize": "val_loss"})
    assert rc == 2 and "objective" in err and "val_loss" in err
    assert not (tmp_path / "out").exists()                        # refused before the study folder


def test_without_optuna_the_search_names_the_extra(tmp_path, capsys, monkeypatch):
    import sys

    import engine.search
    for mod in ("study", "report"):      # as on a machine that never had Optuna: nothing cached
        monkeypatch.delitem(sys.modules, f"engine.search.{mod}", raising=False)
        monkeypatch.delattr(engine.search, mod, raising=False)
    monkeypatch.setitem(sys.modules, "optuna", None)
    rc, err = _cli(tmp_path, capsys)
    assert rc == 2 and "pip install 'spfde-studio[search]'" in err


def test_same_search_spelled_differently_continues_the_study(tmp_path):
    pytest.importorskip("optuna")
    from engine.search import study
    study.folder_for(parse(), tmp_path)
    # defaults spelled out, more trials, another sampler: the same study
    study.folder_for(parse(seeds=1, trials=20, sampler="random", pruner="none", workers=2), tmp_path)
    with pytest.raises(SearchError, match="allow-change"):
        study.folder_for(parse(seeds=2), tmp_path)


def test_plan_gives_the_wall_time_range_from_this_machines_measured_speed(tmp_path, monkeypatch, capsys):
    from engine import cli
    from engine import config as config_mod
    from engine.cost import wall_time
    monkeypatch.setenv("SPFDE_CACHE_DIR", str(tmp_path / "cache"))      # nothing measured yet
    s = spec_mod.load(spec_mod.SEARCHES_DIR / "demo_budget.yaml")
    assert cli.main(["search", "demo_budget", "--plan"]) == 0
    assert "wall time: unknown (no measured speed" in capsys.readouterr().out
    base = config_mod.from_dict(s.base)
    wall_time.record(base, "cpu", 1e10, "a test", startup_s=3.0)
    r = feasibility.check_budget(s)
    w = feasibility.wall_time_range(s, r)
    cheap, dear = r["projected"]
    lo, hi = w["seconds"]
    assert lo == pytest.approx(3.0 + min(cells_executed(cheap), cells_executed(dear)) / 1e10)
    assert hi == pytest.approx(3.0 + max(cells_executed(cheap), cells_executed(dear)) / 1e10) and hi > lo
    assert w["runs"] == s.trials * len(s.seeds)
    assert cli.main(["search", "demo_budget", "--plan"]) == 0
    out = capsys.readouterr().out
    assert f"wall time: about {wall_time.duration(lo)} .. {wall_time.duration(hi)} per run at 1e+10" in out
    assert f"{w['runs']} runs, at most {wall_time.duration(hi * w['runs'])}" in out


def cells_executed(projected: dict) -> float:
    from engine.sweep.cells import executed_flops
    return executed_flops(projected)
