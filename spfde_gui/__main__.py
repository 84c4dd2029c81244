"""``spfde-gui [--preset NAME | --config F | --open RUN_DIR] [--runs-dir D]`` opens the studio;
``spfde-gui report RUN_DIR --out DIR`` writes a run's (or a sweep's) report without a window;
``spfde-gui export --tensorboard OUT RUN_OR_SWEEP`` writes runs as TensorBoard scalars."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine import config as cfgmod


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spfde-gui", description="SpFDE Studio: configure, launch, watch, "
                                "compare and report SpFDE training runs.",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="subcommands (headless, no window):\n"
                                       "  report RUN_DIR|SWEEP_DIR [--out DIR]   HTML, PDF, CSV and JSON report"
                                       " (spfde-gui report --help)\n"
                                       "  export --tensorboard OUT RUN_OR_SWEEP  TensorBoard scalars"
                                       " (spfde-gui export --help)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", help="start from a preset in assets/presets (e.g. demo)")
    src.add_argument("--config", help="start from a YAML/JSON configuration file")
    src.add_argument("--open", dest="open_run", metavar="RUN_DIR",
                     help="open (replay) a run directory, or show a sweep folder's results")
    p.add_argument("--runs-dir", help="folder holding the run directories (default: the configuration's run_dir)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "report":
        from spfde_gui.report.cli import main as report_main  # the headless report: no window
        return report_main(argv[1:])
    if argv and argv[0] == "export":
        return _export(argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.preset:
            cfgmod.preset_path(args.preset)
        if args.config:
            cfgmod.read_file(args.config)
    except cfgmod.ConfigError as exc:
        print(f"spfde-gui: {exc}", file=sys.stderr)
        return 2
    if args.open_run and not Path(args.open_run).is_dir():
        print(f"spfde-gui: --open: no such run directory: {args.open_run}", file=sys.stderr)
        return 2
    from spfde_gui.window.app import run  # Qt: loaded once the arguments are known to be good
    return run(args.preset, args.config, args.open_run, args.runs_dir)


def _export(argv: list[str]) -> int:
    """``spfde-gui export --tensorboard OUT RUN_OR_SWEEP``: runs as TensorBoard scalars."""
    p = argparse.ArgumentParser(prog="spfde-gui export", description="Write runs as TensorBoard scalars "
                                "(view with `tensorboard --logdir OUT`; pip install 'spfde-studio[tensorboard]').")
    p.add_argument("--tensorboard", metavar="OUT", required=True, help="folder for the event files (one per run)")
    p.add_argument("source", metavar="RUN_OR_SWEEP", help="a run folder or a sweep folder")
    args = p.parse_args(argv)
    from spfde_gui.sweep.tensorboard import export
    try:
        written = export(args.source, args.tensorboard)
    except ValueError as exc:
        print(f"spfde-gui export: {exc}", file=sys.stderr)
        return 2
    if not written:
        print(f"spfde-gui export: {args.source} has no finished epochs to export", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
