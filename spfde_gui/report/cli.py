"""``spfde-gui report RUN_DIR --out DIR [--formats html,pdf,csv,json]``: the report, headless.

Exit status: 0 written, 2 bad input (missing/empty run directory, unknown format),
1 anything else that went wrong while writing.
"""
from __future__ import annotations

import argparse
import os
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spfde-gui report",
                                description="Write a run's report (HTML, PDF) and its metrics (CSV, JSON).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory holding events.jsonl")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="output folder (default: RUN_DIR/report)")
    p.add_argument("--formats", default="html,pdf,csv,json",
                   help="comma-separated subset of html,pdf,csv,json (default: all)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)   # argparse itself exits 2 on bad usage
    # No display is needed: the figures and the PDF render offscreen.
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from . import ReportError, export_report
    out = args.out if args.out is not None else os.path.join(args.run_dir, "report")
    try:
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
