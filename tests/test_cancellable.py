"""spfde_gui.system.cancellable.run: subprocess.run for the studio's tasks, which kills its
child as soon as the task is cancelled (a worker thread left running when the window
closes aborts the studio); and the Slurm queue that uses it."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from spfde_gui.system import cancellable


def _sleeper(pid_file):
    return [sys.executable, "-c", f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
                                  "time.sleep(60)"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:          # reaped or a zombie counts as gone
        return f.read().split()[2] != "Z"


class Cancelled(BaseException):
    pass


def _cancel_once_started(pid_file):
    def check():
        if pid_file.exists() and pid_file.read_text():
            raise Cancelled
    return check


def test_a_cancelled_task_kills_its_subprocess_at_once(tmp_path):
    pid_file = tmp_path / "pid"
    with pytest.raises(Cancelled):                     # raised while the child still sleeps
        cancellable.run(_sleeper(pid_file), 120, _cancel_once_started(pid_file))
    assert not _alive(int(pid_file.read_text()))       # and it was killed, not left running


def test_the_output_and_the_time_limit_are_those_of_subprocess_run(tmp_path):
    r = cancellable.run([sys.executable, "-c", "import sys; print('x' * 100000); print('err', file=sys.stderr); "
                                               "sys.exit(3)"], 60, lambda: None)
    assert (r.returncode, len(r.stdout), r.stderr) == (3, 100001, "err\n")
    pid_file = tmp_path / "pid"
    with pytest.raises(subprocess.TimeoutExpired):
        cancellable.run(_sleeper(pid_file), 0.5)
    assert not _alive(int(pid_file.read_text()))


def test_a_squeue_that_hangs_is_killed_when_the_panel_closes(tmp_path, monkeypatch):
    # a busy slurmctld keeps squeue waiting: the cluster panel's refresh must not outlive it
    from spfde_gui.model import slurm_queue
    pid_file = tmp_path / "pid"
    fake = tmp_path / "bin" / "squeue"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(Cancelled):
        slurm_queue.queue_rows(_cancel_once_started(pid_file))
    assert not _alive(int(pid_file.read_text().strip()))
