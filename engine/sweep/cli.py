"""The ``spfde-train sweep`` command: plan, run or resume a sweep, print its table."""
from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

from engine.executor import checks
from engine.executor import cli as executor_cli
from engine.executor.slurm import SlurmExecutor, SlurmOptions, available
from engine.run.events import dumps, make_event
from engine.run.lock import RunLock, RunLockedError
from engine.sweep import cells as cells_mod
from engine.sweep import cluster, runner
from engine.sweep import export as export_mod
from engine.sweep import manifest as manifest_mod
from engine.sweep import results as results_mod
from engine.sweep import spec as spec_mod
from engine.sweep import state as state_mod
from engine.tracking import groups

log = logging.getLogger("engine.sweep")


def measured_rate(m: manifest_mod.Manifest) -> float | None:
    """Executed FLOPs per second of the sweep's finished cells (None before any)."""
    flops = wall = 0.0
    for line in results_mod.latest_lines(manifest_mod.read_jsonl(m.dir / manifest_mod.RESULTS)).values():
        if line.get("status") == "completed" and line.get("flops_dense") and line.get("wall_time"):
            flops += cells_mod.executed_flops(line)
            wall += float(line["wall_time"])
    return flops / wall if wall > 0 else None


def resolve(args) -> tuple[spec_mod.SweepSpec | None, list[cells_mod.Cell], manifest_mod.Manifest | None]:
    """(spec, planned cells, existing manifest or None) for a sweep file or folder."""
    src = Path(args.source)
    shipped = spec_mod.SWEEPS_DIR / f"{args.source}.yaml"
    if not src.exists() and shipped.is_file():     # a shipped sweep by name: demo_grid
        src = shipped
    if src.is_dir():
        m = manifest_mod.read(src)
        return None, m.cells, m
    spec = spec_mod.load(src)
    cells = cells_mod.build(spec)
    parent = args.sweep_dir or spec.sweep_dir
    found = None if args.new else manifest_mod.find_matching(parent, spec, cells)
    return spec, cells, manifest_mod.read(found) if found else None


def main(args) -> int:
    spec, cells, m = resolve(args)
    if args.status or args.cancel:
        return _status_or_cancel(args, m)
    if args.table:
        if m is None:
            print(f"no sweep folder for {args.source} yet (run it first)", file=sys.stderr)
            return 2
        rows = results_mod.load(m)
        print(export_mod.FORMATS[args.table](rows, m.varied), end="")
        # the table counts failed seeds; why each failed (a Slurm job's log tail) goes beside it
        for err in (e for r in rows for e in r.errors):
            print("failed " + "\n    ".join(err.splitlines()[-8:]), file=sys.stderr)
        return 0
    if args.plan:
        rate = (args.flops_per_s or (measured_rate(m) if m else None) or cells_mod.cached_rate(cells)
                or cells_mod.DEFAULT_CPU_FLOPS_PER_S)
        if spec is None:
            assert m is not None, "resolve() gives a spec or a sweep folder"
            spec = spec_mod.SweepSpec(name=m.name, base={}, seeds=m.seeds or [0])
            spec.axes = {f: [] for f in m.varied}
        # the start-up a run measured here, where the rate is this machine's cached one too
        startup = (cells_mod.cached_startup(cells) if not args.flops_per_s and not (m and measured_rate(m))
                   else None) or cells_mod.CELL_OVERHEAD_S
        print(cells_mod.format_plan(spec, cells, rate, startup))
        return 0
    executor = args.executor or (spec.executor if spec else None) or (m.data.get("executor") if m else None) or "local"
    if executor == "slurm":
        return _on_slurm(args, spec, cells, m)
    if m is None:
        assert spec is not None, "resolve() gives a spec or a sweep folder"
        m = manifest_mod.create(spec, cells, args.sweep_dir)
        log.info("sweep folder %s (%d cells)", m.dir, len(m.cells))
    else:
        log.info("resuming sweep folder %s", m.dir)
    busy = _active_jobs(m)
    if busy:
        print(f"{m.dir}: {len(busy)} cell(s) have Slurm jobs pending or running ({', '.join(busy[:5])}); "
              "running the sweep here would run them twice. Wait for them, or cancel them with --cancel",
              file=sys.stderr)
        return 2
    # a person at a terminal reads progress lines, as under `run`; a pipe gets the JSON events
    human = sys.stdout if sys.stdout.isatty() and not getattr(args, "events", False) else None
    try:
        return runner.run(m, gpus=args.gpus, human=human)
    except (ValueError, RunLockedError, OSError) as exc:   # the lock: another sweep runs this folder
        print(str(exc), file=sys.stderr)
        return 2


def _status_or_cancel(args, m: manifest_mod.Manifest | None) -> int:
    if m is None:
        print(f"no sweep folder for {args.source} yet (run it first)", file=sys.stderr)
        return 2
    has_jobs = bool(cluster.jobs(m))
    ex = SlurmExecutor(SlurmOptions()) if has_jobs and not available() else None   # query/cancel: no options
    if args.cancel:
        if not has_jobs:
            print(f"{m.dir}: no Slurm job was submitted for this sweep (a local sweep stops with Ctrl-C)", file=sys.stderr)
            return 2
        if ex is None:
            print(available(), file=sys.stderr)
            return 2
        ids = cluster.cancel(m, ex)
        print(f"cancelled {len(ids)} job(s){': ' + ' '.join(ids) if ids else ''}; their checkpoints are kept, "
              f"run the sweep again to continue")
        return 0
    if has_jobs and ex is None:
        print(f"note: {available()}; showing the cells' states from their folders", file=sys.stderr)
    print(cluster.format_status(cluster.status_rows(m, ex)), end="")
    return 0


def _active_jobs(m: manifest_mod.Manifest) -> list[str]:
    """The sweep's Slurm jobs still pending or running (none asked when none was submitted)."""
    recorded = cluster.jobs(m)
    if not recorded or available():
        return []
    try:
        info = SlurmExecutor(SlurmOptions()).query([j.job_id for j in recorded.values()])
    except RuntimeError:
        return []
    return [j for j, ji in info.items() if ji.active]


def _emitter(m: manifest_mod.Manifest):
    def emit(event: str, /, **fields) -> dict:
        ev = make_event(event, **fields)
        manifest_mod.append_jsonl(m.dir / manifest_mod.EVENTS, ev)
        print(dumps(ev), flush=True)
        return ev
    return emit


def _epoch_seconds(args, cells: list[cells_mod.Cell], m: manifest_mod.Manifest | None) -> float | None:
    """The longest projected epoch over the cells, from --flops-per-s or the sweep's measured
    rate; None without either (the default CPU figure says nothing about a cluster's GPUs)."""
    rate = args.flops_per_s or (measured_rate(m) if m else None)
    if not rate:
        return None
    return max((cells_mod.estimate_seconds(c, rate) / max(1, int(c.config.get("epochs", 1))) for c in cells
                if c.projected), default=None)


def _on_slurm(args, spec, cells, m) -> int:
    """Check, submit the cells that need it as one job array, then follow them (or not, with
    --detach): every refusal comes before anything is submitted or any folder made."""
    missing = available()
    if missing:
        print(missing, file=sys.stderr)
        return 2
    try:
        opts = executor_cli.options(args, spec.slurm if spec else m.data.get("slurm"))
        parent = m.dir if m is not None else Path(args.sweep_dir or spec.sweep_dir).expanduser()
        for note in checks.check_all(opts, parent.resolve(), _epoch_seconds(args, cells, m)):
            log.warning("%s", note)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if m is None:
        m = manifest_mod.create(spec, cells, args.sweep_dir)
        log.info("sweep folder %s (%d cells)", m.dir, len(m.cells))
    m.data["executor"], m.data["slurm"] = "slurm", {k: v for k, v in vars(opts).items()}
    m.save()
    emit = _emitter(m)
    ex = SlurmExecutor(opts)
    try:
        with RunLock(m.dir):          # two submitters on one folder would submit every cell twice
            submitted = cluster.submit(m, ex, on_event=emit)
    except (RuntimeError, RunLockedError, OSError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    emit("sweep_started", sweep_dir=str(m.dir.resolve()), sweep=m.name, cells=len(m.cells), todo=len(submitted),
         slots=["slurm"], jobs={j.cell: j.job_id for j in submitted})
    if args.detach:
        print(f"submitted {len(submitted)} job(s); follow with: spfde-train sweep {m.dir} --status", file=sys.stderr)
        return 0
    stop = threading.Event()
    old = {}

    def handler(signum, frame):
        log.info("stopped following; the jobs go on (spfde-train sweep %s --cancel cancels them)", m.dir)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            old[sig] = signal.signal(sig, handler)
    try:
        rc = cluster.follow(m, ex, emit, poll_s=args.poll_s, should_stop=stop.is_set)
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
    states = state_mod.states(m)
    done = sum(1 for s in states if s.action == "done")
    failed = sum(1 for s in states if s.action == "failed" or s.status == "failed")
    remaining = sum(1 for s in states if s.todo)
    status = "detached" if stop.is_set() else ("completed" if not remaining else "stopped")
    if status != "detached" and m.cells:        # the trackers' parent run ends with the sweep
        groups.end_parent(m.dir, m.cells[0].config,
                          "KILLED" if status == "stopped" else "FAILED" if failed else "FINISHED")
    emit("sweep_finished", status=status, completed=done, failed=failed, remaining=remaining,
         sweep_dir=str(m.dir.resolve()))
    return rc
