"""The torchrun lock: a distributed worker's rank 0 holds the run lock unless the launcher
that started torchrun holds it; a second job on the folder is refused."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from engine.run.lock import LOCK_HELD_ENV, RunLock, RunLockedError, held_by_launcher, held_for_children, lock_for_worker


def test_rank0_takes_the_lock_and_other_ranks_none(tmp_path, monkeypatch):
    monkeypatch.delenv(LOCK_HELD_ENV, raising=False)
    assert lock_for_worker(tmp_path, rank=1) is None
    lock = lock_for_worker(tmp_path, rank=0)
    assert lock is not None
    try:
        # a second job's rank 0 (another process) is refused while the first holds it
        code = textwrap.dedent(f"""
            import sys
            from engine.run.lock import RunLockedError, lock_for_worker
            try:
                lock_for_worker({str(tmp_path)!r}, rank=0)
            except RunLockedError as exc:
                print("refused:", exc); sys.exit(3)
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": os.getcwd()}, timeout=60)
        assert out.returncode == 3, out.stderr
        assert f"engine pid {os.getpid()}" in out.stdout
    finally:
        lock.release()


def test_workers_of_the_holding_launcher_take_no_second_lock(tmp_path, monkeypatch):
    with RunLock(tmp_path):
        monkeypatch.setenv(LOCK_HELD_ENV, held_for_children(tmp_path)[LOCK_HELD_ENV])
        assert held_by_launcher(tmp_path)
        assert lock_for_worker(tmp_path, rank=0) is None


def test_a_stale_or_foreign_variable_is_not_trusted(tmp_path, monkeypatch):
    # names this process, but it does not hold the lock: rank 0 must lock
    monkeypatch.setenv(LOCK_HELD_ENV, held_for_children(tmp_path)[LOCK_HELD_ENV])
    assert not held_by_launcher(tmp_path)
    lock = lock_for_worker(tmp_path, rank=0)
    assert lock is not None
    lock.release()
    # names another folder
    other = tmp_path / "other"
    other.mkdir()
    with RunLock(other):
        monkeypatch.setenv(LOCK_HELD_ENV, held_for_children(other)[LOCK_HELD_ENV])
        assert not held_by_launcher(tmp_path)


def test_cli_resume_worker_refuses_a_locked_folder(tmp_path, monkeypatch):
    from engine import cli
    monkeypatch.delenv(LOCK_HELD_ENV, raising=False)
    monkeypatch.setenv("RANK", "0")
    with RunLock(tmp_path):
        with pytest.raises(RunLockedError):
            lock_for_worker(tmp_path, 0)
        called = []
        assert cli._worker_locked(tmp_path, lambda: called.append(1) or 0) != 0
        assert called == []
