"""``spfde-train``: run, resume, validate and plan training runs.

    spfde-train run (--config F | --preset NAME) [--set k=v ...] [--run-dir D]
    spfde-train resume RUN_DIR
    spfde-train validate (--config F | --preset NAME) [--set k=v ...]
    spfde-train plan (--config F | --preset NAME) [--set k=v ...] [--json]

torch is imported only by run and resume, so validate and plan answer in milliseconds.
Exit status: 0 done (completed or stopped), 1 the run failed (an ``error`` event was
written), 2 bad configuration or arguments.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from pathlib import Path

from engine import config as config_mod
from engine.config import ConfigError

log = logging.getLogger("engine")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def _add_config_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", "-c", help="run configuration (YAML or JSON)")
    src.add_argument("--preset", "-p", help=f"a preset from assets/presets ({', '.join(config_mod.list_presets())})")
    p.add_argument("--set", "-s", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a field, dotted keys, values read as YAML (sparsity.target=0.95, "
                        "sparsity.dense_layers=[stem,head], sieve.oneshot_epoch=null); repeatable")


def _add_supervision_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--events", action="store_true",
                   help="write the JSON events on stdout even when it is a terminal (they always go "
                        "to stdout when it is a pipe or a file, and always to events.jsonl)")
    p.add_argument("--stop-on-eof", action="store_true",
                   help="stop gracefully (checkpoint, exit) when stdin closes; the studio passes it so "
                        "that an engine whose window died does not train on as an orphan")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="spfde-train", description="SpFDE sparse training engine "
                                 "(events as JSON lines on stdout, logs on stderr)")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="start a new run")
    _add_config_args(p)
    p.add_argument("--run-dir", help="folder in which the run directory is created (default: the config's run_dir)")
    # A torchrun worker started by `run` joins the run directory its launcher created.
    p.add_argument("--attach", help=argparse.SUPPRESS)
    _add_supervision_args(p)
    p = sub.add_parser("resume", help="continue a stopped or killed run from its last checkpoint")
    p.add_argument("run_dir", metavar="RUN_DIR")
    _add_supervision_args(p)
    p = sub.add_parser("validate", help="check a configuration; prints OK or every error")
    _add_config_args(p)
    p = sub.add_parser("plan", help="project the run's FLOPs, memory and freeze plan without training")
    _add_config_args(p)
    p.add_argument("--json", action="store_true", help="print the projection as JSON")
    return ap


def _load(args) -> config_mod.RunConfig:
    path = Path(args.config) if args.config else config_mod.preset_path(args.preset)
    return config_mod.load(path, args.overrides)


def cmd_validate(args) -> int:
    cfg = _load(args)
    # The projection catches what the fields alone cannot: an unreachable freeze target,
    # unknown dense_layers names, an imagefolder tree without images.
    from engine import plan as plan_mod
    plan_mod.project(cfg)
    print("OK")
    return EXIT_OK


def cmd_plan(args) -> int:
    from engine import plan as plan_mod
    cfg = _load(args)
    plan = plan_mod.project(cfg)
    if args.json:
        print(json.dumps(plan, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
    else:
        print(plan_mod.format_plan(plan))
    return EXIT_OK


def cmd_run(args) -> int:
    from engine import run_dir as run_dir_mod
    cfg = _load(args)
    # What only the projection can catch (an unreachable freeze target, unknown dense layers)
    # is a configuration error before any run directory exists, as in `validate`.
    from engine import plan as plan_mod
    plan_mod.project(cfg)
    if args.attach:                      # a torchrun worker of `run` (engine.distributed.launch)
        return _train(cfg, Path(args.attach), resume=False, stop_on_eof=args.stop_on_eof,
                      events_on_tty=args.events, create=None)
    from engine import distributed
    if distributed.needs_launch(cfg):
        d = run_dir_mod.create(cfg, args.run_dir)
        log.info("run directory %s", d)
        return _launch(cfg, d, ["run", *args.argv, "--attach", str(d)])
    if distributed.under_torchrun():     # started by torchrun by hand: rank 0 creates the folder
        return _train(cfg, None, resume=False, stop_on_eof=args.stop_on_eof, events_on_tty=args.events,
                      create=lambda: run_dir_mod.create(cfg, args.run_dir))
    d = run_dir_mod.create(cfg, args.run_dir)
    log.info("run directory %s", d)
    return _train(cfg, d, resume=False, stop_on_eof=args.stop_on_eof, events_on_tty=args.events)


def cmd_resume(args) -> int:
    from engine import distributed
    from engine import run_dir as run_dir_mod
    d = Path(args.run_dir)
    try:
        cfg = run_dir_mod.read_config(d)
    except ConfigError:
        if not distributed.under_torchrun() or int(os.environ.get("RANK", "0")) == 0:
            raise
        cfg = None                       # another node: rank 0's configuration arrives by broadcast
    if cfg is not None and distributed.needs_launch(cfg):
        return _launch(cfg, d, ["resume", *args.argv])
    return _train(cfg, d, resume=True, stop_on_eof=args.stop_on_eof, events_on_tty=args.events)


def _launch(cfg, run_dir: Path, worker_argv: list[str]) -> int:
    from engine import distributed
    rc = distributed.launch(cfg, run_dir, worker_argv)
    return EXIT_OK if rc == 0 else EXIT_FAILED


def _train(cfg, run_dir: Path | None, resume: bool, stop_on_eof: bool = False, events_on_tty: bool = False,
           create=None) -> int:
    from engine import distributed
    from engine.commands import CommandChannel
    from engine.telemetry import Emitter
    if distributed.under_torchrun():
        # Rank 0 decides the configuration and the run directory; the others follow it.
        dist = distributed.init(cfg if cfg is not None else config_mod.RunConfig())
        if dist.enabled:
            cfg = config_mod.from_dict(dist.broadcast_object(cfg.to_dict() if dist.is_primary else None))
        if create is not None:
            run_dir = Path(dist.broadcast_object(str(create()) if dist.is_primary else None))
    else:
        dist = distributed.Single()
    primary = dist.is_primary
    emitter = Emitter(run_dir, stream_events=True if events_on_tty else None) if primary else distributed.NullEmitter()
    commands = CommandChannel()
    if primary:                          # stdin belongs to rank 0; signals reach every rank
        commands.start_stdin(stop_on_eof=stop_on_eof)
    commands.install_signal_handlers()
    if dist.enabled:
        emitter = dist.guard(emitter)
    try:
        if dist.enabled:
            dist.start(run_dir)
        from engine.trainer import Trainer   # torch is imported here, not before
        trainer = Trainer(cfg, run_dir, emitter, commands, dist=dist)
        if resume:
            trainer.load_checkpoint()
        status = trainer.fit()
        dist.finish()                    # every rank got here: the watchdog may stop
        log.info("run %s: %s", status, run_dir)
        return EXIT_OK
    except KeyboardInterrupt:
        emitter.emit("error", message="interrupted (second Ctrl-C)", traceback=traceback.format_exc())
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure becomes an error event
        if dist.enabled and not isinstance(exc, ConfigError):
            dist.failure(exc)            # names a rank that died, saves the last epoch; exits
        msg = f"{type(exc).__name__}: {exc}" if not isinstance(exc, (ConfigError,)) else str(exc)
        log.error("run failed: %s", msg)
        emitter.emit("error", message=msg, traceback=traceback.format_exc())
        return EXIT_FAILED
    finally:
        commands.restore_signal_handlers()
        emitter.close()
        dist.close()


COMMANDS = {"run": cmd_run, "resume": cmd_resume, "validate": cmd_validate, "plan": cmd_plan}


def main(argv: list[str] | None = None) -> int:
    from engine.telemetry import setup_logging
    setup_logging()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv[1:] if argv and argv[0] == args.command else argv
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    except BrokenPipeError:
        # `spfde-train plan ... | head`: the reader is done; leave quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
