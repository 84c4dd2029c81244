"""The ``spfde-train search`` command: plan the space, run or continue the study, report."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from engine.cost import wall_time
from engine.search import feasibility
from engine.search import spec as spec_mod


def add_parser(sub) -> None:
    p = sub.add_parser("search", help="search sparsity x freezing x sieving for the best accuracy within a "
                                      "training-FLOPs budget (Optuna; docs/search.md)")
    p.add_argument("source", metavar="SEARCH_FILE", help="a search file or the name of a shipped one (demo_budget)")
    p.add_argument("--plan", action="store_true", help="print the space's projected cost range and the budget; "
                                                       "train nothing")
    p.add_argument("--report", action="store_true", help="print the trials and the best configuration; train nothing")
    p.add_argument("--workers", type=int, default=None, help="trials run side by side (default: the file's workers)")
    p.add_argument("--search-dir", help="folder holding the study folder (default: the file's search_dir)")
    p.add_argument("--allow-change", action="store_true",
                   help="continue a study folder made by a different search file")


def _resolve(source: str) -> Path:
    p = Path(source)
    shipped = spec_mod.SEARCHES_DIR / f"{source}.yaml"
    return shipped if not p.exists() and shipped.is_file() else p


def main(args: argparse.Namespace) -> int:
    spec = spec_mod.load(_resolve(args.source))
    r = feasibility.check_budget(spec)
    if args.plan:
        print(f"search {spec.name}: {len(spec.space)} fields, {spec.trials} trials x {len(spec.seeds)} seed(s)")
        if r["unit"] == "FLOPs":
            print(f"dense training FLOPs {r['dense']:.4g}; budget {r['budget']:.4g} FLOPs "
                  f"({100 * r['budget'] / r['dense']:.1f}% of dense)")
        else:
            print(f"dense training FLOPs {r['dense']:.4g}; budget {r['budget']:.4g} GPU-hours per run at "
                  f"{feasibility.measured_speed(spec)[1]}")
        print(f"projected cost over the space's corners: {r['min']:.4g} .. {r['max']:.4g} {r['unit']} "
              f"(cheapest at {r['cheapest']})")
        w = feasibility.wall_time_range(spec, r)
        if w["seconds"] is None:
            print(f"wall time: unknown ({w['why']})")
        else:
            lo, hi = w["seconds"]
            print(f"wall time: about {wall_time.duration(lo)} .. {wall_time.duration(hi)} per run at "
                  f"{w['flops_per_s']:.3g} executed FLOPs/s (measured by {w['source']}); {w['runs']} runs, "
                  f"at most {wall_time.duration(hi * w['runs'])} one after another")
        if spec.reference:
            params, why = feasibility.plain_mest_point(spec)
            print("plain-MEST reference trial (no freezing, no sieving): "
                  + (", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
                     if params is not None else f"none: {why}"))
        return 0
    if args.workers is not None and args.workers < 1:
        print(f"--workers: expected an integer >= 1, got {args.workers}", file=sys.stderr)
        return 2
    # Optuna (and SQLAlchemy) take a second to import: only the commands that use them do.
    try:
        from engine.search import report as report_mod
        from engine.search import study as study_mod
    except ImportError as exc:
        if "optuna" not in str(exc):
            raise
        print("spfde-train search needs Optuna: pip install 'spfde-studio[search]' "
              "(--plan works without it)", file=sys.stderr)
        return 2
    folder = study_mod.folder_for(spec, args.search_dir, args.allow_change)
    if args.report:
        print(report_mod.format_report(spec, study_mod.open_study(spec, folder), folder))
        return 0
    search = study_mod.Search(spec, folder, out=sys.stdout, workers=args.workers)
    old = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            old[sig] = signal.signal(sig, lambda s, f: search.request_stop())
    try:
        rc = search.run()
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
    print(report_mod.format_report(spec, search.study, folder), file=sys.stderr)
    return rc
