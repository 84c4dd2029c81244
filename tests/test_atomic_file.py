"""engine.atomic_file.write_text, used by the config, the tracker ids, the throughput cache and
the studio's timm names: the old content or the new, and no temporary file left behind when
the write fails (a full disk)."""
from __future__ import annotations

import errno
import json
import os

import pytest

from engine import atomic_file


def _full_disk(monkeypatch):
    def no_space(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "replace", no_space)


def test_the_new_content_replaces_the_old(tmp_path):
    p = tmp_path / "a.json"
    atomic_file.write_text(p, "old")
    atomic_file.write_text(p, "new ✓")
    assert p.read_text(encoding="utf-8") == "new ✓" and sorted(os.listdir(tmp_path)) == ["a.json"]


def test_a_failed_write_keeps_the_old_content_and_leaves_no_temporary(tmp_path, monkeypatch):
    p = tmp_path / "a.json"
    p.write_text("old")
    _full_disk(monkeypatch)
    with pytest.raises(OSError, match="No space"):
        atomic_file.write_text(p, "new")
    assert p.read_text() == "old" and os.listdir(tmp_path) == ["a.json"]


def test_the_throughput_cache_and_the_timm_names_leave_no_temporary_on_a_full_disk(tmp_path, monkeypatch):
    from engine import config as C
    from engine.cost import wall_time
    from spfde_gui.system import model_tables
    path = tmp_path / "throughput.json"
    cfg = C.from_dict({})
    wall_time.record(cfg, "cpu", 1e9, "run", path=path)
    before = path.read_text()
    names = tmp_path / "timm-models-1.0.json"
    _full_disk(monkeypatch)
    wall_time.record(cfg, "cpu", 2e9, "run", path=path)      # advisory: the failure is swallowed
    model_tables._write_names(names, ["resnet18"])
    assert path.read_text() == before and json.loads(before)
    assert sorted(os.listdir(tmp_path)) == ["throughput.json"]
