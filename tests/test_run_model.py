"""RunModel on recorded event files: replay, tolerance of torn/unknown lines, resume
truncation, status, freeze matrices and summaries."""

import numpy as np
import pytest

from engine.run.events import dumps, make_event
from spfde_gui.model.run_model import COLUMNS, RunModel, scan_runs

BLOCKS = ["stem", "layer1.0", "layer2.0", "head"]


def started(resumed=False, start_epoch=0, epochs=6):
    return make_event(
        "run_started", run_id="r1", run_dir="x", device="cpu", dataset={"train": 100, "test": 20},
        config={"name": "unit", "epochs": epochs, "model": {"name": "resnet20"}, "data": {"name": "synthetic"}},
        model={"name": "resnet20", "params": 10, "blocks": [{"name": b, "params": 1, "forward_flops": 1} for b in BLOCKS]},
        freeze_plan={"start_epoch": 2, "frozen_prefix": [0, 0, 1, 2, 2, 2]},
        projected={"flops": {"spent": 5.0}}, resumed=resumed, start_epoch=start_epoch)


def epoch_end(e, acc, frozen=(), loss=None):
    return make_event(
        "epoch_end", epoch=e, epochs=6, train_loss=1.0 / (e + 1) if loss is None else loss,
        train_acc=0.1 * e, test_loss=0.5, test_acc=acc, lr=0.1, lrs={}, epoch_time=0.2,
        samples=100, samples_total=100 * (e + 1),
        memory={"kind": "cpu", "peak_bytes": 1000 + e, "rss_bytes": 2000},
        flops={"spent": 10.0 * (e + 1), "dense": 20.0 * (e + 1),
               "saved": {"sparsity": 5.0 * (e + 1), "freeze": 3.0 * e, "sieve": 2.0 * (e + 1)}},
        flops_epoch={}, density=0.1, frozen_blocks=list(frozen), active_samples=80)


def write(run_dir, events, torn_tail=None):
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "events.jsonl", "w") as fh:
        for ev in events:
            fh.write((ev if isinstance(ev, str) else dumps(ev)) + "\n")
        if torn_tail:
            fh.write(torn_tail)
    return run_dir


def test_replay_tolerates_torn_last_line_and_unknown_event(tmp_path):
    evs = [started(), epoch_end(0, 0.3), make_event("brand_new_event", foo=[1, 2]),
           epoch_end(1, 0.5), "not json at all {", epoch_end(2, 0.4, frozen=["stem"])]
    torn = dumps(epoch_end(3, 0.9))[:40]
    m = RunModel.load(write(tmp_path / "run", evs, torn_tail=torn))
    assert m.n_epochs == 3
    np.testing.assert_allclose(m.column("test_acc"), [0.3, 0.5, 0.4])
    np.testing.assert_allclose(m.column("saved_sparsity"), [5, 10, 15])
    assert m.n_skipped >= 1
    # events ended without run_finished and no process: crashed
    assert m.status == "crashed"
    m.set_process_state(True)
    assert m.status == "running"
    assert m.name == "unit"
    assert set(m.columns()) >= {"epoch", "flops_spent", "memory_peak", "active_samples"}
    assert all(len(m.column(c)) == 3 for c in COLUMNS)


def test_null_metrics_become_nan_and_columns_are_read_only():
    m = RunModel()
    m.ingest(started())
    ev = epoch_end(0, None)
    ev["test_loss"] = None
    m.ingest(ev)
    assert np.isnan(m.column("test_acc")[0]) and np.isnan(m.column("test_loss")[0])
    with pytest.raises(ValueError):
        m.column("train_loss")[0] = 5
    with pytest.raises(KeyError, match="unknown column"):
        m.column("accuracy")


def test_status_transitions_and_version():
    m = RunModel()
    assert m.status == "new"
    v0 = m.version
    m.ingest(started())
    assert m.status == "running" and m.version > v0
    m.ingest(make_event("run_finished", status="stopped", epochs_completed=1, final={}, flops={}, wall_time=1.0))
    assert m.status == "stopped"
    # resuming clears the finished state
    m.ingest(started(resumed=True, start_epoch=1))
    assert m.status == "running"
    m.ingest(make_event("error", message="CUDA out of memory", traceback="tb"))
    assert m.status == "crashed" and m.summary()["error"] == "CUDA out of memory"


def test_resume_truncates_superseded_epochs(tmp_path):
    evs = [started(), epoch_end(0, 0.1), epoch_end(1, 0.2),
           make_event("checkpoint", epoch=1, batch=0, path="c", reason="periodic", bytes=1),
           epoch_end(2, 0.3), epoch_end(3, 0.35, frozen=["stem"]),
           make_event("freeze", epoch=3, block="stem", block_index=0, flops_saved=1.0),
           # killed here; resumed from the checkpoint after epoch 1
           started(resumed=True, start_epoch=2), epoch_end(2, 0.31), epoch_end(3, 0.41),
           make_event("run_finished", status="completed", epochs_completed=4, final={"test_acc": 0.41},
                      flops={"spent": 40.0, "dense": 80.0, "saved": {"sparsity": 20.0, "freeze": 9.0, "sieve": 8.0}},
                      wall_time=3.0)]
    m = RunModel.load(write(tmp_path / "r", evs))
    np.testing.assert_array_equal(m.column("epoch"), [0, 1, 2, 3])
    np.testing.assert_allclose(m.column("test_acc"), [0.1, 0.2, 0.31, 0.41])
    assert m.freeze_events == []          # the freeze at epoch 3 belonged to the superseded run
    assert m.status == "completed"
    s = m.summary()
    assert s["final_test_acc"] == pytest.approx(0.41) and s["best_test_acc"] == pytest.approx(0.41)
    assert s["flops_saved"]["freeze"] == 9.0 and s["epochs_done"] == 4


def _updates(epoch):
    return [make_event("freeze", epoch=epoch, block="stem", block_index=0, flops_saved=1.0),
            make_event("sieve_update", epoch=epoch, active_size=80, removed_size=20, k=1,
                       initial_waiting=0, histogram={"edges": [0, 1], "counts": [80]},
                       swapped_in=[], swapped_out=[]),
            make_event("mask_update", epoch=epoch, layers=[], density=0.1)]


@pytest.mark.parametrize("start_batch", [3, 0, None])
def test_resume_keeps_the_start_epochs_updates_only_when_resumed_mid_epoch(tmp_path, start_batch):
    # Epoch 2's updates are emitted at its start; the GUI's Stop checkpoints mid-epoch 2.
    evs = [started(), epoch_end(0, 0.1), epoch_end(1, 0.2)] + _updates(2) + [
        make_event("progress", epoch=2, batch=3, batches=8, loss=1.0, images_per_s=10.0),
        make_event("checkpoint", epoch=2, batch=3, path="c", reason="stop", bytes=1),
        make_event("run_finished", status="stopped", epochs_completed=2, final={}, flops={}, wall_time=1.0)]
    resumed = started(resumed=True, start_epoch=2)
    if start_batch is not None:
        resumed["start_batch"] = start_batch
    evs.append(resumed)
    m = RunModel.load(write(tmp_path / "r", evs))
    lists = (m.freeze_events, m.sieve_updates, m.mask_updates)
    if start_batch:
        # the engine resumes inside epoch 2 and does not re-emit its updates: they must survive
        assert [[e["epoch"] for e in lst] for lst in lists] == [[2], [2], [2]]
    else:
        # resumed at the epoch's start, the engine re-emits them: the old ones are superseded
        assert all(lst == [] for lst in lists)
    np.testing.assert_array_equal(m.column("epoch"), [0, 1])
    # the resumed run's own events follow; later-epoch updates of a superseded run still go
    m.ingest_many(([] if start_batch else _updates(2)) + [epoch_end(2, 0.3, frozen=["stem"])] + _updates(3))
    assert [e["epoch"] for e in m.freeze_events] == [2, 3]
    assert m.sieve_latest()["epoch"] == 3
    m.ingest(started(resumed=True, start_epoch=3))      # a later resume at an epoch's start
    assert [e["epoch"] for e in m.freeze_events] == [2]
    np.testing.assert_array_equal(m.column("epoch"), [0, 1, 2])


def test_non_fatal_error_is_a_warning_not_a_crash():
    m = RunModel()
    m.ingest(started())
    m.set_process_state(True)
    m.ingest(epoch_end(0, 0.1))
    m.ingest(make_event("error", message="No space left on device", traceback="tb", fatal=False))
    assert m.status == "running" and m.error is None
    assert [w["message"] for w in m.warnings] == ["No space left on device"]
    m.ingest(epoch_end(1, 0.2))
    m.ingest(make_event("run_finished", status="completed", epochs_completed=2, final={}, flops={}, wall_time=1.0))
    m.set_process_state(False)
    assert m.status == "completed"
    s = m.summary()
    assert s["error"] is None and s["warnings"] == ["No space left on device"]
    # a fatal error (explicit or without the flag) still crashes the run
    for fatal in ({"fatal": True}, {}):
        c = RunModel()
        c.ingest(started())
        c.ingest(make_event("error", message="boom", traceback="tb", **fatal))
        assert c.status == "crashed" and c.error["message"] == "boom" and c.warnings == []


def test_run_finished_outranks_an_earlier_error(tmp_path):
    # an engine that did not flag its checkpoint failure non-fatal, then finished the run
    evs = [started(), epoch_end(0, 0.1),
           make_event("error", message="checkpoint write failed", traceback="tb"),
           epoch_end(1, 0.2),
           make_event("run_finished", status="completed", epochs_completed=2, final={}, flops={}, wall_time=1.0)]
    m = RunModel.load(write(tmp_path / "r", evs))
    assert m.status == "completed" and m.error is None
    assert [w["message"] for w in m.warnings] == ["checkpoint write failed"]
    # without the run_finished the same error is a crash
    m = RunModel.load(write(tmp_path / "s", evs[:-1]))
    assert m.status == "crashed"


def test_freeze_matrices_actual_and_planned():
    m = RunModel()
    m.ingest(started())
    m.ingest_many([epoch_end(0, 0.1), epoch_end(1, 0.1, frozen=["stem"]),
                   epoch_end(2, 0.1, frozen=["stem", "layer1.0"]), epoch_end(3, 0.1, frozen=[0, 1, 2])])
    fm = m.frozen_matrix()
    assert fm.shape == (4, 4)
    np.testing.assert_array_equal(fm[:, 3], [1, 1, 1, 0])
    np.testing.assert_array_equal(fm.sum(axis=0), [0, 1, 2, 3])
    pm = m.planned_frozen_matrix()
    assert pm.shape == (4, 6)
    np.testing.assert_array_equal(pm.sum(axis=0), [0, 0, 1, 2, 2, 2])


def test_buffers_grow_past_initial_capacity():
    m = RunModel()
    m.ingest_many(epoch_end(e, e / 1000) for e in range(1000))
    assert m.n_epochs == 1000
    assert m.column("test_acc")[-1] == pytest.approx(0.999)
    assert m.column("epoch")[500] == 500


def test_poll_file_tails_a_growing_file(tmp_path):
    run = write(tmp_path / "live", [started(), epoch_end(0, 0.1)], torn_tail=dumps(epoch_end(1, 0.2))[:30])
    m = RunModel(run)
    m.set_process_state(True)
    assert m.poll_file() == 2 and m.n_epochs == 1
    full = dumps(epoch_end(1, 0.2))
    with open(run / "events.jsonl", "a") as fh:
        fh.write(full[30:] + "\n" + dumps(epoch_end(2, 0.3)) + "\n")
    assert m.poll_file() == 2
    np.testing.assert_allclose(m.column("test_acc"), [0.1, 0.2, 0.3])


def test_scan_runs_lists_run_dirs(tmp_path):
    write(tmp_path / "a-1", [started()])
    write(tmp_path / "b-2", [started(), epoch_end(0, 0.5)])
    (tmp_path / "not-a-run").mkdir()
    names = {p.name for p in scan_runs(tmp_path)}
    assert names == {"a-1", "b-2"}
    assert scan_runs(tmp_path / "missing") == []


def test_replay_keeps_only_the_latest_progress(tmp_path):
    prog = [make_event("progress", epoch=0, batch=b, batches=4, loss=1.0, images_per_s=10.0) for b in (1, 2, 3)]
    m = RunModel.load(write(tmp_path / "p", [started()] + prog + [epoch_end(0, 0.1)]))
    assert m.progress["batch"] == 3 and m.n_events == 5
    fin = make_event("run_finished", status="completed", epochs_completed=1, final={}, flops={}, wall_time=1.0)
    m = RunModel.load(write(tmp_path / "q", [started()] + prog + [fin]))
    assert m.progress is None and m.status == "completed"
