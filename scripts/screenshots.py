"""Grab the studio's views for the README: open a run (optionally overlay others) and save
each tab as a PNG. Run under a real display (xvfb-run) so the window is drawn as a person sees it:

    xvfb-run -a -s "-screen 0 1440x900x24" .venv/bin/python scripts/screenshots.py RUN_DIR \
        --compare OTHER_RUN_DIR --out docs/img
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
    a = ap.parse_args(argv)
    from spfde_gui.app import build_window, make_app
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
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
