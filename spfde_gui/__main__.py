"""``spfde-gui [--preset NAME | --config F | --open RUN_DIR] [--runs-dir D]`` opens the studio;
``spfde-gui report RUN_DIR --out DIR`` writes a run's (or a sweep's) report without a window;
``spfde-gui export --tensorboard OUT RUN_OR_SWEEP`` writes runs as TensorBoard scalars and
``spfde-gui export --mlflow URI RUN_OR_SWEEP`` as MLflow runs (docs/trackers.md)."""
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
                                       " (spfde-gui export --help)\n"
                                       "  export --mlflow URI RUN_OR_SWEEP       MLflow runs")
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
    """``spfde-gui export (--tensorboard OUT | --mlflow URI) RUN_OR_SWEEP``: past runs into a
    tracker, through the engine's exporter (engine.tracking.export; no torch)."""
    p = argparse.ArgumentParser(prog="spfde-gui export", description="Write past runs (a run folder, or every "
                                "cell of a sweep folder) to TensorBoard or MLflow, as the live trackers log them "
                                "(docs/trackers.md; pip install 'spfde-studio[tensorboard]' or '[mlflow]').")
    p.add_argument("--tensorboard", metavar="OUT", help="folder for the TensorBoard logs (one folder per run); "
                                                        "view with `tensorboard --logdir OUT`")
    p.add_argument("--mlflow", metavar="URI", help="MLflow tracking URI (http://host:port, sqlite:///file.db, a folder)")
    p.add_argument("--experiment", default="spfde", help="MLflow experiment (default: spfde)")
    p.add_argument("source", metavar="RUN_OR_SWEEP", help="a run folder or a sweep folder")
    args = p.parse_args(argv)
    if not args.tensorboard and not args.mlflow:
        p.error("give --tensorboard OUT, --mlflow URI or both")
    from engine.config.schema import MLflowTrackerConfig, RunConfig, TrackersConfig, validate
    from engine.tracking import export as ex
    from engine.tracking.secrets import scrub
    from engine.tracking.setup import missing_extras
    if args.mlflow:      # the same URI check as trackers.mlflow.tracking_uri
        cfg = RunConfig(trackers=TrackersConfig(mlflow=MLflowTrackerConfig(enabled=True, tracking_uri=args.mlflow)))
        bad = [m for f, m in validate(cfg) if f.startswith("trackers.")]
        if bad:
            print(f"spfde-gui export: --mlflow: {bad[0]}", file=sys.stderr)
            return 2
    want = RunConfig(trackers=TrackersConfig())
    want.trackers.tensorboard.enabled, want.trackers.mlflow.enabled = bool(args.tensorboard), bool(args.mlflow)
    for field, msg in missing_extras(want):
        print(f"spfde-gui export: --{field.split('.')[1]} {msg}", file=sys.stderr)
        return 2
    written: list[str] = []
    try:
        if args.tensorboard:
            written += [str(p) for p in ex.to_tensorboard(args.source, args.tensorboard)]
        if args.mlflow:
            written += [f"mlflow run {rid}" for rid in ex.to_mlflow(args.source, args.mlflow, args.experiment)]
    except ValueError as exc:
        print(f"spfde-gui export: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the tracker's own error (an unreachable server ...)
        print(f"spfde-gui export: {scrub(f'{type(exc).__name__}: {exc}')[:500]}", file=sys.stderr)
        return 1
    if not written:
        print(f"spfde-gui export: {args.source} has no finished epochs to export", file=sys.stderr)
        return 2
    for line in written:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
