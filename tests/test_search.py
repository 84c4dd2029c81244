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


def test_shipped_demo_parses():
    s = spec_mod.load(spec_mod.SEARCHES_DIR / "demo_budget.yaml")
    assert feasibility.check_budget(s)["budget"] > 0
    assert yaml.safe_dump(s.raw)


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
