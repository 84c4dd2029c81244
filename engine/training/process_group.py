"""Whether this process is one rank of a torch.distributed group, and which: asked in one
place (the sieve and the forgetting tracker both need it)."""
from __future__ import annotations

import torch


def active() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank() -> int:
    return torch.distributed.get_rank() if active() else 0
