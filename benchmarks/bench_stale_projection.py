"""The cost preview under a slow projection: how long a corrected value takes to show, how
long the window's event loop stalls, and whether the stale projection still burns a core
afterwards, in three modes side by side in one process: the stale projection interrupted
(the studio's TaskRunner, interrupt=True), left to run beside the newer one
(interrupt=False), and queued behind it on one worker thread (the preview before the task
helper: a QThreadPool of one thread). Prints all three and the load average.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_stale_projection.py [--epochs 10000]

The slow projection is the demo preset at --epochs (the planner's cost grows with epochs;
see the engineering issue); the corrected value is the demo at 30 epochs.
"""
import argparse
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


MODES = (("interrupted", True, None), ("left running", False, None), ("queued behind", False, 1))


def measure(app, interrupt: bool, max_threads, epochs: int) -> tuple[float, float, int]:
    from spfde_gui.window.main_window import MainWindow
    w = MainWindow(runs_dir="/tmp/spfde-bench-runs")
    w.preview.tasks.interrupt = interrupt
    w.preview.tasks.max_threads = max_threads
    w.show()
    w.form.load_preset("demo")

    def spin(sec):
        end = time.monotonic() + sec
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.005)
    spin(2.0)
    w.form.set_field("epochs", epochs)
    spin(1.5)                                  # the slow projection is under way
    got = []
    w.preview.updated.connect(lambda r: got.append(time.monotonic()))
    t0 = last = time.monotonic()
    w.form.set_field("epochs", 30)
    worst = 0.0
    while not (got and not w.preview.busy()) and time.monotonic() - t0 < 300:
        app.processEvents()
        now = time.monotonic()
        worst, last = max(worst, now - last), now
    shown = (got[-1] - t0) if got else float("nan")
    spin(3.0)
    stale = w.preview.tasks.running_threads()     # still computing the stale projection
    w.hide()
    return shown, worst, stale


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=10000)
    a = ap.parse_args(argv)
    from PySide6.QtWidgets import QApplication
    app = QApplication([])
    rows = []
    for name, interrupt, max_threads in MODES:
        shown, worst, stale = measure(app, interrupt, max_threads, a.epochs)
        rows.append((shown, worst))
        print(f"stale projection {name:13s}: corrected value shown after {shown:6.2f} s, longest event-loop "
              f"stall {1000 * worst:4.0f} ms, stale threads still computing 3 s later: {stale}", flush=True)
    base = rows[0][0]
    print("shown-after ratio vs interrupted: " + ", ".join(f"{n} {r[0] / base:.1f}x" for (n, _i, _m), r in zip(MODES, rows))
          + f"; load average {os.getloadavg()[0]:.2f} (1 min)", flush=True)
    # a stale thread left running cannot be joined: leave without Qt's teardown
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
