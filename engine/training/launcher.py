"""Starting a distributed run: torchrun (``torch.distributed.run``) as a child of
``spfde-train run|resume`` on one machine. Pure Python: the CLI decides and launches without
loading torch; each worker then builds its per-rank context (engine.training.distributed).

``spfde-train run`` with ``distributed.nproc_per_node > 1`` creates and locks the run
directory, then runs torchrun here (``launch``); each worker runs
``python -m engine run ... --attach DIR``. Several machines start torchrun on each node by
hand (docs/distributed.md).
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from engine import config as config_mod
from engine.config import ConfigError
from engine.run.events import read_events
from engine.run.lock import held_for_children
from engine.run.telemetry import Emitter

log = logging.getLogger("engine.training.launcher")



def under_torchrun() -> bool:
    env = os.environ
    return "TORCHELASTIC_RUN_ID" in env or all(k in env for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def needs_launch(cfg) -> bool:
    """True when this process must start torchrun (``nproc_per_node > 1`` outside torchrun)."""
    if under_torchrun():
        return False
    dc = cfg.distributed
    if dc.nnodes > 1:
        raise ConfigError([("distributed.nnodes", f"{dc.nnodes} machines: start torchrun on each of them "
                                                  "(docs/distributed.md gives the command per node)")])
    return dc.nproc_per_node > 1


def torchrun_command(cfg, worker_argv: list[str]) -> list[str]:
    """The torchrun command line of a one-machine job; the workers run ``-m engine worker_argv``."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1",
            f"--nproc-per-node={cfg.distributed.nproc_per_node}", "--max-restarts=0",
            "-m", "engine", *worker_argv]


def launch(cfg, run_dir: Path, worker_argv: list[str]) -> int:
    """Run torchrun as a child and wait. SIGTERM/SIGINT are passed on once as SIGTERM (the
    workers stop together with a checkpoint); a second one kills the job. If the job ends
    badly without saying why (rank 0 itself was killed), an ``error`` event says so."""
    env = dict(os.environ)
    env.update(held_for_children(run_dir))    # the workers' rank 0 must not lock it again
    gpus = config_mod.gpu_list(cfg)
    if gpus is not None:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpus)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // cfg.distributed.nproc_per_node)))
    cmd = torchrun_command(cfg, worker_argv)
    log.info("starting %d processes: %s", cfg.distributed.nproc_per_node, " ".join(cmd))
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, preexec_fn=_die_with_parent)
    signals = {"n": 0}

    def forward(signum, frame):
        signals["n"] += 1
        try:
            if signals["n"] == 1:
                proc.send_signal(signal.SIGTERM)
            else:
                os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    old = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        rc = proc.wait()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if rc != 0:
        # torchrun exits non-zero after passing on a signal even when every worker stopped
        # cleanly; the run's own last event says how it ended.
        if _last_event(run_dir) == "run_finished":
            return 0
        _post_mortem(run_dir, rc)
    return rc


def _last_event(run_dir: Path) -> str | None:
    last = None
    path = Path(run_dir) / "events.jsonl"
    if path.is_file():
        for ev in read_events(path):
            last = ev.get("event")
    return last


def _die_with_parent() -> None:
    # Linux: torchrun gets SIGTERM if this launcher dies (e.g. the studio killed it).
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux
        pass


def _post_mortem(run_dir: Path, rc: int) -> None:
    if _last_event(run_dir) in ("error", "run_finished"):
        return
    em = Emitter(run_dir)
    try:
        em.emit("error", message=f"the distributed job ended with exit status {rc} without reporting why "
                                 "(rank 0 was killed or crashed hard); resume from the last checkpoint",
                traceback="", rank=0, fatal=True)
    finally:
        em.close()
