"""What is refused before anything is submitted to Slurm, each with a message naming the
field or the path (docs/slurm.md):

* an unknown partition (``sinfo``), or account (``sacctmgr``, only where accounting is on);
* ``gpus_per_node`` larger than the partition's nodes have (their GRES, from ``sinfo``);
* more CPUs on one node (tasks per node x ``cpus_per_task``) than its nodes have: Slurm would
  keep such a job pending for ever (reason PartitionConfig) instead of refusing it;
* a run folder the nodes cannot see: a relative path cannot be checked, and a folder under
  node-local storage (/tmp, /var/tmp, /dev/shm, /run) is refused unless every node of the
  partition is this machine. A job whose node still cannot see it fails at once with that
  message in its Slurm log (engine.executor.job), and the job's marker line in the run
  folder proves visibility for each started job;
* a time limit shorter than one epoch's projected time, where a rate (FLOPs/s) is known.
"""
from __future__ import annotations

import getpass
import re
import shutil
import socket
import subprocess
from pathlib import Path

from engine.executor.slurm import SlurmOptions, time_seconds

NODE_LOCAL = ("/tmp", "/var/tmp", "/dev/shm", "/run")


class SubmitError(ValueError):
    """A Slurm submission refused before sbatch (the message names the field or path)."""


def _run(cmd: list[str]) -> str | None:
    if not shutil.which(cmd[0]):
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def partitions() -> tuple[list[str], str | None]:
    """(partition names, the default one) from sinfo; ([], None) when sinfo cannot answer."""
    out = _run(["sinfo", "-h", "-o", "%P"]) or ""
    names, default = [], None
    for line in out.split():
        name = line.rstrip("*")
        if line.endswith("*"):
            default = name
        if name not in names:
            names.append(name)
    return names, default


def partition_nodes(partition: str) -> list[tuple[str, int]]:
    """(node, GPUs it has) for each node of ``partition``."""
    out = _run(["sinfo", "-h", "-N", "-p", partition, "-o", "%N|%G"]) or ""
    nodes = []
    for line in out.splitlines():
        if "|" in line:
            node, gres = line.split("|", 1)
            nodes.append((node.strip(), gpus_in_gres(gres)))
    return nodes


def gpus_in_gres(gres: str) -> int:
    """GPUs in a GRES string: ``gpu:a100:8(S:0-1)`` -> 8, ``gpu:4,shard:8`` -> 4, ``(null)`` -> 0."""
    total = 0
    for item in gres.split(","):
        parts = re.sub(r"\(.*?\)", "", item).split(":")
        if parts[0] == "gpu":
            last = parts[-1] if len(parts) > 1 else "1"
            total += int(last) if last.isdigit() else 1
    return total


def check_partition(opts: SlurmOptions) -> str:
    """The partition jobs go to (named, or the cluster's default); refuses an unknown one."""
    names, default = partitions()
    if not names:
        raise SubmitError("slurm: sinfo lists no partition (is slurmctld running and SLURM_CONF right?)")
    if opts.partition and opts.partition not in names:
        raise SubmitError(f"slurm.partition: {opts.partition!r} is not a partition of this cluster; "
                          f"sinfo lists {', '.join(names)}")
    part = opts.partition or default
    if not part:
        raise SubmitError(f"slurm.partition: the cluster has no default partition; name one of {', '.join(names)}")
    return part


def check_account(opts: SlurmOptions) -> None:
    """An account unknown to sacctmgr (skipped where accounting is off: no sacctmgr answer)."""
    if not opts.account:
        return
    out = _run(["sacctmgr", "-n", "-P", "show", "assoc", f"user={getpass.getuser()}", "format=account"])
    if out is None:
        return
    accounts = {a.strip() for a in out.split() if a.strip()}
    if accounts and opts.account not in accounts:
        raise SubmitError(f"slurm.account: {opts.account!r} is not one of your accounts ({', '.join(sorted(accounts))})")


def check_gpus(opts: SlurmOptions, partition: str) -> None:
    if not opts.gpus_per_node:
        return
    nodes = partition_nodes(partition)
    most = max((g for _, g in nodes), default=0)
    if opts.gpus_per_node > most:
        raise SubmitError(f"slurm.gpus_per_node: {opts.gpus_per_node} GPUs, but the nodes of partition "
                          f"{partition!r} have at most {most}")


def partition_cpus(partition: str) -> int:
    """The most CPUs one node of ``partition`` has (0 when sinfo cannot say)."""
    out = _run(["sinfo", "-h", "-N", "-p", partition, "-o", "%c"]) or ""
    return max((int(c) for c in out.split() if c.isdigit()), default=0)


def check_cpus(opts: SlurmOptions, partition: str, tasks_per_node: int) -> None:
    want = max(1, tasks_per_node) * opts.cpus_per_task
    have = partition_cpus(partition)
    if have and want > have:
        field = "slurm.cpus_per_task" if tasks_per_node <= 1 else "distributed.nproc_per_node x slurm.cpus_per_task"
        raise SubmitError(f"{field}: {want} CPUs on one node, but the nodes of partition {partition!r} "
                          f"have at most {have}")


def check_nodes(nodes: int, partition: str) -> None:
    """A multi-node run asking for more machines than the partition has."""
    have = len(partition_nodes(partition))
    if nodes > 1 and have and nodes > have:
        raise SubmitError(f"distributed.nnodes: {nodes} machines, but partition {partition!r} has {have} node(s)")


def check_folder(path: Path, partition: str) -> None:
    """Refuses a run/sweep folder the nodes are unlikely to see (see the module docstring)."""
    if not Path(path).is_absolute():
        raise SubmitError(f"run folder {path}: must be an absolute path on a filesystem the nodes share")
    p = str(Path(path).resolve())
    local = next((d for d in NODE_LOCAL if p == d or p.startswith(d + "/")), None)
    if local is None:
        return
    here = socket.gethostname().split(".")[0]
    nodes = [n for n, _ in partition_nodes(partition)]
    if nodes and all(n.split(".")[0] == here for n in nodes):
        return                     # a one-node cluster on this machine: its /tmp is the nodes' /tmp
    raise SubmitError(f"run folder {p}: under {local}, which is local to each machine, so the nodes of "
                      f"partition {partition!r} cannot see it; use a folder on a shared filesystem")


def check_time(opts: SlurmOptions, epoch_seconds: float | None) -> str | None:
    """Refuses a time limit shorter than one projected epoch; without a rate to project with,
    returns the note that the check was skipped."""
    if epoch_seconds is None:
        return ("slurm.time: not checked against an epoch's time (no measured rate yet: "
                "give --flops-per-s, or finish a cell first)")
    limit = time_seconds(opts.time)
    if limit < epoch_seconds:
        raise SubmitError(f"slurm.time: {opts.time} ({limit} s) is shorter than one epoch's projected time "
                          f"({epoch_seconds:.0f} s); raise it")
    return None


def check_all(opts: SlurmOptions, folder: Path, epoch_seconds: float | None = None, nodes: int = 1,
              tasks_per_node: int = 1) -> list[str]:
    """Every check, in the order of the docstring; the notes of skipped ones."""
    part = check_partition(opts)
    check_account(opts)
    check_gpus(opts, part)
    check_cpus(opts, part, tasks_per_node)
    check_nodes(nodes, part)
    check_folder(folder, part)
    note = check_time(opts, epoch_seconds)
    return [note] if note else []
