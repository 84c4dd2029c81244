"""The executor's command-line options, shared by ``spfde-train run`` and ``sweep``, and a
single run submitted to Slurm (``spfde-train run --executor slurm``)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.executor import checks
from engine.executor.base import EXECUTORS
from engine.executor.slurm import SlurmExecutor, SlurmOptions, available, load_options, options_from, parse_sets
from engine.run import folder as run_dir_mod


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", choices=EXECUTORS, default=None,
                   help="where the process(es) run: this machine (local, the default) or a Slurm cluster "
                        "(docs/slurm.md)")
    p.add_argument("--slurm-config", metavar="PATH", default=None,
                   help="your cluster's Slurm options (YAML: partition, account, qos, time, gpus_per_node, "
                        "cpus_per_task, mem, constraint, array_parallelism, signal_warning_s, extra); "
                        "default ~/.config/spfde/slurm.yaml when it exists")
    p.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                   help="one Slurm option on top of the config file and the sweep file (partition=gpu, "
                        "time=4:00:00); repeatable")


def options(args, file_options: dict | None = None) -> SlurmOptions:
    """The user's config file, then the sweep file's ``slurm:``, then ``--slurm`` pairs."""
    opts = load_options(args.slurm_config, explicit=bool(args.slurm_config))
    opts = options_from(file_options or {}, "slurm", base=opts)
    return parse_sets(list(args.slurm or []), opts)


def submit_run(cfg, args, existing: Path | None = None) -> int:
    """Make the run folder here (or take ``existing``: ``resume RUN_DIR --executor slurm``),
    check, and submit one job that trains in it, resuming from its checkpoint if it has one
    (through srun with one task per process when distributed asks for several); prints
    where to watch."""
    missing = available()
    if missing:
        print(missing, file=sys.stderr)
        return 2
    try:
        opts = options(args)
        base = existing.resolve().parent if existing is not None else \
            Path(args.run_dir if args.run_dir is not None else cfg.run_dir).expanduser().resolve()
        dc = cfg.distributed
        ntasks, nodes = dc.nproc_per_node * dc.nnodes, dc.nnodes
        for note in checks.check_all(opts, base, nodes=nodes, tasks_per_node=dc.nproc_per_node):
            print(f"note: {note}", file=sys.stderr)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if ntasks > 1 and not opts.gpus_per_node and cfg.device.startswith("cuda"):
        opts.gpus_per_node = dc.nproc_per_node
    d = existing.resolve() if existing is not None else run_dir_mod.create(cfg, base).resolve()
    ex = SlurmExecutor(opts)
    try:
        # resume --allow-change: the job's resume accepts the same changed fields
        allow = [a for f in (getattr(args, "allow_change", None) or []) for a in ("--allow-change", f)]
        (job,) = ex.submit([[sys.executable, "-m", "engine.executor.job", str(d), *allow]], job_name=f"spfde-{cfg.name}",
                           log_dir=str(d), ntasks=ntasks, nodes=nodes)
    except RuntimeError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(f"submitted Slurm job {job}: run folder {d} (its Slurm log: {d}/slurm-{job}.log); "
          f"watch it with spfde-gui or follow {d}/events.jsonl")
    return 0
