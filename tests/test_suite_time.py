"""The suite's own time plumbing (tests/suite_time.py): worker count, thread pin, serial group."""
from __future__ import annotations

import os

import pytest
import suite_time

from engine.training.threads import usable_cores


def test_auto_workers_one_per_usable_core_or_the_override(monkeypatch):
    monkeypatch.delenv("SPFDE_TEST_WORKERS", raising=False)
    assert suite_time.auto_workers() == usable_cores()
    monkeypatch.setenv("SPFDE_TEST_WORKERS", "3")
    assert suite_time.auto_workers() == 3
    for bad in ("0", "-1", "two"):
        monkeypatch.setenv("SPFDE_TEST_WORKERS", bad)
        with pytest.raises(ValueError, match="SPFDE_TEST_WORKERS"):
            suite_time.auto_workers()


def test_this_process_runs_one_torch_thread():
    import torch
    if os.environ.get("SPFDE_TEST_THREADS", "1") == "1":
        assert os.environ["OMP_NUM_THREADS"] == "1"
        assert torch.get_num_threads() == 1


def test_bad_thread_override_is_an_error(monkeypatch):
    monkeypatch.setenv("SPFDE_TEST_THREADS", "0")
    with pytest.raises(ValueError, match="SPFDE_TEST_THREADS"):
        suite_time.pin_threads()


class _Item:
    def __init__(self, fixtures, gui=False):
        self.fixturenames = fixtures
        self._gui = gui

    def get_closest_marker(self, name):
        return object() if (name == "gui" and self._gui) else None


def test_qt_tests_and_only_they_join_the_serial_group():
    assert suite_time.needs_serial(_Item(["qtbot", "tmp_path"]))
    assert suite_time.needs_serial(_Item(["tmp_path"], gui=True))
    assert not suite_time.needs_serial(_Item(["tmp_path"]))


def test_summary_names_wall_time_workers_and_load():
    line = suite_time.Clock().summary(2, 1)
    assert "suite wall time" in line and "2 workers" in line and "load average" in line
