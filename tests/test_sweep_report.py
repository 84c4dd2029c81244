"""A sweep's headless report (``spfde-gui report SWEEP_DIR``) and runs as TensorBoard
scalars (``spfde-gui export --tensorboard``), on a hand-made sweep folder (no training)."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.sweep import cells as cells_mod
from engine.sweep import manifest, spec
from spfde_gui.sweep import tensorboard as tb

ROOT = Path(__file__).resolve().parent.parent
TINY = {"device": "cpu", "epochs": 2, "interval": 1, "model": {"width": 0.25},
        "data": {"image_size": 8, "train_size": 40, "test_size": 16, "num_classes": 4},
        "freeze": {"target": 0}, "sieve": {"ratio": 0}}


def fake_sweep(tmp_path) -> Path:
    s = spec.parse({"name": "rep", "base": {"preset": "demo"}, "overrides": TINY,
                    "axes": {"sparsity.target": [0.5, 0.8]}, "seeds": 1})
    m = manifest.create(s, cells_mod.build(s), tmp_path)
    for c in m.cells:
        rd = m.dir / f"{c.name}-20260101-000000"
        rd.mkdir()
        (rd / "config.yaml").write_text("{}")
        evs = [{"event": "epoch_end", "epoch": e, "time": 1.7e9 + e, "train_loss": 1.0 - 0.1 * e, "test_acc": 0.5 + 0.1 * e,
                "lr": 0.1, "flops": {"spent": 1e6 * (e + 1), "saved": {"sparsity": 5.0}},
                "memory": {"peak_bytes": 2**20}} for e in range(2)]
        evs.append({"event": "run_finished", "status": "completed", "final": {"test_acc": 0.6},
                    "flops": {"spent": 2e6 * (1 + c.index), "dense": 1e7, "saved": {}}, "wall_time": 2.0})
        (rd / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evs))
        from engine.sweep.results import result_line
        manifest.append_jsonl(m.dir / manifest.RESULTS, result_line(c, "completed", rd, 1))
    return m.dir


def test_sweep_report_headless(tmp_path):
    d = fake_sweep(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run([sys.executable, "-m", "spfde_gui", "report", str(d), "--out", str(tmp_path / "r")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    r = tmp_path / "r"
    html = (r / "sweep_report.html").read_text()
    assert "Sweep rep" in html and "data:image/svg+xml;base64," in html and "60.00" in html
    # the base configuration: what every cell shares, the varied field not among it
    base = html.split("Base configuration", 1)[1].split("<h2>", 1)[0]
    assert "varied: sparsity.target" in base and ">model.name<" in base and ">resnet20<" in base
    assert ">sparsity.target<" not in base and ">seed<" not in base
    pdf = (r / "sweep_report.pdf").read_bytes()
    assert pdf[:5] == b"%PDF-" and b"/Subtype /Image" not in pdf     # the scatter is drawn as vectors
    assert sorted(p.name for p in (r / "figures").iterdir()) == [
        f"accuracy_vs_flops_pareto.{ext}" for ext in ("pdf", "png", "svg")]
    rows = list(csv.DictReader((r / "results.csv").read_text().splitlines()))
    assert [float(x["flops_spent_mean"]) for x in rows] == [2e6, 4e6]
    assert "\\begin{tabular}" in (r / "results.tex").read_text()
    bad = subprocess.run([sys.executable, "-m", "spfde_gui", "report", str(d), "--formats", "docx"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "docx" in bad.stderr


def _scalars(logdir) -> list[tuple[str, int, float]]:
    """(tag, step, value) of a TensorBoard log folder, read by TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    ea = EventAccumulator(str(logdir))
    ea.Reload()
    return [(t, e.step, e.value) for t in ea.Tags()["scalars"] for e in ea.Scalars(t)]


def test_tensorboard_scalars_roundtrip(tmp_path):
    d = fake_sweep(tmp_path)
    from spfde_gui.__main__ import main
    assert main(["export", "--tensorboard", str(tmp_path / "tb"), str(d)]) == 0
    files = sorted((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert len(files) == 2
    scalars = _scalars(files[0].parent)
    acc = [(s, v) for t, s, v in scalars if t == "test/acc"]
    assert acc == [(0, pytest.approx(0.5)), (1, pytest.approx(0.6))]
    assert ("flops/spent", 1, pytest.approx(2e6)) in [(t, s, v) for t, s, v in scalars]
    # a single run folder works too; anything else is a clear error
    run = next(p for p in d.iterdir() if p.name.startswith("rep-c000-"))
    assert len(tb.export(run, tmp_path / "one")) == 1
    assert main(["export", "--tensorboard", str(tmp_path / "x"), str(tmp_path)]) == 2


def test_an_unknown_format_is_refused_naming_it(tmp_path):
    from spfde_gui.report import ReportError
    from spfde_gui.sweep.report import export_sweep_report
    d = fake_sweep(tmp_path)
    with pytest.raises(ReportError, match=r"unknown sweep report format\(s\) docx; expected .*html"):
        export_sweep_report(d, tmp_path / "out", formats="html,docx")
