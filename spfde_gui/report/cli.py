"""``spfde-gui report RUN_DIR --out DIR [--formats html,pdf,figures,csv,json]``: the report, headless.
``spfde-gui report SWEEP_DIR``: a sweep's report (html,pdf,csv,md,tex).

Exit status: 0 written, 2 bad input (missing/empty run directory, unknown format),
1 anything else that went wrong while writing.
"""
from __future__ import annotations

import argparse
import os
import sys

from engine.sweep.manifest import is_sweep_dir
from spfde_gui.sweep.report import export_sweep_report

from . import ReportError, export_report

DEFAULT_FORMATS = "html,pdf,figures,csv,json"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spfde-gui report",
                                description="Write a run's report (HTML, PDF) and its metrics (CSV, JSON).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory holding events.jsonl, or a sweep folder "
                   "(sweep.yaml: the results table as html,pdf,csv,md,tex)")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="output folder (default: RUN_DIR/report)")
    p.add_argument("--formats", default=DEFAULT_FORMATS,
                   help="comma-separated subset of html,pdf,figures,csv,json (default: all; "
                   "figures: figures/NAME.svg, .pdf and .png)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)   # argparse itself exits 2 on bad usage
    # No display is needed: the figures and the PDF render offscreen.
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    out = args.out if args.out is not None else os.path.join(args.run_dir, "report")
    try:
        if is_sweep_dir(args.run_dir):   # a sweep folder: the results table and its scatter
            fmts = args.formats if args.formats != DEFAULT_FORMATS else None
            written = export_sweep_report(args.run_dir, out, fmts)
        else:
            written = export_report(args.run_dir, out, args.formats)
    except ReportError as exc:
        print(f"spfde-gui report: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the message, not a traceback, for a CLI user
        print(f"spfde-gui report: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for fmt, path in written.items():
        print(f"{fmt:4s} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
