"""A subprocess that a studio task can cancel (plain Python, no Qt).

The studio runs short engine and Slurm commands on the task runner's worker threads
(spfde_gui.system.tasks). A blocking ``subprocess.run`` there cannot be interrupted, so a
window closing meanwhile left a worker thread running when Qt destroyed it, and Qt aborts
the process ("QThread: Destroyed while thread ... is still running"). ``run`` polls
instead, and kills the child as soon as the task is cancelled.
"""
from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

POLL_S = 0.1                 # how often a running subprocess's task is asked whether it was cancelled


def run(argv: list[str], timeout: float, check: Callable[[], None] | None = None,
        env: dict | None = None) -> subprocess.CompletedProcess:
    """``subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)`` that
    calls ``check()`` (a task's ``state.check``) every POLL_S: whatever it raises, or an
    interrupt the task runner raises meanwhile, kills the child first."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                out, err = proc.communicate(timeout=POLL_S)     # retrying loses no output
                return subprocess.CompletedProcess(argv, proc.returncode, out, err)
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:
                    raise subprocess.TimeoutExpired(argv, timeout) from None
                if check is not None:
                    check()
    except BaseException:
        proc.kill()
        try:
            proc.communicate(timeout=5)                          # reap it, close the pipes
        except (OSError, subprocess.SubprocessError):
            pass
        raise
