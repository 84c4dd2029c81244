"""The experiment trackers' cost: the demo run with no tracker, TensorBoard, MLflow (a
local ``mlflow server``, SQLite backend) and W&B offline, side by side, and the longest
stall of the training loop with an unreachable MLflow server.

Goals (issue 22): each tracker costs at most 1% of the training time, and no stall of the
loop is longer than 100 ms with an unreachable server.

Each round runs the real Trainer once per variant (the order rotates every round, so drift
of a shared machine spreads over all of them) and reports, per variant,

* the run's wall time (training, evaluation, checkpoints, the trackers' closing), fastest
  over the rounds, and its ratio to no tracker;
* the time the training thread itself spent in the trackers' hooks (``on_event``: handing
  records to the queues; ``on_run_end``: the bounded wait for the queues to drain), as a
  share of the training time. The whole-run ratio also holds the worker threads' share of
  the CPU; on a loaded 2-core machine it is noisier than the hook time.

The stall part runs the same training against ``http://127.0.0.1:<closed port>`` (connection
refused) and against a socket that accepts connections and never answers (a hung server),
and reports the longest single ``on_event`` call (the loop's only contact with a tracker),
the end-of-run wait (bounded by ``trackers.flush_timeout_s``) and the warnings emitted.

    .venv/bin/python benchmarks/bench_trackers.py         # the demo's schedule on 1500 samples, 2 rounds: ~6 min on 2 cores
    .venv/bin/python benchmarks/bench_trackers.py --train-size 5000 --test-size 1000 --rounds 3   # the whole demo
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.config import load_preset  # noqa: E402
from engine.run import folder as run_dir_mod  # noqa: E402
from engine.run.telemetry import Emitter  # noqa: E402
from engine.tracking.component import Tracking  # noqa: E402
from engine.training.trainer import Trainer  # noqa: E402

# time spent by the training thread in the trackers' hooks, per call
HOOK_TIMES: dict[str, list[float]] = {"on_event": [], "on_run_end": []}


def _timed(name):
    inner = getattr(Tracking, name)

    def wrapper(self, *a, **kw):
        t = time.perf_counter()
        try:
            return inner(self, *a, **kw)
        finally:
            HOOK_TIMES[name].append(time.perf_counter() - t)
    return wrapper


Tracking.on_event = _timed("on_event")          # type: ignore[method-assign]
Tracking.on_run_end = _timed("on_run_end")      # type: ignore[method-assign]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlflow(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = open(folder / "mlflow-server.log", "w")  # noqa: SIM115 (lives as long as the server)
    proc = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri",
                             f"sqlite:///{folder / 'mlflow.db'}", "--artifacts-destination", str(folder / "art"),
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=5):
                return proc, uri
        except OSError:
            time.sleep(0.5)
    raise SystemExit("mlflow server did not start in 300 s")


def run(variant: str, trackers: dict, a, base: Path) -> dict:
    cfg = load_preset("demo", [f"epochs={a.epochs}", f"data.train_size={a.train_size}", f"data.test_size={a.test_size}",
                               f"run_dir={base / 'runs'}", "device=cpu", f"threads={a.threads}",
                               f"freeze.target={a.freeze_target}"])
    cfg = cfg.replace(**trackers)
    rd = run_dir_mod.create(cfg)
    out = io.StringIO()
    em = Emitter(rd, stream=out, progress_bar=False)
    for v in HOOK_TIMES.values():
        v.clear()
    t0 = time.monotonic()
    status = Trainer(cfg, rd, em).fit()
    wall = time.monotonic() - t0
    em.close()
    evs = [json.loads(l) for l in out.getvalue().splitlines()]
    train = sum(e["epoch_time"] for e in evs if e["event"] == "epoch_end")
    return {"variant": variant, "status": status, "wall": wall, "train": train,
            "hook_event_s": sum(HOOK_TIMES["on_event"]), "hook_event_max_ms": 1000 * max(HOOK_TIMES["on_event"] or [0]),
            "hook_end_s": sum(HOOK_TIMES["on_run_end"]),
            "warnings": [e["message"][:120] for e in evs if e["event"] == "warning"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=28, help="demo epochs per run (the preset's 28)")
    ap.add_argument("--train-size", type=int, default=1500, help="synthetic training samples (the preset has 5000)")
    ap.add_argument("--test-size", type=int, default=300, help="synthetic test samples (the preset has 1000)")
    ap.add_argument("--freeze-target", type=float, default=0.2,
                    help="the demo's 0.2 needs its 28 epochs; lower it with fewer --epochs")
    ap.add_argument("--threads", default="1", help="CPU threads (1: steady on a shared, loaded machine)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--mlflow-uri", help="an MLflow server to use (default: one started here)")
    ap.add_argument("--skip-stall", action="store_true")
    a = ap.parse_args()
    os.environ.setdefault("SPFDE_ADAPTIVE_THREADS", "0")     # the same thread count in every run
    base = Path(tempfile.mkdtemp(prefix="bench-trackers-"))
    os.environ["WANDB_MODE"] = "offline"
    os.environ["WANDB_DIR"] = str(base)
    server = None
    uri = a.mlflow_uri
    # SIGTERM ends the benchmark through the finally below, which stops the server it started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if uri is None:
        server, uri = start_mlflow(base)
    variants = {
        "none": {},
        "tensorboard": {"trackers.tensorboard.enabled": True},
        "mlflow": {"trackers.mlflow.enabled": True, "trackers.mlflow.tracking_uri": uri},
        "wandb offline": {"trackers.wandb.enabled": True, "trackers.wandb.mode": "offline"},
    }
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}; "
          f"demo preset, {a.epochs} epochs, {a.train_size}/{a.test_size} samples, freeze.target {a.freeze_target}, "
          f"threads {a.threads}, {a.rounds} rounds; "
          f"load at start {os.getloadavg()}")
    results: dict[str, list[dict]] = {k: [] for k in variants}
    names = list(variants)
    try:
        for r in range(a.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                res = run(name, variants[name], a, base)
                results[name].append(res)
                print(f"round {r + 1} {name:14s} wall {res['wall']:7.2f} s  train {res['train']:7.2f} s  "
                      f"hooks {1000 * (res['hook_event_s'] + res['hook_end_s']):7.1f} ms  "
                      f"warnings {len(res['warnings'])}  load {os.getloadavg()[0]:.2f}", flush=True)
        best = {k: min(v, key=lambda x: x["wall"]) for k, v in results.items()}
        ref = best["none"]
        print("\n| tracker | wall (best of rounds) | vs none | training thread in the tracker hooks | share of training time |")
        print("|---|---|---|---|---|")
        for k, b in best.items():
            hooks = b["hook_event_s"] + b["hook_end_s"]
            print(f"| {k} | {b['wall']:.2f} s | {b['wall'] / ref['wall']:.3f} | {1000 * hooks:.1f} ms "
                  f"(queueing {1000 * b['hook_event_s']:.1f}, end {1000 * b['hook_end_s']:.1f}) | "
                  f"{100 * hooks / b['train']:.2f}% |")
        if not a.skip_stall:
            stall(a, base)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
    print(f"\nload average at the end {os.getloadavg()}")
    return 0


def stall(a, base: Path) -> None:
    """The loop against an MLflow server that refuses, and one that never answers."""
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(64)                              # accepts (the kernel's backlog), never answers
    refused = free_port()
    print("\n| unreachable MLflow | longest on_event call | end-of-run wait | warnings |")
    print("|---|---|---|---|")
    for label, port in (("connection refused", refused), ("hung (never answers)", hung.getsockname()[1])):
        res = run(label, {"trackers.mlflow.enabled": True, "trackers.mlflow.tracking_uri": f"http://127.0.0.1:{port}",
                          "trackers.flush_timeout_s": 10}, a, base)
        assert res["status"] == "completed", res
        print(f"| {label} | {res['hook_event_max_ms']:.2f} ms | {res['hook_end_s']:.2f} s "
              f"(flush_timeout_s 10) | {len(res['warnings'])}: {res['warnings'][:1]} |", flush=True)
    hung.close()


if __name__ == "__main__":
    sys.exit(main())
