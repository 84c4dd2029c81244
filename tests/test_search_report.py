"""The search report and figures from a study folder's trials.json (no search run, no Optuna)."""
import json

import pytest

from spfde_gui.search import figures


def snapshot():
    def row(n, state, acc=None, flops=None, ref=False, sieve=0.2):
        return {"trial": n, "state": state, "params": {"sparsity.target": 0.9, "sieve.ratio": sieve},
                "flops": flops, "flops_dense": 100.0, "flops_saved": {"sparsity": 80.0, "freeze": 0.0, "sieve": 5.0},
                "test_acc": acc, "test_acc_seeds": [acc] if acc is not None else None, "reference": ref,
                "pruned_epoch": 1 if state == "pruned" else None, "cells": [f"c{n}"], "measured": None,
                "reason": "over budget: 30 FLOPs planned > 20 allowed" if state == "infeasible" else ""}
    return {"name": "fake", "trials_requested": 3, "objectives": ["test_acc"], "space": {"sieve.ratio": [0, 0.5]},
            "budget": {"unit": "FLOPs", "flops": 20.0, "text": "20 FLOPs (0.2 of the dense training FLOPs)"},
            "reference": {"params": {"sieve.ratio": 0}}, "importances": {"sieve.ratio": 0.7, "sparsity.target": 0.3},
            "trials": [row(0, "complete", 0.5, 19.0, ref=True, sieve=0.0), row(1, "infeasible", flops=30.0),
                       row(2, "complete", 0.6, 15.0), row(3, "pruned", flops=12.0), row(4, "complete", 0.55, 12.0)]}


def test_scatter_has_the_budget_line_and_the_pareto_front():
    svg = figures.scatter_svg(snapshot()["trials"], 20.0)
    assert "budget 20" in svg and svg.count("<polyline") == 1       # the front: trials 4 and 2
    assert "#1:" not in svg                                          # infeasible: no accuracy, not drawn
    hist = figures.history_svg(snapshot()["trials"])
    assert hist.count("<circle") >= 3 + 1 and "best so far" in hist
    assert "sieve.ratio" in figures.importances_svg({"sieve.ratio": 0.7})
    assert figures.nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]


@pytest.mark.gui
def test_spfde_gui_report_writes_the_search_report(tmp_path, capsys):
    from spfde_gui.report import cli
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "search.yaml").write_text("fingerprint: x\n")
    (folder / "sweep.yaml").write_text("cells: []\n")                   # a study folder is a sweep folder too
    (folder / "trials.json").write_text(json.dumps(snapshot()))
    assert cli.main([str(folder), "--out", str(tmp_path / "out")]) == 0
    page = (tmp_path / "out" / "search_report.html").read_text()
    assert page.count("<svg") == 3 and "best within the budget: trial #2" in page
    assert "+10.00 accuracy points" in page and "over budget: 30 FLOPs" in page
    assert (tmp_path / "out" / "search_report.pdf").read_bytes().startswith(b"%PDF")
    assert json.loads((tmp_path / "out" / "search_trials.json").read_text())["name"] == "fake"


def test_a_folder_without_trials_is_refused(tmp_path, capsys):
    from spfde_gui.report import cli
    (tmp_path / "search.yaml").write_text("fingerprint: x\n")
    assert cli.main([str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "trials.json" in capsys.readouterr().err
