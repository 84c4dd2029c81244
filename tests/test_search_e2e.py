"""A tiny search end to end (real engine subprocesses, synthetic data, 2 epochs)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from engine.sweep import manifest

pytest.importorskip("optuna")
ROOT = Path(__file__).resolve().parent.parent
TINY = {"device": "cpu", "epochs": 2, "interval": 1, "batch_size": 8, "model": {"width": 0.25},
        "analysis": {"enabled": False}, "freeze": {"target": 0}, "sieve": {"ratio": 0},
        "checkpoint": {"every": 1},
        "data": {"image_size": 8, "train_size": 64, "test_size": 32, "num_classes": 4, "augment": False}}


@pytest.mark.slow
def test_tiny_search_never_trains_over_budget_and_prunes(tmp_path, capsys):
    import optuna
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({"name": "tiny", "base": {"preset": "demo"}, "overrides": TINY,
                                 "space": {"sparsity.target": [0.5, 0.95], "sieve.ratio": [0, 0.5]},
                                 "budget": {"fraction": 0.12}, "trials": 6}))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "engine", "search", str(f), "--search-dir", str(tmp_path / "out")],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    folder = tmp_path / "out" / "tiny"
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{folder / 'study.db'}")
    infeasible = [t for t in study.trials if t.user_attrs.get("infeasible")]
    reasons = [t.user_attrs["infeasible"] for t in infeasible]
    # over the budget, or a point the configuration refuses (a sieve ratio that removes 0 samples)
    assert all(r.startswith(("over budget: ", "invalid: ")) for r in reasons), reasons
    assert any(r.startswith("over budget: ") for r in reasons)
    trained = {c for t in study.trials for c in t.user_attrs.get("cells", [])}
    ran = {line["cell"] for line in manifest.read_jsonl(folder / "results.jsonl")}
    assert ran <= trained          # no infeasible trial has a cell
    assert all(not t.user_attrs.get("cells") for t in infeasible)
    limit = 0.12 * study.trials[0].user_attrs["flops_dense"]
    assert all(t.user_attrs["flops_spent"] <= limit for t in study.trials if t.user_attrs.get("cells"))
    assert any(t.state == optuna.trial.TrialState.PRUNED and t.user_attrs.get("pruned_epoch") is not None
               for t in study.trials)
    assert (folder / "best.yaml").is_file()
    # the plain-MEST reference was queued first: no freezing, no sieving, within the budget
    ref = [t for t in study.trials if t.user_attrs.get("reference")]
    assert len(ref) == 1 and ref[0].number == 0 and ref[0].params["sieve.ratio"] == 0
    assert ref[0].user_attrs["flops_spent"] <= limit
    # the snapshot the studio reads, and the advice
    from engine.search import advice
    snap = advice.read_snapshot(folder)
    assert [r["trial"] for r in snap["trials"]] == [t.number for t in study.trials]
    assert snap["budget"]["flops"] == pytest.approx(limit)
    from engine.cli import main  # the report in-process: it trains nothing
    capsys.readouterr()
    assert main(["search", str(f), "--search-dir", str(tmp_path / "out"), "--report"]) == 0
    rep = capsys.readouterr().out
    assert "best within the budget" in rep and "saved by sparsity" in rep
    adv = advice.advice(snap["trials"], snap["reference"])
    if adv["best"]["trial"] != 0:
        assert "vs the plain-MEST reference (#0" in rep
    # the best preset reproduces the best trial's accuracy with the same seed
    best = yaml.safe_load((folder / "best.yaml").read_text())
    # in-process, like the report: no second torch start-up (the worker runs one thread, as the
    # trials did)
    assert main(["run", "--config", str(folder / "best.yaml"), "--run-dir", str(tmp_path / "again")]) == 0
    from engine.sweep.results import summarize_run
    again = next((tmp_path / "again").glob(f"{best['name']}-*"))
    assert summarize_run(again)["final_test_acc"] == pytest.approx(adv["best"]["test_acc"], abs=1e-9)
