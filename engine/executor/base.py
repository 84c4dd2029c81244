"""The executor interface: submit cells, query their jobs' state, cancel them."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

EXECUTORS = ("local", "slurm")      # where runs and sweep cells run (docs/slurm.md)
ACTIVE_STATES = frozenset({"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "SUSPENDED",
                           "RESIZING", "REQUEUE_HOLD", "REQUEUE_FED"})


@dataclass
class JobInfo:
    job_id: str
    state: str              # the scheduler's word: PENDING, RUNNING, ... (ENDED once it left the queue)
    node: str = ""
    elapsed: str = ""
    reason: str = ""

    @property
    def active(self) -> bool:
        """Pending or running: such a cell must never be submitted again."""
        return self.state.split()[0] in ACTIVE_STATES if self.state else False


class Executor(ABC):
    name: str = ""

    @abstractmethod
    def submit(self, commands: list[list[str]], job_name: str, log_dir: str,
               ntasks: int = 1, nodes: int = 1) -> list[str]:
        """Submit one job per command (each with ``ntasks`` processes over ``nodes`` machines);
        their job ids, in order."""

    @abstractmethod
    def query(self, job_ids: list[str]) -> dict[str, JobInfo]:
        """The state of each job id (ENDED for one the scheduler no longer lists)."""

    @abstractmethod
    def cancel(self, job_ids: list[str]) -> None:
        """Cancel the jobs (each cell checkpoints on SIGTERM first)."""
