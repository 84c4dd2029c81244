"""SpFDE Studio window (pytest-qt, offscreen): field validation blocks the launch, the cost
preview follows the form, recorded runs replay into every view and the runs panel, and the
real engine launched from the window streams data, stops, resumes and shows a kill as a crash."""
import os
import signal
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest

from engine.run.events import dumps, make_event

pytestmark = pytest.mark.gui      # every test here drives Qt widgets (offscreen)

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = ["stem", "layer1.0", "layer2.0", "head"]


@pytest.fixture
def window(studio):
    return studio


# ---------------------------------------------------------------- configuration
def test_invalid_fields_block_launch_with_message_at_the_field(window, qtbot):
    form = window.form
    form.editors["epochs"].input.setText("ten")
    form.editors["sparsity.target"].input.setText("1.5")
    assert window.launch() is False
    assert not window.controller.is_running()
    ep = form.editors["epochs"]
    assert ep.error_label.isVisible() and "integer" in ep.error_label.text()
    assert "border" in ep.input.styleSheet()
    sp = form.editors["sparsity.target"]
    assert sp.error_label.isVisible() and "< 1" in sp.error_label.text()
    assert "2 invalid fields" in window.launch_msg.text()
    assert form.config() is None
    # a cross-field rule lands on its field too
    form.editors["epochs"].input.setText("4")
    form.editors["sparsity.target"].input.setText("0.9")
    form.editors["interval"].input.setText("9")
    assert window.launch() is False
    assert "at most epochs" in form.editors["interval"].error_label.text()
    assert not form.editors["epochs"].error_label.isVisible()
    form.editors["interval"].input.setText("2")
    assert form.is_valid() and form.config().interval == 2
    assert not form.editors["interval"].error_label.isVisible()


def test_cost_preview_follows_the_form(window, qtbot):
    form, pv = window.form, window.preview
    form.set_field("epochs", 40)
    form.set_field("freeze.target", 0.1)
    qtbot.waitUntil(lambda: pv.result is not None and pv.result["freeze_plan"] is not None, timeout=10000)
    start = pv.values["freeze_start"].text()
    assert start.isdigit() and int(start) == pv.result["freeze_plan"]["start_epoch"] + 1   # shown from 1
    assert pv.values["freeze"].text() != "–" and "%" in pv.values["spent"].text()
    # the overhead inside the spent FLOPs (e.g. the analyses' probe forwards) is named
    assert ("of overhead" in pv.message.text()) == (sum(pv.result["flops"]["overhead"].values()) > 0)
    form.set_field("sparsity.algorithm", "snip")
    qtbot.waitUntil(lambda: pv.result is not None and pv.result["method"]["name"] == "snip", timeout=10000)
    assert "an estimate" in pv.message.text()
    form.set_field("sparsity.algorithm", "mest_ems")
    qtbot.waitUntil(lambda: pv.result is not None and pv.result["method"]["name"] == "mest_ems", timeout=10000)
    assert "an estimate" not in pv.message.text()
    form.set_field("freeze.target", 0.0)
    qtbot.waitUntil(lambda: pv.values["freeze_start"].text() == "off", timeout=10000)
    # a configuration the planner rejects: its reason instead of numbers
    form.set_field("freeze.target", 0.9)
    qtbot.waitUntil(lambda: pv.error is not None, timeout=10000)
    assert "freeze.target" in pv.message.text() and pv.values["freeze_start"].text() == "–"
    form.set_field("freeze.target", 0.0)
    qtbot.waitUntil(lambda: pv.error is None and pv.result is not None, timeout=10000)
    # an invalid field: the preview shows why instead of numbers
    form.editors["batch_size"].input.setText("-3")
    qtbot.waitUntil(lambda: pv.error is not None, timeout=5000)
    assert "batch_size" in pv.message.text() and pv.values["spent"].text() == "–"


def test_presets_load_into_the_form(window):
    from engine import config as cfgmod
    names = cfgmod.list_presets()
    assert "demo" in names
    window.form.load_preset(names[0])
    want = cfgmod.load_preset(names[0])
    got = window.form.config()
    assert got is not None and got.epochs == want.epochs and got.model.name == want.model.name


def test_the_form_shows_only_the_chosen_methods_fields(window):
    form = window.form
    hidden = lambda path: form.editors[path].isHidden()
    form.set_field("sparsity.slack", "0.1")             # a MEST EM&S field, changed
    assert not hidden("sparsity.slack") and hidden("sparsity.update_steps")
    form.set_field("sparsity.algorithm", "rigl")
    assert not hidden("sparsity.update_steps") and not hidden("sparsity.update_fraction")
    assert hidden("sparsity.slack") and hidden("sparsity.score_batches") and not hidden("sparsity.distribution")
    # the hidden MEST value went back to its default, so the RigL configuration is valid
    cfg = form.config()
    assert cfg is not None and cfg.sparsity.algorithm == "rigl" and cfg.sparsity.slack == 0.05
    form.set_field("sparsity.algorithm", "snip")
    assert not hidden("sparsity.score_batches") and hidden("sparsity.distribution") and hidden("sparsity.update_steps")
    for name in ("set", "rigl", "snip", "grasp"):
        form.load_preset(f"cifar100_resnet32x2_{name}")
        assert form.config() is not None and form.config().sparsity.algorithm == name


# ---------------------------------------------------------------- recorded runs
def _record(run_dir: Path, n_epochs=6, finish=True, acc0=0.2, name="rec"):
    run_dir.mkdir(parents=True)
    evs = [make_event("run_started", run_id=run_dir.name, run_dir=str(run_dir), device="cpu",
                      dataset={"train_size": 100}, resumed=False, start_epoch=0,
                      config={"name": name, "epochs": n_epochs, "model": {"name": "resnet20"},
                              "data": {"name": "synthetic", "image_size": 8, "train_size": 100, "test_size": 20},
                              "sparsity": {"target": 0.9}, "freeze": {"target": 0.2}, "sieve": {"ratio": 0.2}},
                      model={"name": "resnet20", "blocks": [{"name": b} for b in BLOCKS]},
                      freeze_plan={"start_epoch": 2, "frozen_prefix": [0, 0, 1, 2, 2, 2][:n_epochs],
                                   "target": 0.2, "achieved": 0.21, "scheme": "single_shot"},
                      projected=None)]
    for e in range(n_epochs):
        if e % 2 == 0:
            evs.append(make_event("sieve_update", epoch=e, active_size=80, removed_size=20, k=6,
                                  initial_waiting=max(0, 14 - 6 * e), histogram={"edges": [0, 1, 2, 3], "counts": [50, 20, 10]},
                                  swapped_in=[1, 2, 3], swapped_out=[4, 5, 6]))
        frozen = BLOCKS[:min(2, max(0, e - 1))]
        evs.append(make_event(
            "epoch_end", epoch=e, epochs=n_epochs, train_loss=2.0 - 0.2 * e, train_acc=0.1 * e, test_loss=2.1 - 0.2 * e,
            test_acc=acc0 + 0.05 * e, lr=0.1, lrs={}, epoch_time=1.0, samples=80, samples_total=80 * (e + 1),
            memory={"kind": "cpu", "peak_bytes": 1e8, "rss_bytes": 2e8},
            flops={"spent": 4e9 * (e + 1), "dense": 1e10 * (e + 1),
                   "saved": {"sparsity": 4e9 * (e + 1), "freeze": 5e8 * e, "sieve": 1.5e9 * (e + 1)}},
            flops_epoch={}, density=0.1, frozen_blocks=frozen, active_samples=80))
    if finish:
        evs.append(make_event("run_finished", status="completed", epochs_completed=n_epochs, final={},
                              flops={}, wall_time=6.0))
    (run_dir / "events.jsonl").write_text("".join(dumps(e) + "\n" for e in evs))
    return run_dir


def test_every_view_shows_an_empty_state_without_data(window):
    for v in (window.training, window.freeze, window.sieve, window.flops):
        v.refresh(force=True)
        assert v.is_empty() and v.empty_label.text()
    assert "No run" in window.training.empty_label.text()


def test_replayed_run_fills_every_view(window, qtbot, tmp_path):
    run = _record(tmp_path / "runs" / "rec-1")
    m = window.open_run(run)
    window.redraw_all()
    assert m.status == "completed" and m.n_epochs == 6
    for v in (window.training, window.freeze, window.sieve, window.flops):
        assert not v.is_empty(), v.title
    x, y = window.training.curves["acc_ep"][1][1][0].getData()
    np.testing.assert_allclose(y, 100 * (0.2 + 0.05 * np.arange(6)))
    assert window.freeze.actual.img.image[0, 5] == 1 and window.freeze.actual.img.image[3, 5] == 0
    assert window.sieve.numbers["removed_size"].text() == "20"
    assert "Saved by sieving" in window.flops.summary.text()
    assert window.header.badge.text().strip() == "completed"
    assert window.act_export.isEnabled() and not window.act_resume.isEnabled()
    window.use_run_config()
    assert window.form.config() is not None and window.form.config().epochs == 6


def test_export_report_from_the_window(window, qtbot, tmp_path):
    run = _record(tmp_path / "runs" / "rec-2")
    window.open_run(run)
    out = window.export_report(tmp_path / "rep")
    assert out == tmp_path / "rep"
    # the files are written by a background task: the window stays live meanwhile
    assert window.exporter.is_busy() and not window.act_export.isEnabled()
    qtbot.waitUntil(lambda: not window.exporter.is_busy(), timeout=60000)
    assert "Report written" in window.statusBar().currentMessage()
    names = {p.name for p in out.iterdir()}
    assert {"report.html", "report.pdf", "metrics.csv", "metrics.json"} <= names
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF") and (out / "report.pdf").stat().st_size > 10000
    assert window.act_export.isEnabled()
    # a note offers to open the report, without blocking the window
    box = window._report_box
    assert box.isVisible() and not box.isModal() and str(out) in box.text()
    assert {b.text() for b in box.buttons()} >= {"Open report", "Open folder"}
    box.close()
    # Export report…: the folder is asked for; cancelling writes nothing
    from PySide6.QtWidgets import QFileDialog
    chosen = tmp_path / "elsewhere"
    chosen.mkdir()
    import unittest.mock as um
    with um.patch.object(QFileDialog, "getExistingDirectory", return_value=""):
        assert window.export_report_to() is None
    with um.patch.object(QFileDialog, "getExistingDirectory", return_value=str(chosen)):
        assert window.export_report_to() == chosen
    qtbot.waitUntil(lambda: not window.exporter.is_busy(), timeout=60000)
    assert (chosen / "report.html").is_file()
    window._report_box.close()


def test_runs_panel_lists_statuses_and_overlays_runs(window, qtbot, tmp_path):
    runs = tmp_path / "runs"
    _record(runs / "a-1", acc0=0.3, name="mest")
    _record(runs / "b-2", n_epochs=3, finish=False, name="spfde")
    (runs / "b-2" / "events.jsonl").touch()
    os.utime(runs / "b-2" / "events.jsonl", (1, 1))   # long silent and unfinished: crashed
    panel = window.runs
    panel.rescan()            # new runs are replayed off the GUI thread
    qtbot.waitUntil(lambda: not panel.loading(), timeout=10000)
    rows = {panel.table.item(r, 1).text(): panel.table.item(r, 2).text() for r in range(panel.table.rowCount())}
    assert rows == {"a-1": "completed", "b-2": "crashed"}
    window.open_run(runs / "a-1")
    panel.set_compared([runs / "b-2"])
    window.redraw_all()
    overlay = [it for _p, it in window.training._overlay_items]
    # test accuracy and test loss, against epochs and FLOPs, named by what differs
    assert len(overlay) == 4 and {o.name() for o in overlay} == {"epochs=3 (test)"}
    assert len(overlay[0].getData()[0]) == 3
    loss = [it for p, it in window.training._overlay_items if p is window.training.loss_ep][0]
    assert list(loss.getData()[1]) == pytest.approx([2.1, 1.9, 1.7])      # b-2's test loss
    # the config-diff table: one row per differing field, one column per run
    t = window.training.diff_table
    assert not t.isHidden() and t.rowCount() == 1 and t.verticalHeaderItem(0).text() == "epochs"
    assert [t.horizontalHeaderItem(c).text() for c in range(2)] == ["a-1", "b-2"]
    assert [t.item(0, c).text() for c in range(2)] == ["6", "3"]
    # hovering the accuracy plot reads the values under the mouse
    plot = window.training.acc_ep
    window.tabs.setCurrentIndex(0)
    plot.vb.setRange(xRange=(0, 5), yRange=(0, 100), padding=0)
    scene_pt = plot.vb.mapViewToScene(pg_point(2.0, 50.0))
    window.training.hovers[0]._moved((scene_pt,))
    assert window.training.hovers[0].label.isVisible()
    assert "epochs=6 (test): 35 @ 2" in window.training.hovers[0].label.toPlainText()   # epoch 2 = the second
    panel.set_compared([])                       # comparing no more: no overlays, no table
    window.redraw_all()
    assert window.training.diff_table.isHidden() and window.training._overlay_items == []


def test_non_fatal_error_shows_a_warning_not_a_crash(window):
    from spfde_gui.model.run_model import RunModel
    m = RunModel()
    m.ingest_many([
        make_event("run_started", run_id="w", run_dir="w", device="cpu", dataset={}, resumed=False, start_epoch=0,
                   config={"name": "warned", "epochs": 2}, model={"blocks": [{"name": b} for b in BLOCKS]},
                   freeze_plan=None, projected=None),
        make_event("error", message="checkpoint not written: No space left on device", fatal=False, epoch=1),
        make_event("run_finished", status="completed", epochs_completed=2, final={}, flops={}, wall_time=1.0)])
    window.open_model(m)
    assert m.status == "completed"
    assert window.header.warning.isVisible()
    assert "No space left on device" in window.header.warning.text()
    assert not window.header.banner.isVisible()
    m.ingest(make_event("error", message="checkpoint not written again", fatal=False))
    window._tick()
    assert "2 warnings" in window.header.warning.text() and "again" in window.header.warning.text()
    window.open_model(RunModel())       # another run: its own (no) warnings
    assert not window.header.warning.isVisible()


def test_long_curves_are_sent_as_an_envelope_and_hover_reads_true_values(window):
    from spfde_gui.model.run_model import RunModel
    from spfde_gui.views.base import ENVELOPE_BUCKETS
    n = 20_000
    m = RunModel()
    evs = [make_event("run_started", run_id="long", run_dir="long", device="cpu", dataset={}, resumed=False,
                      start_epoch=0, config={"name": "long", "epochs": n}, model={"blocks": []},
                      freeze_plan=None, projected=None)]
    spike = 12_345
    for e in range(n):
        acc = 0.99 if e == spike else 0.5 + 0.1 * ((e * 7919) % 13) / 13
        evs.append({"event": "epoch_end", "epoch": e, "test_acc": acc, "train_acc": 0.4, "time": float(e)})
    m.ingest_many(evs)
    window.open_model(m)
    window.tabs.setCurrentIndex(0)
    window.redraw_all()
    item = window.training.curves["acc_ep"][1][1][0]
    x, y = item.getData()
    assert len(x) <= 2 * ENVELOPE_BUCKETS + 6 < n
    assert y.max() == pytest.approx(99.0)                # the one-epoch spike survives decimation
    assert np.all(np.diff(x) >= 0) and x[0] == 1 and x[-1] == n   # epochs shown from 1
    # zoomed in, the visible range is sent in full detail
    plot = window.training.acc_ep
    plot.vb.setRange(xRange=(spike - 50, spike + 50), padding=0)
    x, y = item.getData()
    inside = (x >= spike - 50) & (x <= spike + 50)
    assert inside.sum() >= 100
    # the hover read-out gives the true value of the epoch under the mouse, not an envelope point
    e = 777
    plot.vb.setRange(xRange=(0, n), yRange=(0, 100), padding=0)
    true = 100 * m.column("test_acc")[e]
    window.training.hovers[0]._moved((plot.vb.mapViewToScene(pg_point(float(e + 1), 50.0)),))
    assert f"test: {true:.4g} @ {e + 1}" in window.training.hovers[0].label.toPlainText()
    # growing during a live run: the new epoch is drawn
    m.ingest({"event": "epoch_end", "epoch": n, "test_acc": 0.01, "time": float(n)})
    window._tick()
    x, y = item.getData()
    assert x[-1] == n + 1 and y.min() == pytest.approx(1.0)


def pg_point(x, y):
    from PySide6.QtCore import QPointF
    return QPointF(x, y)


# ---------------------------------------------------------------- the real engine
TINY = """
name: tiny
device: cpu
epochs: {epochs}
batch_size: 64
interval: 1
model: {{name: resnet20, width: 0.25}}
data: {{name: synthetic, image_size: 8, train_size: 128, test_size: 32}}
sparsity: {{target: 0.8}}
sieve: {{ratio: 0.2}}
checkpoint: {{every: 1}}
"""


def _launch_tiny(window, tmp_path, epochs):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY.format(epochs=epochs))
    window.form.load_file(cfg)
    window.form.set_field("run_dir", str(tmp_path / "runs"))
    assert window.launch() is True
    return window.controller.model


@pytest.mark.slow
def test_engine_run_streams_stops_and_resumes(window, qtbot, tmp_path):
    # 30 tiny epochs: on a fast host 5 ended before the stop sent after the first arrived
    m = _launch_tiny(window, tmp_path, epochs=30)
    qtbot.waitUntil(lambda: m.n_epochs >= 1, timeout=60000)
    window._tick(force=True)
    assert not window.training.is_empty()
    assert len(window.training.curves["loss_ep"][1][0][0].getData()[0]) >= 1
    assert m.run_dir is not None and (m.run_dir / "events.jsonl").is_file()
    window.stop()
    qtbot.waitUntil(lambda: not window.controller.is_running(), timeout=60000)
    assert m.status == "stopped", (m.error, list(window.controller.stderr_tail)[-10:])
    stopped_at = m.n_epochs
    assert stopped_at < 30
    assert window.act_resume.isEnabled()
    assert window.resume() is True
    qtbot.waitUntil(lambda: not window.controller.is_running(), timeout=60000)
    assert m.status == "completed", (m.error, list(window.controller.stderr_tail)[-10:])
    np.testing.assert_array_equal(m.column("epoch"), np.arange(30))
    # the replay of the run directory agrees with what the window saw live
    from spfde_gui.model.run_model import RunModel
    replay = RunModel.load(m.run_dir)
    assert replay.status == "completed" and replay.n_epochs == 30


@pytest.mark.slow
def test_killed_engine_is_shown_as_crashed(window, qtbot, tmp_path):
    m = _launch_tiny(window, tmp_path, epochs=30)
    qtbot.waitUntil(lambda: m.run_started is not None, timeout=60000)
    pid = window.controller.pid()
    os.kill(pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: not window.controller.is_running(), timeout=20000)
    window._tick(force=True)
    assert m.status == "crashed"
    assert window.header.banner.isVisible() and "killed" in window.header.banner.text()
    # Resume only from a checkpoint: killed before the first one, it says so instead
    has_ckpt = any((m.run_dir / "checkpoints").glob("*.pt")) if (m.run_dir / "checkpoints").is_dir() else False
    assert window.act_resume.isEnabled() == has_ckpt
    if not has_ckpt:
        assert "No checkpoint" in window.act_resume.toolTip()


@pytest.mark.slow
def test_engine_stops_with_a_checkpoint_when_its_stdin_closes(window, qtbot, tmp_path):
    # What the OS does to the pipe when the studio dies: the engine must not train on orphaned.
    m = _launch_tiny(window, tmp_path, epochs=30)
    assert "--stop-on-eof" in window.controller._proc.arguments()
    qtbot.waitUntil(lambda: m.run_started is not None, timeout=60000)
    window.controller._proc.closeWriteChannel()
    qtbot.waitUntil(lambda: not window.controller.is_running(), timeout=60000)
    assert not window.controller.stop_requested     # nobody pressed Stop
    assert m.status == "stopped", (m.error, list(window.controller.stderr_tail)[-10:])
    assert m.n_epochs < 30 and m.checkpoints and m.checkpoints[-1]["reason"] == "stop"


def test_cli_dispatches_report(tmp_path):
    from spfde_gui.__main__ import main
    run = _record(tmp_path / "runs" / "rep-1")
    assert main(["report", str(run), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out").is_dir() and any((tmp_path / "out").iterdir())


def test_cli_rejects_unknown_preset_and_missing_run(capsys):
    from spfde_gui.__main__ import main
    assert main(["--preset", "no-such-preset"]) == 2
    assert "no-such-preset" in capsys.readouterr().err
    assert main(["--open", "/nonexistent/run"]) == 2


@pytest.mark.slow
def test_closing_the_window_stops_the_engine(window, qtbot, tmp_path):
    import psutil
    m = _launch_tiny(window, tmp_path, epochs=30)
    qtbot.waitUntil(lambda: m.run_started is not None, timeout=60000)
    pid = window.controller.pid()
    window.close_policy = "stop"
    window.close()
    assert not window.controller.is_running()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert m.status == "stopped", (m.error, list(window.controller.stderr_tail)[-10:])
