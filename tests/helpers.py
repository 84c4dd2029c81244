"""Small test doubles shared by several test modules (tests/ is on sys.path via conftest)."""
from __future__ import annotations


class StopAfter:
    """A command channel that asks for a stop after a given number of polls (batches)."""

    def __init__(self, polls: int):
        self.left = polls

    @property
    def should_stop(self) -> bool:
        self.left -= 1
        return self.left < 0

    def take_checkpoint_request(self) -> bool:
        return False
