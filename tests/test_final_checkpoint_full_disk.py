"""A final checkpoint that fails on a full disk: retried once after the engine's own temp
files are removed; if it still fails the run ends finished_unsaved (not failed), with what
to do, and the earlier checkpoint stays valid."""
from __future__ import annotations

import errno
import io
import json

import pytest

torch = pytest.importorskip("torch")
from engine.run import folder as run_dir_mod  # noqa: E402
from engine.run.events import FINISHED_UNSAVED  # noqa: E402
from engine.training import checkpoint as ckpt  # noqa: E402
from tests.test_faults import _cfg  # noqa: E402


def _fit(tmp_path, monkeypatch, fail_end_times):
    from engine.run.telemetry import Emitter
    from engine.training.trainer import Trainer
    cfg = _cfg(tmp_path, epochs=2, interval=1, **{"checkpoint.every": 1})
    d = run_dir_mod.create(cfg)
    real = ckpt.save
    calls = {"end": 0}

    def save(run_dir, state, epoch_tag=None, keep=2):
        if epoch_tag is None and state["position"]["epoch"] >= cfg.epochs:
            calls["end"] += 1
            if calls["end"] <= fail_end_times:
                (ckpt.checkpoint_dir(run_dir) / ".last.pt.stale.tmp").write_bytes(b"x" * 100)
                raise ckpt.CheckpointError(str(OSError(errno.ENOSPC, "No space left on device")))
        return real(run_dir, state, epoch_tag=epoch_tag, keep=keep)

    monkeypatch.setattr(ckpt, "save", save)
    em = Emitter(d, stream=io.StringIO(), progress_bar=False)
    status = Trainer(cfg, d, em).fit()
    em.close()
    evs = [json.loads(x) for x in (d / "events.jsonl").read_text().splitlines()]
    return d, status, evs, calls


def test_one_failure_is_retried_after_freeing_temp_files(tmp_path, monkeypatch):
    d, status, evs, calls = _fit(tmp_path, monkeypatch, fail_end_times=1)
    assert status == "completed" and calls["end"] == 2
    assert not list(ckpt.checkpoint_dir(d).glob(".*.tmp"))


def test_persistent_failure_ends_finished_unsaved_with_advice(tmp_path, monkeypatch):
    d, status, evs, calls = _fit(tmp_path, monkeypatch, fail_end_times=99)
    assert status == FINISHED_UNSAVED and calls["end"] == 2
    fin = [e for e in evs if e["event"] == "run_finished"][-1]
    assert fin["status"] == FINISHED_UNSAVED and fin["epochs_completed"] == 2
    err = [e for e in evs if e["event"] == "error"][-1]
    assert err["fatal"] is False and "spfde-train resume" in err["message"]
    state, path, _ = ckpt.load_newest(d)          # the earlier checkpoint is still valid
    assert path.exists()
