"""The analyses in the studio and the report: the run model folds ``analysis`` events into
layers x epochs matrices (spfde_gui.model.analysis_data), the Analyses view draws them, and the
report gets its "Analyses" section, for a run written by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine import config as C
from engine.run.events import dumps, make_event
from spfde_gui.model import analysis_data as AD
from spfde_gui.model.run_model import RunModel

BLOCKS = [("stem", ["stem.conv"]), ("b1", ["b1.conv1", "b1.conv2"]), ("head", ["head.fc"])]
CFG = C.from_dict({"name": "an-view", "epochs": 6, "interval": 2, "analysis": {"enabled": True, "probe_size": 64},
                   "freeze": {"target": 0.0}}).to_dict()


def _events(resume_at: int | None = None) -> list[dict]:
    model = {"name": "resnet20", "params": 1, "blocks": [{"name": n, "params": 1, "forward_flops": 1.0, "layers": l}
                                                         for n, l in BLOCKS]}
    ev = [make_event("run_started", run_id="x", run_dir="x", config=CFG, device="cpu", dataset={}, model=model,
                     freeze_plan=None, projected=None, resumed=False, start_epoch=0)]
    for e in range(6):
        if e == 3:
            ev.append(make_event("freeze", epoch=3, block="stem", block_index=0, flops_saved=0.0, reason="stable"))
        measured = e in (1, 3, 5)
        fields = {"epoch": e, "measured": measured, "steps": 4,
                  "grad_norm": {"stem": None if e >= 3 else 1.0 / (e + 1), "b1": 0.5, "head": 0.25}}
        if measured:
            first = e == 1
            fields.update(cka={"stem": None if first else 0.99, "b1": None if first else 0.9 + e / 100,
                               "head": None if first else 0.5},
                          mask_similarity={"b1.conv1": None if first else 0.8, "b1.conv2": None if first else 0.7},
                          block_mask_similarity={"stem": None, "b1": None if first else 0.75, "head": None},
                          probe_size=64, flops=1e6, seconds=0.01)
        if e == 5:
            fields.update(similarity_to_final={"b1.conv1": [0.5, 0.9, 1.0], "b1.conv2": [0.6, 0.8, 1.0]},
                          cka_to_final={"stem": [0.7, 0.9, 1.0], "b1": [0.4, 0.8, 1.0], "head": [0.2, 0.6, 1.0]},
                          measure_epochs=[1, 3, 5])
        ev.append(make_event("analysis", **fields))
        ev.append(make_event("epoch_end", epoch=e, epochs=6, train_loss=1.0, train_acc=0.5, test_loss=1.0,
                             test_acc=0.5, lr=0.1, lrs={}, epoch_time=1.0, samples=10, samples_total=10 * (e + 1),
                             memory={}, flops={"spent": 1.0, "dense": 2.0, "saved": {}}, flops_epoch={},
                             density=0.5, frozen_blocks=["stem"] if e >= 3 else [], active_samples=10))
    if resume_at is not None:
        ev.append(make_event("run_started", run_id="x", run_dir="x", config=CFG, device="cpu", dataset={}, model=model,
                             freeze_plan=None, projected=None, resumed=True, start_epoch=resume_at, start_batch=0))
    return ev


def _model(**kw) -> RunModel:
    m = RunModel()
    m.ingest_many(_events(**kw))
    return m


def test_heat_maps_fill_each_measurement_window():
    m = _model()
    names, cka = AD.heat(m, "cka")
    assert names == ["stem", "b1", "head"] and cka.shape == (3, 6)
    assert np.isnan(cka[:, :2]).all()                     # the first measurement has no previous one
    assert cka[1].tolist()[2:] == pytest.approx([0.93, 0.93, 0.95, 0.95])   # epochs (1, 3] and (3, 5]
    names, sim = AD.heat(m, "mask_similarity")
    assert names == ["b1.conv1", "b1.conv2"] and sim[0, 5] == pytest.approx(0.8)
    names, final = AD.heat(m, "similarity_to_final")
    assert final[1].tolist() == pytest.approx([0.6, 0.6, 0.8, 0.8, 1.0, 1.0])
    names, fig1b = AD.heat(m, "cka_to_final")          # Fig. 1b: every measurement vs the final one
    assert names == ["stem", "b1", "head"] and fig1b[2].tolist() == pytest.approx([0.2, 0.2, 0.6, 0.6, 1.0, 1.0])
    names, epochs, g = AD.grad_norms(m)
    assert epochs.tolist() == [0, 1, 2, 3, 4, 5] and math.isnan(g[0, 3]) and g[0, 1] == pytest.approx(0.5)
    # the stem froze at epoch 3: its row, and the rows of its layers, carry the mark
    assert AD.freeze_marks(m, ["stem", "b1", "head"]) == [(3, 0)]
    assert AD.freeze_marks(m, ["stem.conv", "b1.conv1"]) == [(3, 0)]
    with pytest.raises(KeyError, match="unknown analysis measure"):
        AD.heat(m, "nope")


def test_a_resume_drops_the_superseded_analyses():
    m = _model(resume_at=3)
    assert [e["epoch"] for e in m.analysis_events] == [0, 1, 2]
    assert np.isnan(AD.heat(m, "cka")[1][:, 2:]).all()


def test_analysis_view_draws_and_says_when_the_analyses_are_off(qapp):
    from spfde_gui.views.analysis import AnalysisView
    v = AnalysisView()
    v.set_model(_model())
    assert not v.is_empty() and "3 measurement(s)" in v.info.text()
    assert v.cka.values.shape == (3, 6) and len(v._lines) == 1          # the stem's freeze line
    # epochs as the other views count them (from 1): the stem froze at event epoch 3, i.e. before
    # epoch 4, and the column centred on 4 is event epoch 3
    assert v._lines[0].value() == pytest.approx(3.5)
    # the run has ended: the map shows CKA with the final model (Fig. 1b), titled so
    assert v.cka.value_at(4.0, 1.5).startswith("b1 · epoch 4: 0.8")
    assert "final model (Fig. 1b)" in v.cka.plot.titleLabel.text
    # Fig. 3b by default: the stem's norm 1/(e+1) changes by 1/2 then 1/6; b1's is constant
    assert "Fig. 3b" in v.grad.titleLabel.text
    xs, ys = v._curves["stem"].getData()
    assert xs.tolist() == [2, 3] and ys.tolist() == pytest.approx(np.log10([0.5, 1 / 2 - 1 / 3]))   # log axis
    assert v._curves["b1"].getData()[0] is None or len(v._curves["b1"].getData()[0]) == 0
    v.grad_kind.setCurrentIndex(1)                                      # the raw norms, named so
    assert "Raw mean gradient norm" in v.grad.titleLabel.text
    xs, _ys = v._curves["b1"].getData()
    assert xs.tolist() == [1, 2, 3, 4, 5, 6]
    v.similarity_kind.setCurrentIndex(1)                                # vs the final mask
    assert v.sim.names == ["b1.conv1", "b1.conv2"] and v.sim.values[0, 0] == pytest.approx(0.5)
    off = RunModel()
    cfg = dict(CFG, analysis={"enabled": False, "every": None, "probe_size": 512})
    off.ingest(make_event("run_started", run_id="y", run_dir="y", config=cfg, device="cpu", dataset={},
                          model={"blocks": []}, freeze_plan=None, projected=None, resumed=False, start_epoch=0))
    v.set_model(off)
    assert v.is_empty() and "analysis.enabled: false" in v.empty_label.text()
    # a launched engine that has not spoken yet is starting, not a run that "recorded no analyses"
    new = RunModel()
    new.begin_session(resume=False)
    v.set_model(new)
    assert v.is_empty() and "starting" in v.empty_label.text() and "no analyses" not in v.empty_label.text()


def test_report_has_the_analyses_section(tmp_path, qapp):
    from spfde_gui.report import export_report
    run = tmp_path / "run"
    run.mkdir()
    (run / "events.jsonl").write_text("".join(dumps(e) + "\n" for e in _events()), encoding="utf-8")
    written = export_report(run, tmp_path / "out", formats="html")
    text = written["html"].read_text(encoding="utf-8")
    assert "Analyses" in text and "3 measurement(s)" in text
    for caption in ("CKA of block outputs", "Structural similarity of sparse layers", "Block gradient norms"):
        assert caption in text, caption
