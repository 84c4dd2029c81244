"""Sweeps without training: the sweep file's checks, the expansion into cells, the
aggregation over seeds on hand-made results, the exports parsed back, the resume state."""
import csv
import io
import json
import math

import pytest
import yaml

from engine.sweep import cells as cells_mod
from engine.sweep import export, manifest, results, spec, state
from engine.sweep.spec import SweepError

TINY = {"device": "cpu", "epochs": 2, "interval": 1, "batch_size": 16, "model": {"width": 0.25},
        "data": {"image_size": 8, "train_size": 48, "test_size": 16, "num_classes": 4, "augment": False},
        "freeze": {"target": 0}, "sieve": {"ratio": 0}}


def sweep(**kw):
    d = {"name": "t", "base": {"preset": "demo"}, "overrides": TINY,
         "axes": {"sparsity.target": [0.5, 0.8], "optim.lr": [0.05, 0.1]}, "seeds": 2}
    d.update(kw)
    return spec.parse(d)


def errors_of(**kw):
    with pytest.raises(SweepError) as ei:
        cells_mod.build(sweep(**kw))
    return ei.value.errors


def test_expansion_order_seeds_and_names():
    s = sweep()
    cells = cells_mod.build(s)
    assert len(cells) == 8 and cells_mod.grid_size(s) == 8
    assert [c.seed for c in cells[:4]] == [0, 1, 0, 1]
    assert cells[0].setting == {"sparsity.target": 0.5, "optim.lr": 0.05}
    assert cells[3].setting == {"sparsity.target": 0.5, "optim.lr": 0.1}
    assert [c.name for c in cells[:2]] == ["t-c000", "t-c001"]
    assert cells[5].config["sparsity"]["target"] == 0.8 and cells[5].config["seed"] == 1
    assert cells[5].config["epochs"] == 2 and cells[5].config["name"] == "t-c005"
    # seeds share their setting's plan; a sparser setting is projected cheaper
    assert cells[0].projected == cells[1].projected
    assert cells[4].projected["flops_spent"] < cells[0].projected["flops_spent"]
    text = cells_mod.format_plan(s, cells)
    assert "t-c007" in text and "estimated total" in text
    assert "~" not in text and all(c.projected["exact"] for c in cells)


def test_plan_marks_snip_cells_as_estimates():
    # SNIP picks layer densities from the data: the plan prices the uniform split, so say so
    s = spec.parse({"name": "m", "overrides": TINY, "axes": {"sparsity.algorithm": ["mest_ems", "snip"]}})
    cells = cells_mod.build(s)
    assert [c.projected["exact"] for c in cells] == [True, False]
    assert [cells_mod.flops_text(c.projected)[0] == "~" for c in cells] == [False, True]
    assert "an estimate" in cells_mod.format_plan(s, cells)


def test_linked_axes_change_together_and_seed_lists():
    s = sweep(axes={"sparsity.target": [0.5]}, seeds=[3, 7],
              linked=[{"freeze.target": [0, 0.1], "sieve.ratio": [0, 0.25]}])
    cells = cells_mod.expand(s)
    assert [(c.setting["freeze.target"], c.setting["sieve.ratio"], c.seed) for c in cells] == \
        [(0.0, 0.0, 3), (0.0, 0.0, 7), (0.1, 0.25, 3), (0.1, 0.25, 7)]
    assert s.varied_fields() == ["sparsity.target", "freeze.target", "sieve.ratio"]


@pytest.mark.parametrize("kw, where, words", [
    ({"axes": {"sparsity.tagret": [0.5]}}, "axes.sparsity.tagret", "unknown field"),
    ({"axes": {"sparsity.target": ["high"]}}, "axes.sparsity.target", "expected a number"),
    ({"axes": {"sparsity.target": [1.5]}}, "axes.sparsity.target", "must be"),
    ({"axes": {"sparsity.target": []}}, "axes.sparsity.target", "empty axis"),
    ({"axes": {"sparsity.target": 0.5}}, "axes.sparsity.target", "list of values"),
    ({"axes": {"seed": [1, 2]}}, "axes.seed", "seeds"),
    ({"axes": {"data.augment": [1]}}, "axes.data.augment", "true or false"),
    ({"linked": [{"freeze.target": [0, 0.1], "sieve.ratio": [0]}]}, "linked[0]", "same length"),
    ({"seeds": 0}, "seeds", "at least 1"),
    ({"seeds": "three"}, "seeds", "count"),
    ({"base": {"preset": "nope"}}, "base.preset", "unknown preset"),
    ({"axis": {}}, "axis", "unknown key"),
])
def test_bad_sweep_files_name_the_axis(kw, where, words):
    with pytest.raises(SweepError) as ei:
        sweep(**kw)
    msgs = dict(ei.value.errors)
    assert where in msgs, ei.value.errors
    assert words in msgs[where]
    assert where in str(ei.value)


def test_grid_limit_names_the_axes():
    errs = dict(errors_of(axes={"optim.lr": [0.01 * (i + 1) for i in range(10)],
                                "optim.weight_decay": [1e-4 * (i + 1) for i in range(10)]}, seeds=6))
    assert "600 cells" in errs["max_cells"] and "axes.optim.lr (10)" in errs["max_cells"]
    assert "500" in errs["max_cells"]
    s = sweep(axes={"optim.lr": [0.05, 0.1, 0.2]}, seeds=2, max_cells=5)
    with pytest.raises(SweepError, match="6 cells"):
        cells_mod.expand(s)


def test_a_bad_cell_stops_the_sweep_naming_cell_and_field():
    # sieve.ratio 0.01 of 48 samples rounds to nothing: only the planner can tell
    errs = errors_of(axes={"sieve.ratio": [0.25, 0.01]})
    (where, msg), = errs
    assert where.startswith("cell 2 (sieve.ratio=0.01, seed 0)") and where.endswith("sieve.ratio"), where
    # a combination only the cross-field validation rejects
    errs = errors_of(axes={"epochs": [2, 4]}, overrides={**TINY, "interval": 3})
    assert any("interval" in w and "epochs=2" in w for w, _ in errs), errs


def test_sweep_file_loads_relative_base_config(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({"name": "b", **TINY}))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"base": {"config": "base.yaml"},
                                                     "axes": {"optim.lr": [0.1, 0.2]}}))
    s = spec.load(tmp_path / "s.yaml")
    assert s.name == "s" and s.seeds == [0]
    assert [c.config["optim"]["lr"] for c in cells_mod.expand(s)] == [0.1, 0.2]
    with pytest.raises(SweepError, match="not found"):
        spec.load(tmp_path / "missing.yaml")


# ---------------------------------------------------------------- aggregation

def hand_made():
    s = sweep()
    cells = cells_mod.expand(s)
    lines = []
    accs = {0: 0.70, 1: 0.74, 2: 0.60, 3: 0.62, 4: 0.50, 5: 0.56, 6: 0.40}
    for c in cells:
        if c.index == 7:       # crashed: the row must show 1/2, not a one-seed "mean" silently
            lines.append({"cell": c.name, "status": "failed", "error": "RuntimeError: boom", "run_dir": None})
            continue
        if c.index == 2:       # failed first, then completed on the retry: the last line wins
            lines.append({"cell": c.name, "status": "failed", "error": "x"})
        lines.append({"cell": c.name, "status": "completed", "run_dir": f"{c.name}-r",
                      "final_test_acc": accs[c.index], "best_test_acc": accs[c.index] + 0.01,
                      "flops_spent": 1e9 * (1 + c.index // 4), "peak_memory_bytes": 2**20 * (c.index + 1),
                      "wall_time": 10.0 + c.index})
    return s, cells, lines


def test_aggregation_mean_sample_std_and_counts():
    s, cells, lines = hand_made()
    rows = results.aggregate(cells, lines)
    assert len(rows) == 4
    r0 = rows[0]
    assert r0.setting == {"sparsity.target": 0.5, "optim.lr": 0.05}
    assert (r0.completed, r0.seeds_total, r0.failed) == (2, 2, 0)
    assert r0.stats["final_test_acc"].mean == pytest.approx(0.72)
    assert r0.stats["final_test_acc"].std == pytest.approx(math.sqrt(((0.70 - 0.72) ** 2 + (0.74 - 0.72) ** 2) / 1))
    assert rows[1].completed == 2 and rows[1].failed == 0           # the retry succeeded
    last = rows[3]
    assert (last.completed, last.failed) == (1, 1) and not last.complete
    assert last.stats["final_test_acc"].n == 1 and last.stats["final_test_acc"].std is None
    assert last.errors == ["t-c007: RuntimeError: boom"]
    assert results.stat([]).mean is None and results.stat([1.0, 3.0]).std == pytest.approx(math.sqrt(2))


def test_pareto_front():
    pts = [(1.0, 0.5), (2.0, 0.7), (2.0, 0.6), (3.0, 0.65), (4.0, 0.8), (0.5, 0.4)]
    assert results.pareto_front(pts) == [5, 0, 1, 4]


def test_exports_parse_back():
    s, cells, lines = hand_made()
    rows = results.aggregate(cells, lines)
    varied = s.varied_fields()
    got = list(csv.DictReader(io.StringIO(export.to_csv(rows, varied))))
    assert len(got) == 4
    assert float(got[0]["final_test_acc_mean"]) == pytest.approx(0.72)
    assert float(got[0]["sparsity.target"]) == 0.5 and got[3]["seeds_failed"] == "1"
    assert got[3]["final_test_acc_std"] == ""

    md = export.to_markdown(rows, varied).strip().splitlines()
    table = [[c.strip() for c in line.strip("|").split("|")] for line in md]
    assert table[0][:2] == varied and len(md) == 2 + 4
    assert table[2][table[0].index("final test acc (%)")] == "72.00 ± 2.83"
    assert table[5][table[0].index("seeds")] == "1/2 (1 failed)"

    tex = export.to_latex(rows, varied, caption="CIFAR_100 50% & more")
    body = tex[tex.index(r"\midrule") + len(r"\midrule"):tex.index(r"\bottomrule")].strip().splitlines()
    cells0 = [c.strip() for c in body[0].rstrip("\\ ").split(" & ")]
    assert cells0[0] == "0.5" and cells0[3] == r"72.00 $\pm$ 2.83"
    assert r"CIFAR\_100 50\% \& more" in tex and tex.count(r"\\") == 5


# ---------------------------------------------------------------- folder and resume state

def test_manifest_roundtrip_and_state(tmp_path):
    s = sweep(axes={"optim.lr": [0.05]})
    cells = cells_mod.build(s)
    m = manifest.create(s, cells, tmp_path)
    assert manifest.find_matching(tmp_path, s, cells) == m.dir
    m2 = manifest.read(m.dir)
    assert [c.name for c in m2.cells] == ["t-c000", "t-c001"] and m2.varied == ["optim.lr"]
    assert m2.config_path(m2.cells[0]).is_file()
    assert [st.action for st in state.states(m2)] == ["start", "start"]

    # a run folder that stopped with a checkpoint resumes; a failure is retried once, then final
    rd = m.dir / "t-c000-20260101-000000"
    (rd / "checkpoints").mkdir(parents=True)
    (rd / "config.yaml").write_text("{}")
    (rd / "checkpoints" / "last.pt").write_bytes(b"x")
    (rd / "events.jsonl").write_text(json.dumps({"event": "run_started"}) + "\n"
                                     + json.dumps({"event": "run_finished", "status": "stopped"}) + "\n")
    assert state.cell_state(m2, m2.cells[0]).action == "resume"
    res = m.dir / manifest.RESULTS
    manifest.append_jsonl(res, {"cell": "t-c001", "status": "failed", "error": "boom"})
    assert state.cell_state(m2, m2.cells[1]).action == "retry_start"
    with open(res, "a") as f:
        f.write('{"cell": "t-c001", "sta')                 # a writer killed mid-line
    manifest.append_jsonl(res, {"cell": "t-c001", "status": "failed", "error": "boom again"})
    st = state.cell_state(m2, m2.cells[1])
    assert st.action == "failed" and st.error == "boom again" and not st.todo
    # a completed folder without its results line counts as done
    with open(rd / "events.jsonl", "a") as f:
        f.write(json.dumps({"event": "run_started"}) + "\n" + json.dumps({"event": "run_finished", "status": "completed"}) + "\n")
    st = state.cell_state(m2, m2.cells[0])
    assert st.action == "done" and st.finished_in_folder
    # every epoch trained but the final checkpoint unsaved (full disk): done, not retrained
    with open(rd / "events.jsonl", "a") as f:
        f.write(json.dumps({"event": "run_started"}) + "\n"
                + json.dumps({"event": "run_finished", "status": "finished_unsaved"}) + "\n")
    st = state.cell_state(m2, m2.cells[0])
    assert st.action == "done" and st.finished_in_folder and not st.todo
    line = results.result_line(m2.cells[0], "completed", rd, 1, note=results.UNSAVED_NOTE)
    assert line["status"] == "completed" and "finished_unsaved" in line["note"]
    with pytest.raises(SweepError, match="no sweep.yaml"):
        manifest.read(tmp_path)


@pytest.mark.parametrize("name, n", [("cifar100_table2", 36), ("demo_grid", 8)])
def test_shipped_sweeps_validate_and_plan(name, n):
    s = spec.load(spec.SWEEPS_DIR / f"{name}.yaml")
    cells = cells_mod.build(s)
    assert len(cells) == n
    if name == "cifar100_table2":
        starts = {c.setting["freeze.target"]: c.projected["freeze_start_epoch"] for c in cells}
        assert starts == {0.0: None, 0.1: 80, 0.15: 70, 0.2: 60}       # the paper's Table A4
        assert {c.config["freeze"]["prune_frozen"] for c in cells} == {False} and s.seeds == [0, 1, 2]


def test_cli_plan_by_shipped_name_and_bad_file(capsys, tmp_path):
    from engine.cli import main
    assert main(["sweep", "demo_grid", "--plan", "--sweep-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "demo-grid-c007" in out and "estimated total" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("axes: {sparsity.target: [0.9, x]}\n")
    assert main(["sweep", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "invalid sweep" in err and "axes.sparsity.target" in err
    assert not list(tmp_path.glob("*-2*"))          # nothing was created
