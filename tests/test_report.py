"""Report export: `spfde-gui report RUN --out DIR` and export_report on recorded runs.

The recorded run is built from the real planner (engine.cost.projection, pure Python) so its
run_started carries a genuine freeze plan and projection; the epoch_end FLOPs ledger follows
the plan's per-epoch entries, as the engine's ledger would on a run that kept to plan.
"""
from __future__ import annotations

import base64
import csv
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")   # before pytest-qt makes the QApplication

from engine import config as config_mod
from engine.cost import projection as plan_mod
from engine.run.events import dumps, make_event

ROOT = Path(__file__).resolve().parent.parent
CFG = {"name": "fixture-spfde", "seed": 3, "epochs": 12, "interval": 2, "batch_size": 64,
       "model": {"name": "resnet20", "width": 0.25},
       "data": {"name": "synthetic", "train_size": 500, "test_size": 100, "image_size": 16},
       "sparsity": {"target": 0.9}, "freeze": {"target": 0.15}, "sieve": {"ratio": 0.2}}


def _sci(x: float) -> str:
    mant, exp = f"{x:.3e}".split("e")
    return f"{mant}e{int(exp)}"


def _write(run: Path, events: list[dict], tail: str = "") -> None:
    run.mkdir(parents=True, exist_ok=True)
    text = "".join(dumps(ev) + "\n" for ev in events) + tail
    (run / "events.jsonl").write_text(text, encoding="utf-8")


def recorded_run(run: Path, *, finish: bool = True, sieve: bool = True) -> dict:
    """Write a realistic run directory; returns what the test expects to find in the report."""
    cfg_d = dict(CFG, sieve={"ratio": 0.2 if sieve else 0.0})
    cfg = config_mod.from_dict(cfg_d)
    run.mkdir(parents=True, exist_ok=True)
    config_mod.save(cfg, run / "config.yaml")
    proj = plan_mod.project(cfg)
    fplan = proj["freeze_plan"]
    blocks = [b["name"] for b in proj["blocks"]]
    n_train = proj["dataset"]["train_size"]
    ev = [make_event("run_started", run_id="fixture-0001", run_dir=str(run), config=cfg.to_dict(),
                     device="cpu", dataset=proj["dataset"],
                     model={"name": "resnet20", "params": proj["model"]["params"], "blocks": proj["blocks"]},
                     freeze_plan=fplan, projected={k: v for k, v in proj.items() if k != "epochs"},
                     resumed=False, start_epoch=0)]
    cum = {"spent": 0.0, "dense": 0.0, "saved": {"sparsity": 0.0, "freeze": 0.0, "sieve": 0.0}}
    rows = []
    active, removed = n_train - round(0.2 * n_train), round(0.2 * n_train)
    n_epochs = cfg.epochs if finish else 7
    for e in range(n_epochs):
        pe = proj["epochs"][e]
        if e % cfg.interval == 0 and e > 0:
            ev.append(make_event("mask_update", epoch=e, density=pe["density"],
                                 layers=[{"name": "layer1.0.conv1", "density": 0.1, "changed": 0.04},
                                         {"name": "layer2.0.conv1", "density": 0.1, "changed": 0.02}]))
            if sieve:
                k = round(0.3 * removed)
                ev.append(make_event("sieve_update", epoch=e, active_size=active, removed_size=removed, k=k,
                                     initial_waiting=max(removed - k * (e // 2), 0),
                                     histogram={"edges": [0, 1, 2, 3, 4], "counts": [250, 90, 40, 20]},
                                     swapped_in=list(range(k)), swapped_out=list(range(100, 100 + k))))
        for name, at in fplan["freeze_epochs"].items():
            if at == e:
                ev.append(make_event("freeze", epoch=e, block=name, block_index=blocks.index(name),
                                     flops_saved=fplan["epoch_saving"][-1]))
        fl = pe["flops"]
        cum = {"spent": cum["spent"] + fl["spent"], "dense": cum["dense"] + fl["dense"],
               "saved": {s: cum["saved"][s] + fl["saved"][s] for s in cum["saved"]}}
        row = {"epoch": e, "train_loss": 2.3 * math.exp(-0.15 * e), "train_acc": 0.1 + 0.06 * e,
               "test_loss": 2.35 * math.exp(-0.12 * e), "test_acc": 0.1 + 0.055 * e,
               "lr": 0.1 * (1 + math.cos(math.pi * e / cfg.epochs)) / 2, "epoch_time": 1.5 + 0.01 * e,
               "samples": pe["samples"], "samples_total": pe["samples"] * (e + 1),
               "density": pe["density"], "active_samples": pe["samples"],
               "memory_peak": 7_000_000 + 1000 * e, "flops": cum}
        rows.append(row)
        ev.append(make_event("epoch_end", epoch=e, epochs=cfg.epochs, train_loss=row["train_loss"],
                             train_acc=row["train_acc"], test_loss=row["test_loss"], test_acc=row["test_acc"],
                             lr=row["lr"], lrs={b: row["lr"] for b in blocks}, epoch_time=row["epoch_time"],
                             samples=row["samples"], samples_total=row["samples_total"],
                             memory={"kind": "cpu", "peak_bytes": row["memory_peak"], "rss_bytes": 300_000_000},
                             flops=cum, flops_epoch=fl, density=row["density"],
                             frozen_blocks=blocks[:pe["frozen_prefix"]], active_samples=row["active_samples"]))
        if (e + 1) % 4 == 0:
            ev.append(make_event("checkpoint", epoch=e + 1, batch=0, path=str(run / "checkpoints" / f"epoch{e + 1}.pt"),
                                 reason="periodic", bytes=1_234_567))
    ev.append(make_event("some_future_event", epoch=3))   # unknown types are skipped by readers
    if finish:
        ev.append(make_event("checkpoint", epoch=n_epochs, batch=0, path=str(run / "checkpoints" / "last.pt"),
                             reason="end", bytes=1_234_567))
        ev.append(make_event("run_finished", status="completed", epochs_completed=n_epochs,
                             final={"test_acc": rows[-1]["test_acc"], "train_loss": rows[-1]["train_loss"]},
                             flops=cum, wall_time=21.5))
    _write(run, ev, tail='' if finish else '{"event":"epoch_end","v":1,"epo')  # torn last line
    return {"cfg": cfg, "rows": rows, "flops": cum, "plan": proj, "blocks": blocks}


def _env() -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    env.pop("DISPLAY", None)
    return env


def _cli(*args: str, module: str = "spfde_gui") -> subprocess.CompletedProcess:
    if module == "spfde_gui" and not (ROOT / "spfde_gui" / "__main__.py").exists():
        module = "spfde_gui.report.cli"       # the GUI's entry point has not landed yet
        args = args[1:]
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=180)


def _images(html_text: str) -> list[bytes]:
    """The figures embedded in the HTML (SVG data URIs)."""
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', html_text)]


def _check_outputs(out: Path, exp: dict) -> None:
    rows, fl = exp["rows"], exp["flops"]
    html_text = (out / "report.html").read_text(encoding="utf-8")
    # header and configuration
    assert "fixture-spfde" in html_text and "completed" in html_text
    assert "sparsity.target" in html_text and "resnet20" in html_text and "freeze.target" in html_text
    assert re.search(r">epochs</td><td[^>]*>12<", html_text), "config value epochs=12 missing"
    # final metrics: last test accuracy as a percentage
    assert f"{100 * rows[-1]['test_acc']:.2f} %" in html_text
    # FLOPs table: spent, dense and every saved source, as numbers and % of dense
    for v in (fl["spent"], fl["dense"], *fl["saved"].values()):
        assert _sci(v) in html_text, f"FLOPs figure {_sci(v)} not in the report"
    for v in fl["saved"].values():
        assert f"{100 * v / fl['dense']:.1f} %" in html_text
    # memory: projected peak and measured peak
    assert f"{exp['plan']['memory']['peak_bytes'] / 2**20:.1f} MiB" in html_text
    assert f"{max(r['memory_peak'] for r in rows) / 2**20:.1f} MiB" in html_text
    # freeze plan: every planned block with its epoch; sieve summary
    for block, at in exp["plan"]["freeze_plan"]["freeze_epochs"].items():
        # shown counted from 1, as in the studio and the CLI (events count from 0)
        assert re.search(rf">{re.escape(block)}</td><td[^>]*>{at + 1}</td><td[^>]*>{at + 1}<", html_text), block
    assert "final active set <b>400</b>" in html_text and "removed set <b>100</b>" in html_text
    imgs = _images(html_text)
    assert len(imgs) >= 5, f"expected accuracy, FLOPs, sources, freeze and sieve figures, got {len(imgs)}"
    assert all(b"<svg" in img[:400] and img.count(b"<path") + img.count(b"<polyline") > 20 for img in imgs)

    pdf = (out / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) >= 2
    # the figures are drawn as vectors: no raster image anywhere in the PDF
    assert pdf.count(b"/Subtype /Image") + pdf.count(b"/Subtype/Image") == 0
    names = sorted(p.name for p in (out / "figures").iterdir())
    assert names == sorted(f"{n}.{ext}" for n in ("accuracy_loss", "accuracy_vs_flops", "flops_by_technique",
                                                    "freeze_timeline", "sieve_sizes") for ext in ("svg", "pdf", "png"))

    with open(out / "metrics.csv", newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == len(rows)
    for col in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "flops_spent",
                "flops_dense", "saved_sparsity", "saved_freeze", "saved_sieve", "memory_peak"):
        assert col in table[0], col
    for got, want in zip(table, rows):
        assert int(got["epoch"]) == want["epoch"]
        assert float(got["test_acc"]) == pytest.approx(want["test_acc"])
        assert float(got["train_loss"]) == pytest.approx(want["train_loss"])
    assert float(table[-1]["flops_spent"]) == pytest.approx(fl["spent"])
    assert float(table[-1]["saved_sieve"]) == pytest.approx(fl["saved"]["sieve"])

    data = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert data["config"]["sparsity"]["target"] == exp["cfg"].sparsity.target
    assert data["status"] == "completed" and data["summary"]["epochs_done"] == len(rows)
    assert data["epochs"]["test_acc"] == pytest.approx([r["test_acc"] for r in rows])
    assert data["summary"]["flops_spent"] == pytest.approx(fl["spent"])
    assert [e["block"] for e in data["events"]["freeze_events"]] == list(exp["plan"]["freeze_plan"]["freeze_epochs"])
    assert len(data["events"]["sieve_updates"]) == 5 and len(data["events"]["checkpoints"]) == 4


def test_cli_writes_html_pdf_csv_json(tmp_path):
    run = tmp_path / "runs" / "fixture"
    exp = recorded_run(run)
    out = tmp_path / "report"
    res = _cli("report", str(run), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "report.pdf" in res.stdout
    _check_outputs(out, exp)


def test_export_report_in_process(tmp_path, qapp):
    from spfde_gui.report import export_report
    run = tmp_path / "fixture"
    exp = recorded_run(run)
    written = export_report(run, tmp_path / "out")
    assert set(written) == {"html", "pdf", "figures", "csv", "json"}
    assert all(p.is_file() for f, p in written.items() if f != "figures") and written["figures"].is_dir()
    _check_outputs(tmp_path / "out", exp)


def test_crashed_run_without_freeze_or_sieve_still_reports(tmp_path, qapp):
    from spfde_gui.report import export_report
    run = tmp_path / "crashed"
    recorded_run(run, finish=False, sieve=False)
    written = export_report(run, tmp_path / "out", formats="html,csv")
    assert set(written) == {"html", "csv"} and not (tmp_path / "out" / "report.pdf").exists()
    html_text = written["html"].read_text(encoding="utf-8")
    assert "crashed" in html_text and "ends without run_finished" in html_text
    assert "No data sieving in this run (sieve.ratio is 0)" in html_text
    with open(written["csv"], newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 7     # the torn last line is not an epoch


@pytest.mark.parametrize("case", ["missing", "empty", "no_events_file"])
def test_bad_run_dir_exits_2_naming_the_path(tmp_path, case):
    run = tmp_path / "runs" / "bad-run"
    if case == "empty":
        run.mkdir(parents=True)
        (run / "events.jsonl").write_text("", encoding="utf-8")
    elif case == "no_events_file":
        run.mkdir(parents=True)
    res = _cli("report", str(run), "--out", str(tmp_path / "out"))
    assert res.returncode == 2
    assert str(run) in res.stderr
    assert not (tmp_path / "out" / "report.html").exists()


def test_unknown_format_is_rejected(tmp_path):
    from spfde_gui.report import ReportError, export_report
    run = tmp_path / "fixture"
    recorded_run(run, finish=False, sieve=False)
    with pytest.raises(ReportError, match="docx"):
        export_report(run, tmp_path / "out", formats="html,docx")


def test_export_keeps_pyqtgraph_options_and_takes_a_live_model(tmp_path, qapp):
    import pyqtgraph as pg

    from spfde_gui.report import export_report, load_run
    run = tmp_path / "live"
    recorded_run(run, finish=False)
    model = load_run(run)
    model.set_process_state(True)          # the window knows the engine is alive
    before = pg.getConfigOption("background")
    written = export_report(run, tmp_path / "out", formats="html", model=model)
    assert pg.getConfigOption("background") == before
    html_text = written["html"].read_text(encoding="utf-8")
    assert 'class="status running"' in html_text and "still going" in html_text
    assert len(_images(html_text)) >= 4


def test_run_that_crashed_before_its_first_epoch(tmp_path, qapp):
    from spfde_gui.report import export_report
    run = tmp_path / "early"
    recorded_run(run, finish=False)
    first = (run / "events.jsonl").read_text(encoding="utf-8").splitlines()[0]
    err = make_event("error", message="CUDA out of memory <tried 2 GiB>", traceback="Traceback ...\nRuntimeError: OOM")
    (run / "events.jsonl").write_text(first + "\n" + dumps(err) + "\n", encoding="utf-8")
    written = export_report(run, tmp_path / "out", formats="html,json")
    html_text = written["html"].read_text(encoding="utf-8")
    assert "CUDA out of memory &lt;tried 2 GiB&gt;" in html_text           # escaped, not markup
    assert "No epoch finished: no curves to show." in html_text and not _images(html_text)
    data = json.loads(written["json"].read_text(encoding="utf-8"))
    assert data["status"] == "crashed" and data["epochs"]["epoch"] == []
    assert data["config"]["name"] == CFG["name"]


def test_projected_flops_read_by_the_one_payload_reader():
    from spfde_gui.report.builder import projected_flops
    saved = {"sparsity": 1.0, "freeze": 2.0, "sieve": 1.0}
    new = projected_flops({"flops": {"spent": 5.0, "dense": 9.0, "saved": saved, "overhead": {}}})
    assert new == {"spent": 5.0, "dense": 9.0, **saved}
    # a run folder written before the plan's "total" became "spent" still reports
    assert projected_flops({"flops": {"total": 5.0, "dense": 9.0, "saved": saved}}) == new
    assert projected_flops(None) == {} and projected_flops({"flops": {"saved_sparsity": 1.0}}) == {}


def test_sieve_section_with_a_ratio_but_no_update_does_not_say_no_sieving():
    # a 2-epoch run with interval 2 sieves (the first removed set stays out) yet never updates
    from types import SimpleNamespace

    from spfde_gui.report.builder import sieve_section
    text, table = sieve_section(SimpleNamespace(sieve_updates=[], config={"sieve": {"ratio": 0.2, "mode": "circular"}}))
    assert "No data sieving" not in text and "20" in text and "stayed out" in text and table is None
    text, _ = sieve_section(SimpleNamespace(sieve_updates=[], config={"sieve": {"ratio": 0}}))
    assert "No data sieving in this run (sieve.ratio is 0)" in text


def test_flops_table_lists_the_overhead_so_the_rows_add_up():
    # spent = dense - saved + overhead: without an overhead row the percentages do not add up
    from types import SimpleNamespace

    from spfde_gui.report.builder import flops_table
    fl = {"spent": 14.0, "dense": 100.0, "saved": {"sparsity": 80.0, "freeze": 5.0, "sieve": 5.0},
          "overhead": {"dst_dense_grad": 3.0, "mask_scoring": 0.0, "analysis": 1.0}}
    summary = {"flops_spent": 14.0, "flops_dense": 100.0, "flops_saved": dict(fl["saved"])}
    m = SimpleNamespace(summary=lambda: summary, projected={"flops": fl}, finished={"flops": fl})
    rows = {r[0]: r for r in flops_table(m).rows}
    assert rows["Overhead: dense gradients (RigL)"][2] == "3.0 %" and rows["Overhead: dense gradients (RigL)"][4] == "3.0 %"
    assert rows["Overhead: analyses (probe forwards)"][2] == "1.0 %"
    assert not any("mask scoring" in k for k in rows)               # zero: no row
    # a run without run_finished: the total is derived from the ledger's identity
    m = SimpleNamespace(summary=lambda: summary, projected=None, finished=None)
    rows = {r[0]: r for r in flops_table(m).rows}
    assert rows["Overhead: total"][2] == "4.0 %"
