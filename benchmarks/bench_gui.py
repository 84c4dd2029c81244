"""SpFDE Studio benchmark: replay a 1,000,000-event stream into the window's run model
(ingestion rate, goal >= 100,000 events/s), redraw time per frame with every view full
(goal < 30 ms), and the GUI's CPU use while it watches a live demo run.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_gui.py [--events N] [--live-seconds S]

Prints a table; ``--markdown`` prints it as a Markdown table for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

BLOCKS = ["stem"] + [f"layer{s}.{b}" for s in (1, 2, 3) for b in range(5)] + ["head"]
PROGRESS_PER_EPOCH = 8


def synthetic_stream(n_events: int):
    """A run's stream shape: per epoch 8 progress events and an epoch_end, a sieve update
    and a mask update every 5 epochs, freezes along the way."""
    yield {"event": "run_started", "v": 1, "time": 0.0, "run_id": "bench", "run_dir": "bench", "device": "cpu",
           "dataset": {}, "resumed": False, "start_epoch": 0, "projected": None,
           "config": {"name": "bench", "epochs": n_events, "sieve": {"ratio": 0.2}, "freeze": {"target": 0.2},
                      "sparsity": {"target": 0.9}},
           "model": {"blocks": [{"name": b} for b in BLOCKS]},
           "freeze_plan": {"start_epoch": 10, "frozen_prefix": [], "target": 0.2, "achieved": 0.2}}
    n, e = 1, 0
    rng = np.random.default_rng(0)
    hist = {"edges": list(range(11)), "counts": rng.integers(0, 500, 10).tolist()}
    while n < n_events:
        for b in range(PROGRESS_PER_EPOCH):
            yield {"event": "progress", "v": 1, "time": e + b / 10, "epoch": e, "batch": b + 1,
                   "batches": PROGRESS_PER_EPOCH, "loss": 1.0, "images_per_s": 1000.0}
            n += 1
        if e % 5 == 0:
            yield {"event": "sieve_update", "v": 1, "time": e, "epoch": e, "active_size": 4000, "removed_size": 1000,
                   "k": 300, "initial_waiting": max(0, 1000 - 300 * e // 5), "histogram": hist,
                   "swapped_in": list(range(20)), "swapped_out": list(range(20, 40))}
            yield {"event": "mask_update", "v": 1, "time": e, "epoch": e, "density": 0.1,
                   "layers": [{"name": "layer1.0.conv1", "density": 0.1, "changed": 0.05}]}
            n += 2
        frozen = BLOCKS[:min(len(BLOCKS) * 2 // 3, max(0, (e - 10) // 5))]
        s = 1e12 * (e + 1)
        yield {"event": "epoch_end", "v": 1, "time": e + 1.0, "epoch": e, "epochs": n_events, "train_loss": 2.0 / (1 + e / 100),
               "train_acc": 1 - 1 / (2 + e / 100), "test_loss": 2.1 / (1 + e / 100), "test_acc": 1 - 1 / (1.8 + e / 100),
               "lr": 0.1, "lrs": {}, "epoch_time": 1.0, "samples": 4000, "samples_total": 4000 * (e + 1),
               "memory": {"kind": "cuda", "peak_bytes": 2e9, "rss_bytes": 3e9},
               "flops": {"spent": 0.3 * s, "dense": s, "saved": {"sparsity": 0.5 * s, "freeze": 0.1 * s, "sieve": 0.1 * s}},
               "flops_epoch": {}, "density": 0.1, "frozen_blocks": frozen, "active_samples": 4000}
        n += 1
        e += 1


def bench_ingest(n_events: int) -> dict:
    from spfde_gui.model.run_model import RunModel
    evs = list(synthetic_stream(n_events))[:n_events]
    m = RunModel()
    t = time.perf_counter()
    for ev in evs:        # one by one, as the live path does per batch of stdout lines
        m.ingest(ev)
    dt = time.perf_counter() - t
    m2 = RunModel()
    t = time.perf_counter()
    m2.ingest_many(evs)
    dt_many = time.perf_counter() - t
    return {"events": len(evs), "epochs": m.n_epochs, "rate_one": len(evs) / dt, "rate_many": len(evs) / dt_many,
            "model": m2, "evs": evs}


def bench_file_replay(evs: list, n_lines: int) -> dict:
    from engine.run.events import dumps
    from spfde_gui.model.run_model import RunModel
    with tempfile.TemporaryDirectory() as d:
        with open(Path(d) / "events.jsonl", "w") as fh:
            for ev in evs[:n_lines]:
                fh.write(dumps(ev) + "\n")
        size = (Path(d) / "events.jsonl").stat().st_size
        t = time.perf_counter()
        m = RunModel.load(d)
        dt = time.perf_counter() - t
    return {"lines": m.n_events, "mb": size / 2**20, "rate": m.n_events / dt}


def bench_redraw(model, frames: int = 15) -> dict:
    from PySide6.QtTest import QTest

    from spfde_gui.window.app import make_app
    from spfde_gui.window.main_window import MainWindow
    app = make_app()  # noqa: F841 - the application must outlive the window
    w = MainWindow(runs_dir=tempfile.mkdtemp())
    w.resize(1440, 900)
    w.show()
    QTest.qWait(200)
    w.open_model(model)
    w.redraw_all()
    QTest.qWait(200)
    last = model.column("epoch")[-1]

    def next_epoch() -> None:
        nonlocal last
        last += 1
        model.ingest(dict(_EPOCH_TEMPLATE, epoch=int(last)))   # the version changes: the frame must redraw

    out, paints = {}, []
    for i, v in enumerate(w.views):
        w.tabs.setCurrentIndex(i)
        QTest.qWait(50)
        times, paint = [], []
        for _f in range(frames):
            next_epoch()
            t = time.perf_counter()
            w._tick()
            t1 = time.perf_counter()
            v.repaint()               # paint synchronously so the frame's cost is all counted
            t2 = time.perf_counter()
            times.append(t2 - t)
            paint.append(t2 - t1)
        out[v.title.replace("&&", "&")] = statistics.median(times) * 1000
        paints.append(statistics.median(paint) * 1000)
    # every view's data redrawn and the window repainted (its visible view: Qt paints no
    # hidden widget), then without the repaint to estimate all five views painted at once
    full, data = [], []
    for _ in range(frames):
        next_epoch()
        t = time.perf_counter()
        w.redraw_all()
        w.repaint()
        full.append(time.perf_counter() - t)
        next_epoch()
        t = time.perf_counter()
        w.redraw_all()
        data.append(time.perf_counter() - t)
    out["all views at once"] = statistics.median(full) * 1000
    out["all views at once, every view painted (est.)"] = statistics.median(data) * 1000 + sum(paints)
    w.close_policy = "kill"
    w.close()
    return out


_EPOCH_TEMPLATE: dict = {}


def bench_live(seconds: float, train_size: int | None = None) -> dict | None:
    """GUI process CPU while it watches the demo preset train (engine on the CPU)."""
    from PySide6.QtTest import QTest

    from engine import config as cfgmod
    from spfde_gui.window.app import make_app
    from spfde_gui.window.main_window import MainWindow
    if not (ROOT / "engine" / "trainer.py").exists():
        return None
    app = make_app()  # noqa: F841 - the application must outlive the window
    runs = tempfile.mkdtemp()
    w = MainWindow(runs_dir=runs)
    w.close_policy = "kill"
    w.resize(1440, 900)
    w.show()
    try:
        w.form.load_preset("demo")
    except cfgmod.ConfigError:
        return None
    w.form.set_field("run_dir", runs)
    w.form.set_field("device", "cpu")
    if train_size:   # a smaller set so a loaded CPU still shows epochs within the window
        w.form.set_field("data.train_size", train_size)
    if not w.launch():
        return None
    m = w.controller.model
    QTest.qWait(500)
    deadline = time.time() + 90
    while m.run_started is None and w.controller.is_running() and time.time() < deadline:
        QTest.qWait(200)
    c0, t0, e0, n0 = time.process_time(), time.perf_counter(), m.n_epochs, m.n_events
    end = time.time() + seconds
    while time.time() < end and w.controller.is_running():
        QTest.qWait(100)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    res = {"seconds": wall, "gui_cpu_percent": 100 * cpu / wall, "epochs_seen": m.n_epochs - e0,
           "events_seen": m.n_events - n0, "status": m.status}
    w.close()
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--file-lines", type=int, default=200_000)
    ap.add_argument("--live-seconds", type=float, default=20)
    ap.add_argument("--live-train-size", type=int, default=600,
                    help="demo preset's training set for the live part (0 = as the preset says)")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args(argv)
    ing = bench_ingest(a.events)
    global _EPOCH_TEMPLATE
    _EPOCH_TEMPLATE = next(ev for ev in reversed(ing["evs"]) if ev["event"] == "epoch_end")
    fr = bench_file_replay(ing["evs"], a.file_lines)
    red = bench_redraw(ing["model"])
    live = bench_live(a.live_seconds, a.live_train_size) if a.live_seconds > 0 else None
    rows = [("events ingested (dicts)", f"{ing['events']:,} ({ing['epochs']:,} epochs)", ""),
            ("ingest rate, one by one", f"{ing['rate_one']:,.0f} events/s", "goal >= 100,000"),
            ("ingest rate, ingest_many", f"{ing['rate_many']:,.0f} events/s", "goal >= 100,000"),
            ("replay from events.jsonl (parse + ingest)", f"{fr['rate']:,.0f} lines/s",
             f"{fr['lines']:,} lines, {fr['mb']:.0f} MiB")]
    for k, ms in red.items():
        rows.append((f"redraw frame: {k}", f"{ms:.1f} ms", f"{ing['epochs']:,} epochs per curve; goal < 30 ms"))
    if live:
        rows.append(("GUI CPU watching the live demo run", f"{live['gui_cpu_percent']:.1f}% of one core",
                     f"{live['seconds']:.0f} s, {live['epochs_seen']} epochs / {live['events_seen']} events seen"))
    else:
        rows.append(("GUI CPU watching the live demo run", "not measured", "engine or demo preset missing"))
    mach = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"
    if a.markdown:
        print(f"Machine: {mach}\n\n| measure | value | note |\n|---|---|---|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        print(f"machine: {mach}")
        for r in rows:
            print(f"{r[0]:<46}{r[1]:>28}   {r[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
