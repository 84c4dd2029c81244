"""The window keeps its size and its tabs keep their place while a run goes through start,
progress, stop, resume, kill and a sweep's long names (the header's texts used to set the
window's minimum width: 1440 -> 1766 px; the tab bar moved ~19 px down as a run started)."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import QPoint

from engine.run.events import make_event

pytestmark = pytest.mark.gui

BLOCKS = ["stem", "layer1.0", "head"]
LONG = "/home/researcher/experiments/" + "very-long-folder-name-" * 6 + "sweeps/cifar100-table2-20261206-151500/cells/"


def _started(run_dir, resumed=False):
    return make_event("run_started", run_id="r", run_dir=run_dir, device="cpu", dataset={}, resumed=resumed,
                      start_epoch=0, config={"name": "sparsity.target=0.98,freeze.target=0.2,sieve.ratio=0.3,seed=2"
                                                       * 2, "epochs": 12, "batch_size": 64},
                      model={"blocks": [{"name": b} for b in BLOCKS]}, freeze_plan=None, projected=None)


def _epoch(e):
    return make_event("epoch_end", epoch=e, epochs=12, train_loss=1.0, train_acc=0.5, test_loss=1.0, test_acc=0.5,
                      lr=0.1, lrs={}, epoch_time=1.0, samples=640, samples_total=640 * (e + 1),
                      memory={"kind": "cpu"}, flops={"spent": 1e9, "dense": 2e9, "saved": {}}, flops_epoch={},
                      density=0.1, frozen_blocks=[], active_samples=640)


def test_window_width_and_tab_bar_never_move(studio, qtbot):
    from spfde_gui.model.run_model import RunModel
    w = studio
    w.resize(1200, 800)
    qtbot.wait(50)

    def geometry():
        w.header.show_model(w.model)
        qtbot.wait(20)
        return (w.width(), w.minimumSizeHint().width() <= 1200,
                w.tabs.tabBar().mapTo(w, QPoint(0, 0)).y())

    m = RunModel()
    m.run_dir = __import__("pathlib").Path(LONG + "cell-0007-" + "x" * 80)
    w.open_model(m)
    before = geometry()
    seen = {}
    m.begin_session(resume=False)                                   # launched: *starting*
    seen["starting"] = geometry()
    m.ingest_many([_started(str(m.run_dir)), _epoch(0)])
    m.ingest(make_event("progress", epoch=1, batch=40, batches=100, loss=1.0, images_per_s=812.5))
    seen["running"] = geometry()
    m.ingest(make_event("run_finished", status="stopped", epochs_completed=1, final={}, flops={}, wall_time=2.0))
    seen["stopped"] = geometry()
    m.begin_session(resume=True)                                    # resumed: *starting* again
    seen["resuming"] = geometry()
    m.ingest_many([_started(str(m.run_dir), resumed=True), _epoch(1)])
    m.ingest(make_event("progress", epoch=2, batch=99, batches=100, loss=1.0, images_per_s=99999.0))
    seen["resumed"] = geometry()
    for state, g in seen.items():
        assert g == before, f"{state}: (width, fits, tab bar y) {g} != {before}"
    assert w.header.detail.full_text().endswith("x" * 80)           # elided, not lost
    assert LONG in w.header.detail.toolTip()

    # a kill and its long message: the banner may take room, the window never widens
    m.mark_killed()
    m.ingest(make_event("error", message="engine was killed on request at " + LONG * 3, traceback=""))
    g = geometry()
    assert g[:2] == before[:2], f"killed: {g} != {before}"
