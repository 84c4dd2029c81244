"""Grab the studio's views for the README: open a run (optionally overlay others) and save
each tab as a PNG. Run under a real display (xvfb-run) so the window is drawn as a person sees it:

    xvfb-run -a -s "-screen 0 1440x900x24" .venv/bin/python scripts/screenshots.py RUN_DIR \
        --compare OTHER_RUN_DIR --out docs/img [--live]

--live also launches a short demo run from the window (about a minute on 2 CPU cores) and
grabs it while the engine starts (studio-starting.png) and while it trains, with the batch
progress line (studio-live.png), then stops it.
"""
import argparse
import sys
from pathlib import Path

from PySide6.QtCore import QTimer


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir")
    ap.add_argument("--compare", nargs="*", default=[])
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--out", default="docs/img")
    ap.add_argument("--live", action="store_true", help="also grab a short live run (starting, training)")
    a = ap.parse_args(argv)
    from spfde_gui.window.app import build_window, make_app
    app = make_app()
    run = Path(a.run_dir).resolve()
    win = build_window(preset=a.preset, runs_dir=str(run.parent))
    win.resize(1440, 900)
    win.show()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    names = ["studio-training", "studio-freeze", "studio-sieve", "studio-flops", "studio-hardware"]

    def settle(ms=600):
        end = QTimer()
        end.setSingleShot(True)
        end.start(ms)
        while end.isActive():
            app.processEvents()

    settle(1500)
    win.runs.rescan()
    win.runs.wait_idle()
    win.runs.set_compared([run, *[Path(c).resolve() for c in a.compare]])
    win.open_run(run)
    settle(1500)
    for i, name in enumerate(names):
        win.tabs.setCurrentIndex(i)
        settle(800)
        win.grab().save(str(out / f"{name}.png"))
        print(out / f"{name}.png")
    win.left.setCurrentIndex(1)
    win.tabs.setCurrentIndex(0)
    settle(800)
    win.grab().save(str(out / "studio-compare.png"))
    print(out / "studio-compare.png")
    if a.live:
        live(app, win, out, settle)
    win.close()
    return 0


def live(app, win, out: Path, settle) -> None:
    import tempfile
    runs = Path(tempfile.mkdtemp(prefix="spfde-shots-"))
    win.left.setCurrentIndex(0)
    win.runs.set_compared([])
    win.form.load_preset("demo")
    for key, value in (("epochs", 8), ("data.train_size", 2000), ("data.test_size", 500),
                       ("freeze.target", 0.05), ("run_dir", str(runs))):
        win.form.set_field(key, value)
    settle(800)
    if not win.launch():
        raise SystemExit(f"cannot launch the live run: {win.launch_msg.text()}")
    m = win.controller.model
    settle(1200)
    win.grab().save(str(out / "studio-starting.png"))
    print(out / "studio-starting.png", m.status)

    def wait(cond, seconds):
        for _ in range(int(seconds * 10)):
            if cond():
                return True
            settle(100)
        return False
    # two epochs done and the third under way: curves, and the batch line in the header
    wait(lambda: not win.controller.is_running() or m.n_epochs >= 2 and m.progress is not None
         and m.progress.get("batch", 0) >= 8, 400)
    if not win.controller.is_running():
        raise SystemExit(f"the live run ended early: {m.status} {m.error}")
    win.tabs.setCurrentIndex(0)
    settle(800)
    win.grab().save(str(out / "studio-live.png"))
    print(out / "studio-live.png", m.status, win.header.rate.text())
    win.stop()
    wait(lambda: not win.controller.is_running(), 300)


if __name__ == "__main__":
    sys.exit(main())
