"""The studio's states and controls as a new user meets them (issue 13), with pytest-qt.

Most tests drive the window with a scripted stand-in for the engine (a few lines of Python
speaking the same stdin/stdout/stderr protocol) so that the *starting* phase, a Stop or a
Kill during it, and a resume can be tested without training anything; nothing waits on a
clock: every wait is on a condition.
"""
import os
import sys
import threading
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from engine.run.events import dumps, make_event

# The stand-in engine: logs like the engine while it starts, then waits on stdin. On
# "go" it announces the run (run_started, a progress event); on "stop" it checkpoints and
# finishes as stopped. It never exits on its own, so a kill is the only other way out.
FAKE_ENGINE = r'''
import json, os, sys, time
args = sys.argv[1:]
resume = args[0] == "resume"
run_dir = args[1] if resume else os.path.join(os.environ["FAKE_RUNS"], "fake-run")
os.makedirs(run_dir, exist_ok=True)
def emit(name, **f):
    ev = dict(event=name, v=1, time=time.time(), **f)
    line = json.dumps(ev)
    print(line, flush=True)
    with open(os.path.join(run_dir, "events.jsonl"), "a") as fh:
        fh.write(line + "\n")
print("INFO run directory " + run_dir, file=sys.stderr, flush=True)
print("INFO data: synthetic, 100 train / 20 test samples, 10 classes (0.0s)", file=sys.stderr, flush=True)
if resume:
    print("INFO resuming at epoch 2/4, batch 0", file=sys.stderr, flush=True)
cfg = {"name": "fake", "epochs": 4, "batch_size": 10, "interval": 2,
       "sieve": {"ratio": 0.2, "mode": "circular"}}
for line in sys.stdin:
    cmd = json.loads(line).get("cmd")
    if cmd == "go":
        emit("run_started", run_id="fake", run_dir=run_dir, config=cfg, device="cpu",
             dataset={"train_size": 100}, model={"blocks": []}, freeze_plan=None, projected=None,
             resumed=resume, start_epoch=1 if resume else 0)
        emit("progress", epoch=1 if resume else 0, batch=3, batches=10, loss=2.0, images_per_s=50.0)
        print("INFO training", file=sys.stderr, flush=True)
    elif cmd == "stop":
        os.makedirs(os.path.join(run_dir, "checkpoints"), exist_ok=True)
        open(os.path.join(run_dir, "checkpoints", "last.pt"), "wb").close()
        emit("checkpoint", epoch=1, batch=0, path="last.pt", reason="stop", bytes=1)
        emit("run_finished", status="stopped", epochs_completed=1, final={}, flops={}, wall_time=1.0)
        sys.exit(0)
'''


@pytest.fixture
def window(studio):
    return studio


@pytest.fixture
def fake_engine(window, tmp_path, monkeypatch):
    script = tmp_path / "fake_engine.py"
    script.write_text(FAKE_ENGINE)
    monkeypatch.setenv("FAKE_RUNS", str(tmp_path / "runs"))
    window.controller.engine_command = [sys.executable, "-u", str(script)]
    return window.controller


def _launch(window, qtbot):
    window.form.set_field("epochs", 4)
    window.form.set_field("interval", 2)
    assert window.launch() is True
    m = window.controller.model
    # the engine has logged its first phase: it is loading the data
    qtbot.waitUntil(lambda: "loading the data" in m.start_phase or "planning" in m.start_phase, timeout=30000)
    return m


# ---------------------------------------------------------------- item 2: starting
def test_launch_shows_a_starting_state_with_stop_available_at_once(window, fake_engine, qtbot):
    window.form.set_field("epochs", 4)
    window.form.set_field("interval", 2)
    assert window.launch() is True
    m = window.controller.model
    window._tick(force=True)
    # from the first moment, before the engine has said anything
    assert m.status == "starting"
    assert window.act_stop.isEnabled() and window.act_kill.isEnabled()
    assert not window.act_launch.isEnabled() and not window.launch_btn.isEnabled()
    assert window.header.badge.text().strip() == "starting"
    qtbot.waitUntil(lambda: "planning" in m.start_phase, timeout=30000)
    window._tick(force=True)
    assert "building the model and planning the run" in window.header.detail.text()
    # the views say the engine is starting, not that the run recorded nothing
    assert "no epochs" not in window.training.empty_label.text()
    # Stop during the start: the engine stops with a checkpoint
    window.stop()
    qtbot.waitUntil(lambda: not window.controller.is_running(), timeout=30000)
    assert m.status == "stopped" and window.act_launch.isEnabled()


# ---------------------------------------------------------------- item 3: progress inside an epoch
def test_batch_progress_shows_speed_and_time_left(window):
    from spfde_gui.model.run_model import RunModel
    m = RunModel()
    m.ingest(make_event("run_started", run_id="r", run_dir="r", device="cpu", dataset={"train_size": 1000},
                        config={"name": "r", "epochs": 10, "batch_size": 100}, model={"blocks": []},
                        freeze_plan=None, projected=None, resumed=False, start_epoch=0))
    m.ingest(make_event("progress", epoch=0, batch=4, batches=10, loss=2.0, images_per_s=100.0))
    m.set_process_state(True)
    window.open_model(m)
    window._tick(force=True)
    text = window.header.rate.text()
    assert window.header.rate.isVisibleTo(window)
    # 6 batches of 100 images left at 100 images/s = 6 s; 9 more epochs of 10 s each
    assert "batch 4/10" in text and "100 images/s" in text
    assert "epoch ends in 6 s" in text and "run ends in 2 min" in text
    assert window.header.progress.format() == "epoch 1/10"
    window._poll_hardware()
    assert window.preview.values["clock"].text() == "measuring its pace…"     # no plan, no epoch yet
    # once the run ends the line goes
    m.ingest(make_event("run_finished", status="completed", epochs_completed=10, final={}, flops={}, wall_time=1.0))
    window._tick(force=True)
    assert not window.header.rate.isVisibleTo(window)
    window._poll_hardware()
    assert window.preview.values["clock"].text() == "no run going"


def test_the_cost_panel_and_header_say_when_the_run_going_ends(window):
    import time as time_mod

    from spfde_gui.model.run_model import RunModel
    t0 = time_mod.time() - 30
    m = RunModel()
    m.ingest({"event": "run_started", "time": t0, "run_id": "r", "run_dir": "r", "device": "cpu",
              "dataset": {"train_size": 1000}, "config": {"name": "r", "epochs": 10, "batch_size": 100},
              "model": {"blocks": []}, "resumed": False, "start_epoch": 0,
              "projected": {"flops": {"dense": 100e9, "spent": 10e9, "saved": {"sparsity": 90e9}, "overhead": {}}}})
    for i in range(3):        # 10 GFLOPs executed every 10 s: 70 GFLOPs, 70 s, to go after the third
        m.ingest({"event": "epoch_end", "time": t0 + 10 * (i + 1), "epoch": i,
                  "flops": {"dense": 10e9 * (i + 1), "spent": 1e9 * (i + 1), "saved": {"sparsity": 9e9 * (i + 1)}}})
    m.ingest(make_event("progress", epoch=3, batch=1, batches=10, loss=2.0, images_per_s=100.0))
    m.set_process_state(True)
    window.open_model(m)
    window._tick(force=True)
    window._poll_hardware()
    ends = time_mod.strftime("%H:%M", time_mod.localtime(t0 + 30 + 70))
    assert window.preview.values["clock"].text().endswith(f"ends about {ends} (1 min left)")
    assert "run ends in 1 min" in window.header.rate.text()


# ---------------------------------------------------------------- item 4: resume and kill
def _stopped_run(run_dir: Path, with_checkpoint: bool) -> Path:
    run_dir.mkdir(parents=True)
    evs = [make_event("run_started", run_id=run_dir.name, run_dir=str(run_dir), device="cpu",
                      dataset={"train_size": 100}, config={"name": "s", "epochs": 4}, model={"blocks": []},
                      freeze_plan=None, projected=None, resumed=False, start_epoch=0),
           make_event("run_finished", status="stopped", epochs_completed=0, final={}, flops={}, wall_time=1.0)]
    (run_dir / "events.jsonl").write_text("".join(dumps(e) + "\n" for e in evs))
    if with_checkpoint:
        (run_dir / "checkpoints").mkdir()
        (run_dir / "checkpoints" / "last.pt").write_bytes(b"x")
    return run_dir


def test_resume_is_disabled_without_a_checkpoint_and_says_why(window, tmp_path):
    run = _stopped_run(tmp_path / "runs" / "no-ckpt", with_checkpoint=False)
    window.open_run(run)
    assert window.model.status == "stopped"
    assert not window.act_resume.isEnabled()
    assert "No checkpoint" in window.act_resume.toolTip() and "checkpoints" in window.act_resume.toolTip()
    assert window.resume() is False and not window.controller.is_running()
    ok = _stopped_run(tmp_path / "runs" / "with-ckpt", with_checkpoint=True)
    window.open_run(ok)
    assert window.act_resume.isEnabled() and "Cannot" not in window.act_resume.toolTip()


def test_kill_asks_first_and_shows_killed(window, fake_engine, qtbot, monkeypatch):
    m = _launch(window, qtbot)
    asked = []
    monkeypatch.setattr(window, "_ask_kill", lambda: asked.append(1) or False)
    assert window.kill() is False                       # the user said no
    assert asked and window.controller.is_running()
    monkeypatch.setattr(window, "_ask_kill", lambda: True)
    assert window.kill() is True
    qtbot.waitUntil(lambda: not window.controller.is_running(), timeout=30000)
    window._tick(force=True)
    assert m.status == "killed"
    assert window.header.badge.text().strip() == "killed"
    assert "killed on request" in window.header.banner.text()


# ---------------------------------------------------------------- item 5: sieve before its first update
def test_sieve_tab_says_when_the_first_update_comes_and_shows_the_split(window, tmp_path):
    from spfde_gui.model.run_model import RunModel
    m = RunModel()
    m.ingest(make_event("run_started", run_id="s", run_dir="s", device="cpu", dataset={"train_size": 1000},
                        config={"name": "s", "epochs": 10, "interval": 3, "sieve": {"ratio": 0.2, "mode": "circular"}},
                        model={"blocks": []}, freeze_plan=None, projected=None, resumed=False, start_epoch=0))
    m.ingest({"event": "epoch_end", "epoch": 0, "train_loss": 1.0, "time": 1.0})
    m.set_process_state(True)
    window.open_model(m)
    window.tabs.setCurrentWidget(window.sieve)
    window.sieve.refresh(force=True)
    assert not window.sieve.is_empty()
    assert window.sieve.numbers["active_size"].text() == "800"
    assert window.sieve.numbers["removed_size"].text() == "200"
    assert "start of epoch 4" in window.sieve.thumb_msg.text() and "ΔT = 3" in window.sieve.thumb_msg.text()


# ---------------------------------------------------------------- item 7: log, status line
def test_engine_log_is_kept_across_resume_with_a_separator(window, fake_engine, qtbot):
    m = _launch(window, qtbot)
    window.controller.send("go")
    qtbot.waitUntil(lambda: m.run_dir is not None and m.status == "running", timeout=30000)
    qtbot.waitUntil(lambda: "INFO training" in window.log.toPlainText(), timeout=30000)
    window.stop()
    qtbot.waitUntil(lambda: not window.controller.is_running(), timeout=30000)
    assert m.status == "stopped" and window.act_resume.isEnabled()
    assert window.resume() is True
    assert m.status == "starting"                       # not "stopped" while the engine starts
    qtbot.waitUntil(lambda: "resuming from the checkpoint" in m.start_phase, timeout=30000)
    text = window.log.toPlainText()
    assert "launch of" in text and "resume of fake-run" in text
    assert text.index("INFO training") < text.index("resume of fake-run")   # the first session's log is kept
    window.stop()
    qtbot.waitUntil(lambda: not window.controller.is_running(), timeout=30000)


def test_blocked_launch_status_line_clears_once_the_fields_are_fixed(window):
    from spfde_gui.window.main_window import BLOCKED_MSG
    window.form.editors["epochs"].input.setText("ten")
    assert window.launch() is False
    assert window.statusBar().currentMessage() == BLOCKED_MSG
    window.form.editors["epochs"].input.setText("8")
    assert window.form.is_valid()
    assert window.statusBar().currentMessage() != BLOCKED_MSG and window.launch_msg.text() == ""


# ---------------------------------------------------------------- item 8: dataset fields
def test_synthetic_only_fields_are_disabled_for_a_real_dataset(window, tmp_path):
    form = window.form
    form.set_field("data.train_size", 777)
    form.set_field("data.root", str(tmp_path))
    form.set_field("data.name", "cifar100")
    ts = form.editors["data.train_size"]
    assert not ts.input.isEnabled() and ts.input.text().replace(" ", "") == "50000"
    assert not form.editors["data.num_classes"].input.isEnabled()
    assert form.editors["data.num_classes"].input.text() == "100"
    assert not form.editors["data.label_noise"].input.isEnabled()
    assert form.config() is not None and form.config().data.train_size == 777   # kept, unused
    form.set_field("data.name", "synthetic")
    assert ts.input.isEnabled() and ts.input.text() == "777"


# ---------------------------------------------------------------- item 9: compare names
def test_compared_runs_of_one_preset_are_named_by_what_differs(window, tmp_path, qtbot):
    runs = tmp_path / "runs"
    for folder, target in (("demo-0001", 0.9), ("demo-0002", 0.8)):
        d = runs / folder
        d.mkdir(parents=True)
        evs = [make_event("run_started", run_id=folder, run_dir=str(d), device="cpu", dataset={},
                          config={"name": "demo", "epochs": 2, "sparsity": {"target": target}},
                          model={"blocks": []}, freeze_plan=None, projected=None, resumed=False, start_epoch=0)]
        evs += [{"event": "epoch_end", "epoch": e, "test_acc": 0.5, "train_acc": 0.5, "time": 1.0 + e} for e in range(2)]
        evs.append(make_event("run_finished", status="completed", epochs_completed=2, final={}, flops={}, wall_time=1.0))
        (d / "events.jsonl").write_text("".join(dumps(e) + "\n" for e in evs))
    window.open_run(runs / "demo-0001")
    window.runs.rescan()
    qtbot.waitUntil(lambda: not window.runs.loading(), timeout=10000)
    window.runs.set_compared([runs / "demo-0002"])
    names = [it.name() for _p, it in window.training._overlay_items]
    assert names and all(n == "sparsity.target=0.8 (test)" for n in names)     # labelled by what differs
    mine = window.training.curves["acc_ep"][1][1][0]          # this run's test curve
    assert mine.name() == "sparsity.target=0.9 (test)"
    legend = window.training.acc_ep.legend
    assert "sparsity.target=0.9 (test)" in [label.text for _s, label in legend.items]
    # the folders head the config-diff table
    t = window.training.diff_table
    assert [t.horizontalHeaderItem(c).text() for c in range(t.columnCount())] == ["demo-0001", "demo-0002"]
    window.runs.set_compared([])
    assert mine.name() == "test"


# ---------------------------------------------------------------- items 10, 11: the preview
def test_preview_labels_model_memory_and_shows_the_process_beside_it(window):
    pv = window.preview
    labels = [pv.values[k].toolTip() for k in ("peak", "process")]
    assert "paper" in labels[0] and "Not the process" in labels[0]
    assert "Resident memory of the running engine" in labels[1]
    pv.set_process_memory(3 * 2**30, True)
    assert pv.values["process"].text() == "3.0 GiB"
    pv.set_process_memory(None, False)
    assert pv.values["process"].text() == "no run going"


def test_a_stale_projection_never_delays_a_newer_one(window, qtbot, monkeypatch):
    from engine.cost import projection as plan
    real = plan.project
    entered = threading.Event()

    def project(cfg):
        if cfg.epochs == 999:            # a projection that would take forever (pure Python)
            entered.set()
            while True:
                pass
        return dict(real(cfg), tag=cfg.epochs)
    monkeypatch.setattr(plan, "project", project)
    pv = window.preview
    window.form.set_field("epochs", 999)
    qtbot.waitUntil(entered.is_set, timeout=20000)
    window.form.set_field("epochs", 6)
    qtbot.waitUntil(lambda: pv.result is not None and pv.result.get("tag") == 6 and not pv.busy(), timeout=20000)
    # the stale projection was interrupted, not left spinning beside the GUI
    assert pv.tasks.wait(10.0) and pv.tasks.running_threads() == 0


# ---------------------------------------------------------------- item 1: Qt's system libraries
def test_missing_xcb_libraries_give_one_apt_get_line(monkeypatch, capsys):
    from spfde_gui.system import qt_libs
    ldd = ("\tlinux-vdso.so.1 (0x00007ffd)\n\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x1)\n"
           "\tlibxcb-icccm.so.4 => not found\n\tlibxcb-keysyms.so.1 => not found\n\tlibxcb-icccm.so.4 => not found\n"
           "\tlibfoo.so.9 => not found\n")
    missing = qt_libs.missing_from_ldd(ldd)
    assert missing == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libfoo.so.9"]
    assert qt_libs.apt_line(missing) == "sudo apt-get install libxcb-icccm4 libxcb-keysyms1 libfoo.so.9"
    assert qt_libs.uses_xcb({"DISPLAY": ":0"}) and not qt_libs.uses_xcb({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"})
    assert not qt_libs.uses_xcb({})
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(qt_libs, "missing_libraries", lambda plugin=None: missing[:2])
    assert qt_libs.main([]) == 1
    err = capsys.readouterr().err
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1" in err and "README" in err
    monkeypatch.setattr(qt_libs, "missing_libraries", lambda plugin=None: [])
    assert qt_libs.main([]) == 0


def test_the_readme_lists_the_xcb_libraries_for_three_systems():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    for pkg in ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "xcb-util-wm", "pacman", "dnf"):
        assert pkg in readme, pkg


# ---------------------------------------------------------------- item 12: looks
def test_runs_table_shows_every_column_at_the_default_width(window, tmp_path, qtbot):
    from spfde_gui.window.runs_panel import COLUMNS
    d = tmp_path / "runs" / "demo-20261201-003249"
    d.mkdir(parents=True)
    evs = [make_event("run_started", run_id=d.name, run_dir=str(d), device="cpu", dataset={},
                      config={"name": "demo", "epochs": 12, "model": {"name": "resnet20"}, "data": {"name": "synthetic"}},
                      model={"blocks": []}, freeze_plan=None, projected=None, resumed=False, start_epoch=0),
           {"event": "epoch_end", "epoch": 0, "test_acc": 0.666, "time": 1.0,
            "flops": {"spent": 1.49e11, "dense": 1.485e12, "saved": {}}},
           make_event("run_finished", status="completed", epochs_completed=12, final={}, flops={}, wall_time=1.0)]
    (d / "events.jsonl").write_text("".join(dumps(e) + "\n" for e in evs))
    window.resize(1440, 900)          # the window's own default size
    window.left.setCurrentWidget(window.runs)
    window.runs.rescan()
    qtbot.waitUntil(lambda: not window.runs.loading(), timeout=10000)
    window.runs.rescan()
    table = window.runs.table
    qtbot.waitUntil(lambda: table.item(0, 6) is not None and table.item(0, 6).text() == "10.0%", timeout=10000)
    used = sum(table.columnWidth(c) for c in range(len(COLUMNS)))
    assert used <= table.viewport().width(), (used, table.viewport().width())
    assert "GFLOPs" in table.item(0, 6).toolTip() and "resnet20" in table.item(0, 1).toolTip()


# ---------------------------------------------------------------- item 6: the report after a resume
def test_report_header_gives_first_start_resumes_and_total_training_time(tmp_path):
    from spfde_gui.report import builder, load_run
    d = tmp_path / "resumed-run"
    d.mkdir()
    t0, t1 = 1_700_000_000.0, 1_700_003_600.0          # first start; resumed an hour later
    common = {"run_id": "r", "run_dir": str(d), "device": "cpu", "dataset": {}, "model": {"blocks": []},
              "config": {"name": "r", "epochs": 2}, "freeze_plan": None, "projected": None}
    evs = [dict(make_event("run_started", resumed=False, start_epoch=0, **common), time=t0),
           {"event": "epoch_end", "epoch": 0, "test_acc": 0.5, "epoch_time": 30.0, "time": t0 + 31},
           dict(make_event("run_started", resumed=True, start_epoch=1, **common), time=t1),
           {"event": "epoch_end", "epoch": 1, "test_acc": 0.6, "epoch_time": 30.0, "time": t1 + 31},
           dict(make_event("run_finished", status="completed", epochs_completed=2, final={}, flops={},
                           wall_time=75.0), time=t1 + 32)]
    (d / "events.jsonl").write_text("".join(dumps(e) + "\n" for e in evs))
    m = load_run(d)
    t = m.timing()
    assert t["first_start"] == t0 and t["resumes"] == [t1] and t["training_time"] == 75.0
    html_text = builder.render_html(m, {})
    assert "started 2023-11-14 22:13 UTC" in html_text and "resumed 1×" in html_text   # not the resume time
    assert "2023-11-14 23:13:20 UTC" in html_text and "1:15 min" in html_text


def test_compare_labels_name_the_folder_only_where_the_settings_do_not_tell_runs_apart():
    from spfde_gui.model.run_model import RunModel
    from spfde_gui.views.training import LEGEND_MAX_CHARS, compare_labels

    def run(folder, **cfg):
        m = RunModel(run_dir=f"/runs/{folder}")
        m.config = {"name": "demo", **cfg}
        return m
    a, b, c = run("a-1", seed=0), run("b-2", seed=0), run("c-3", seed=1)
    labels = compare_labels([a, b, c])
    assert labels[id(c)] == "seed=1"                               # unique: the setting alone
    assert labels[id(a)] == "a-1 · seed=0" and labels[id(b)] == "b-2 · seed=0"   # alike: with their folder
    long = run("d-4", note="x" * 200)
    text = compare_labels([long, run("e-5", note="y")])[id(long)]
    assert len(text) == LEGEND_MAX_CHARS and "…" in text and text.startswith("note=x")
