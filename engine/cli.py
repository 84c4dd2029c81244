"""``spfde-train``: run, resume, validate and plan training runs.

    spfde-train run (--config F | --preset NAME) [--set k=v ...] [--run-dir D] [--executor slurm]
    spfde-train resume RUN_DIR [--allow-change FIELD,...]
    spfde-train validate (--config F | --preset NAME) [--set k=v ...]
    spfde-train plan (--config F | --preset NAME) [--set k=v ...] [--json | --cost-table]
    spfde-train sweep (SWEEP_FILE | SWEEP_DIR) [--plan] [--new] [--table md|csv|tex] [--gpus auto]
                [--executor local|slurm] [--status] [--cancel] [--detach]
    spfde-train search SEARCH_FILE [--plan] [--report] [--workers N] [--allow-change]

torch is imported only by run and resume (and by validate to check an explicit cuda or mps
device), so validate and plan answer in milliseconds; a timm:, py: or wrn28 model is the
exception: its blocks and FLOPs are measured on the torch model (engine.models.measure).
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
from engine.config import ConfigError, model_spec
from engine.config.advice import config_warnings
from engine.config.hints import set_hint
from engine.cost import arch as arch_mod
from engine.cost import measured, wall_time
from engine.cost import preflight as resources
from engine.cost import projection as plan_mod
from engine.data.checks import CIFAR_FILES, check_dataset
from engine.executor import cli as executor_cli
from engine.executor.job import requeue_at_time_limit
from engine.run import folder as run_dir_mod
from engine.run import started
from engine.run.control import CommandChannel
from engine.run.finished import completed_epochs
from engine.run.lock import RunLock, RunLockedError, lock_for_worker
from engine.run.telemetry import Emitter, setup_logging
from engine.search import cli as search_cmd
from engine.sweep import cli as sweep_cmd
from engine.tracking.setup import missing_extras
from engine.training import launcher, threads

# torch is loaded by engine.training.{distributed,checkpoint,resume,trainer}: those are
# imported inside run and resume only, after the CPU thread policy is set (threads.apply).

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
    executor_cli.add_args(p)
    p = sub.add_parser("resume", help="continue a stopped or killed run from its last checkpoint")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--allow-change", action="append", default=[], metavar="FIELD[,FIELD]",
                   help="accept these fields of the run folder's config.yaml differing from the checkpoint's "
                        "configuration (e.g. epochs); without it a changed config.yaml is refused; repeatable")
    _add_supervision_args(p)
    executor_cli.add_args(p)
    p = sub.add_parser("validate", help="check a configuration; prints OK or every error")
    _add_config_args(p)
    p = sub.add_parser("plan", help="project the run's FLOPs, memory and freeze plan without training")
    _add_config_args(p)
    p.add_argument("--json", action="store_true", help="print the projection as JSON")
    p.add_argument("--cost-table", action="store_true",
                   help="print only the model's cost table as JSON (blocks, layers, FLOPs; measured for timm:, "
                        "py: and wrn28 models): what the studio's preview reads")
    p.add_argument("--calibrate", action="store_true",
                   help="measure this machine's speed for the configuration first (a few training steps; loads "
                        "torch), so that the plan gives a wall time (docs/wall-time.md)")
    p = sub.add_parser("sweep", help="run a sweep (a grid of settings x seeds, docs/sweeps.md), or resume one")
    p.add_argument("source", metavar="SWEEP_FILE_OR_DIR",
                   help="a sweep file (resumes the newest sweep folder with the same cells, unless --new), "
                        "the name of a shipped one (demo_grid, cifar100_table2) or a sweep folder to resume")
    p.add_argument("--plan", action="store_true", help="print every cell's projected FLOPs and time; train nothing")
    p.add_argument("--new", action="store_true", help="start a fresh sweep folder even if a matching one exists")
    p.add_argument("--sweep-dir", help="folder in which the sweep folder is created (default: the file's sweep_dir)")
    p.add_argument("--gpus", default="auto", help="auto (one cell per visible GPU), none, or ids such as 0,1")
    p.add_argument("--flops-per-s", type=float, default=None,
                   help="training FLOPs per second for --plan's time estimate (default: measured by finished "
                        "cells of the sweep, else a 2-core CPU figure)")
    p.add_argument("--table", choices=("md", "csv", "tex"), help="print the results table of the sweep and exit")
    executor_cli.add_args(p)
    p.add_argument("--status", action="store_true",
                   help="print each cell's Slurm job id, state, node, elapsed time and pending reason, and exit")
    p.add_argument("--cancel", action="store_true",
                   help="cancel the sweep's Slurm jobs (each checkpoints first); running the sweep again continues it")
    p.add_argument("--detach", action="store_true", help="with --executor slurm: submit and exit, do not follow the jobs")
    p.add_argument("--poll-s", type=float, default=2.0, help="with --executor slurm: seconds between squeue polls")
    p.add_argument("--events", action="store_true",
                   help="write the JSON events on stdout even when it is a terminal (otherwise a terminal gets "
                        "progress lines; the events always go to the sweep folder's sweep_events.jsonl)")
    search_cmd.add_parser(sub)
    return ap


def _load(args) -> config_mod.RunConfig:
    path = Path(args.config) if args.config else config_mod.preset_path(args.preset)
    cfg = config_mod.load(path, args.overrides)
    if model_spec.is_measured(cfg.model.name) and "torch" not in sys.modules:
        threads.apply(cfg.threads)       # measuring the model loads torch: the thread policy first
    return cfg


def cmd_validate(args) -> int:
    cfg = _load(args)
    resources.preflight(cfg)              # memory: before the projection allocates anything
    # The projection catches what the fields alone cannot: an unreachable freeze target,
    # unknown dense_layers names, an imagefolder tree without images.
    plan_mod.project(cfg)
    _check_trackers(cfg)
    # What `run` would otherwise find only later: the device and the dataset's layout (a scan).
    _check_device(cfg.device)
    for warning in [*config_warnings(cfg), *check_dataset(cfg)]:
        print(f"warning: {warning}", file=sys.stderr)
    print("OK")
    return EXIT_OK


def _check_trackers(cfg) -> None:
    """ConfigError naming the field of an enabled tracker whose library is not installed."""
    missing = missing_extras(cfg)
    if missing:
        raise ConfigError(missing)


def _check_device(name: str) -> None:
    """ConfigError when the configured device is not on this machine (imports torch only for
    an explicit cuda or mps device)."""
    if not name.startswith(("cuda", "mps")):
        return
    import torch
    if name.startswith("cuda"):
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        idx = int(name.split(":")[1]) if ":" in name else 0
        if idx >= n:
            raise ConfigError([("device", f"{name!r} but this machine has {n} CUDA device(s) "
                                          "(use device: auto or cpu)")])
    elif not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ConfigError([("device", f"{name!r} but MPS is not available on this machine")])


def _check_gpu_memory(cfg, est: dict) -> None:
    """The memory preflight on the GPU itself (a CUDA device: free memory now, as the
    driver reports it; under torchrun each rank's device is checked by rank 0's view of
    device 0, an approximation)."""
    if not cfg.device.startswith("cuda"):
        return
    import torch
    idx = int(cfg.device.split(":")[1]) if ":" in cfg.device else 0
    try:
        free, total = torch.cuda.mem_get_info(idx)
    except RuntimeError as exc:           # a driver that cannot answer: say so, do not refuse
        log.warning("GPU memory of %s not checked: %s", cfg.device, exc)
        return
    resources.check_gpu_memory(est, f"cuda:{idx}", int(free), int(total))


def cmd_plan(args) -> int:
    cfg = _load(args)
    if args.cost_table:
        print(json.dumps(arch_mod.to_table(plan_mod.describe_run(cfg)[1])))
        return EXIT_OK
    plan = plan_mod.project(cfg)
    if args.calibrate:
        threads.apply(cfg.threads)        # the policy the run would use, before torch loads
        from engine.training.calibrate import calibrate
        try:
            got = calibrate(cfg)
        except (RuntimeError, OSError) as exc:      # no device, out of memory: the estimate stays unknown
            log.warning("calibration failed, the wall time stays unknown: %s", exc)
        else:
            log.info("measured %.3g FLOPs/s on %s", got["flops_per_s"], got["device"])
    est = wall_time.estimate(cfg, plan)
    if args.json:
        plan = {**plan, "wall_time": est}
        if model_spec.is_measured(cfg.model.name):
            # the measured cost table: what the studio's preview needs to price this model in-process
            sizes, arch = plan_mod.describe_run(cfg)
            plan = {**plan, "cost_table": arch_mod.to_table(arch)}
        print(json.dumps(plan, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
    else:
        print(plan_mod.format_plan(plan))
        print(wall_time.describe(est))
    return EXIT_OK


def cmd_run(args) -> int:
    cfg = _load(args)
    if args.attach:                      # a torchrun worker of `run`: the launcher made and locked the folder
        return _worker_locked(Path(args.attach), lambda: _train(
            cfg, Path(args.attach), stop_on_eof=args.stop_on_eof, events_on_tty=args.events))
    if args.executor == "slurm":
        # the node's memory and devices are not this machine's: only the configuration's own
        # checks (the projection) here, the rest before submitting (engine.executor.checks)
        plan_mod.project(cfg)
        return executor_cli.submit_run(cfg, args)
    est = resources.preflight(cfg)        # refuses a run that cannot fit in memory
    _check_trackers(cfg)
    if cfg.device.startswith(("cuda", "mps")):
        # a missing GPU is a configuration error before any run folder exists, as in
        # `validate`; the thread policy first, since the check loads torch
        threads.apply(cfg.threads)
        _check_device(cfg.device)
        _check_gpu_memory(cfg, est)
    for warning in config_warnings(cfg):
        log.warning("%s", warning)
    # What only the projection can catch (an unreachable freeze target, unknown dense layers)
    # is a configuration error before any run directory exists, as in `validate`.
    plan_mod.project(cfg)
    # a missing CIFAR file is an error before any run folder exists, as in `validate` (an
    # ImageFolder tree is checked by the projection; its full scan stays in `validate`)
    if cfg.data.name in CIFAR_FILES:
        check_dataset(cfg)
    if launcher.under_torchrun():     # started by torchrun by hand: rank 0 creates the folder
        return _train(cfg, None, stop_on_eof=args.stop_on_eof, events_on_tty=args.events,
                      create=lambda: run_dir_mod.create(cfg, args.run_dir))
    base = args.run_dir if args.run_dir is not None else cfg.run_dir
    warning = resources.check_disk(est, base)
    if warning:
        log.warning("%s", warning)
    try:
        d = run_dir_mod.create(cfg, args.run_dir)
    except run_dir_mod.RunDirError as exc:
        return _fail_at_start(str(exc))
    log.info("run directory %s", d)
    try:
        lock = RunLock(d).acquire()
    except (RunLockedError, OSError) as exc:
        return _fail_at_start(f"cannot lock run folder {d}: {exc}")
    try:
        if launcher.needs_launch(cfg):    # one process per GPU: torchrun starts the workers
            return _launch(cfg, d, ["run", *args.argv, "--attach", str(d)])
        return _train(cfg, d, stop_on_eof=args.stop_on_eof, events_on_tty=args.events)
    finally:
        lock.release()


def cmd_resume(args) -> int:
    d = Path(args.run_dir)
    if launcher.under_torchrun():
        # A worker of a distributed resume (started by the launcher below, which holds the
        # lock, or by torchrun by hand): rank 0 prepares it and passes config and state on.
        return _worker_locked(d, lambda: _resume_worker(d, args))
    if not d.is_dir():
        raise ConfigError([("RUN_DIR", f"not a directory: {d}")])
    if args.executor == "slurm":         # a job that resumes it on a node (engine.executor.job)
        return executor_cli.submit_run(run_dir_mod.read_config(d), args, existing=d)
    d = d.resolve()      # events carry paths (checkpoints) that must not depend on this cwd
    try:
        lock = RunLock(d).acquire()
    except RunLockedError as exc:
        return _fail_at_start(str(exc))      # not into events.jsonl: the holder owns it
    except OSError as exc:
        return _fail_at_start(f"cannot lock run folder {d}: {exc}")
    try:
        _set_threads_from(d)
        from engine.training import checkpoint as ckpt  # torch: after the thread policy
        from engine.training.resume import prepare
        try:
            point = prepare(d, args.allow_change)
        except ckpt.CheckpointError as exc:
            return _fail_at_start(f"cannot resume {d}: {exc}", run_dir=d)
        done = _nothing_to_resume(d, point)
        if done is not None:
            # completed, its end state intact, no more epochs asked for: append nothing (no
            # second run_started/run_finished pair)
            print(f"{d.name} already completed ({done} epochs): nothing to resume, nothing "
                  "appended. To train longer, raise epochs in its config.yaml and resume with "
                  "--allow-change epochs", file=sys.stderr)
            return EXIT_OK
        if launcher.needs_launch(point.cfg):
            return _launch(point.cfg, d, ["resume", *args.argv])
        return _train(point.cfg, d, point, resume=True, stop_on_eof=args.stop_on_eof, events_on_tty=args.events)
    finally:
        lock.release()


def _resume_worker(d: Path, args) -> int:
    point = None
    if int(os.environ.get("RANK", "0")) == 0:
        _set_threads_from(d)
        from engine.training.resume import prepare  # torch: after the thread policy
        point = prepare(d, args.allow_change)
    return _train(point.cfg if point else None, d, point, resume=True,
                  stop_on_eof=args.stop_on_eof, events_on_tty=args.events)


def _worker_locked(d: Path, work) -> int:
    """Run a distributed worker's ``work`` holding the run lock (rank 0 takes it, unless the
    launcher that started torchrun holds it): two jobs never train one folder."""
    try:
        lock = lock_for_worker(d, int(os.environ.get("RANK", "0")))
    except (RunLockedError, OSError) as exc:
        return _fail_at_start(f"cannot lock run folder {d}: {exc}")
    try:
        return work()
    finally:
        if lock is not None:
            lock.release()
def _nothing_to_resume(run_dir: Path, point) -> int | None:
    """The completed epochs when ``run_dir``'s last session completed, its checkpoint holds
    that end state and the config asks for no more epochs; else None (resume trains)."""
    done = completed_epochs(run_dir)
    if done is None or point.state is None:
        return None
    at = int((point.state.get("position") or {}).get("epochs_completed", -1))
    return done if at >= done and point.cfg.epochs <= done else None


def _set_threads_from(run_dir: Path) -> None:
    """A resume reads its checkpoint with torch: set the run's CPU thread policy first, from
    its saved config.yaml (the checkpoint's config, read later, has the same field)."""
    try:
        cfg = config_mod.load(run_dir / run_dir_mod.CONFIG_FILE)
    except (ConfigError, OSError):
        return                        # prepare() reports a missing or broken config properly
    threads.apply(cfg.threads)


def _launch(cfg, run_dir: Path, worker_argv: list[str]) -> int:
    rc = launcher.launch(cfg, run_dir, worker_argv)
    return EXIT_OK if rc == 0 else EXIT_FAILED


def _fail_at_start(message: str, run_dir: Path | None = None) -> int:
    """A failure before training: one clear line on stderr and an ``error`` event (on stdout,
    and in the run's events.jsonl when ``run_dir`` is given)."""
    log.error("%s", message)
    em = Emitter(run_dir, stream_events=None)
    em.emit("error", message=message, traceback="")
    em.close()
    return EXIT_FAILED


def _train(cfg, run_dir: Path | None, point=None, resume: bool = False, stop_on_eof: bool = False,
           events_on_tty: bool = False, create=None) -> int:
    """Train ``cfg`` in ``run_dir`` (locked by the caller). A resume passes ``resume=True`` and
    its resume.ResumePoint (under torchrun rank 0's; the other ranks get config and state
    from it). ``create`` makes the run folder on rank 0 when torchrun was started by hand."""
    if cfg is not None:
        # CPU threads and OpenMP's wait policy are read once, when torch loads: set them first.
        log.info("CPU threads: %d (threads: %s)", threads.apply(cfg.threads), cfg.threads)
    from engine.training import distributed  # torch is imported here, after the thread policy
    if launcher.under_torchrun():
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
        from engine.training.trainer import Trainer  # torch (already loaded by distributed)
        trainer = Trainer(cfg, run_dir, emitter, commands, dist=dist)
        if resume:
            state = point.state if point is not None else None
            has_state = dist.broadcast_object(state is not None if primary else None)
            if has_state:
                trainer.load_checkpoint(state)   # rank 0's state, broadcast to the others
            else:
                trainer.resumed = True       # restarted from epoch 0: readers drop the old epochs
            if point is not None:
                trainer.resume_info = point.info
        status = trainer.fit()
        dist.finish()                    # every rank got here: the watchdog may stop
        log.info("run %s: %s", status, run_dir)
        if status == "stopped" and primary and requeue_at_time_limit():
            log.info("Slurm job at its time limit: requeued; it resumes from this checkpoint")
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


def cmd_sweep(args) -> int:
    return sweep_cmd.main(args)


COMMANDS = {"run": cmd_run, "resume": cmd_resume, "validate": cmd_validate, "plan": cmd_plan, "sweep": cmd_sweep,
            "search": search_cmd.main}


def _measure_model(model_cfg, num_classes: int, image_size: int) -> dict:
    """The cost table of a timm:, py: or wrn28 model (engine.cost.measured's measurer)."""
    from engine.models.measure import measure_config  # torch: only when such a model is planned
    return measure_config(model_cfg, num_classes, image_size)


def main(argv: list[str] | None = None) -> int:
    started.mark_cli()                      # the wall-time estimates count start-up from here
    setup_logging()
    measured.set_measurer(_measure_model)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv[1:] if argv and argv[0] == args.command else argv
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        hint = set_hint(exc)
        if hint:
            print(hint, file=sys.stderr)
        return EXIT_CONFIG
    except BrokenPipeError:
        # `spfde-train plan ... | head`: the reader is done; leave quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
