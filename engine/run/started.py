"""When this engine process started (the CLI's import, before torch loads): what the
wall-time estimates count as start-up (engine.training.throughput)."""
from __future__ import annotations

import time

_t0: float | None = None


def mark_cli() -> None:
    """Called when the engine's CLI starts (``engine.cli.main``): the start-up counts from here."""
    global _t0
    _t0 = time.monotonic()


def seconds_since_start() -> float | None:
    """Seconds since the CLI started, read once (a later run in the same process, e.g. a
    notebook, has no fresh start to measure); None when no CLI started this run."""
    global _t0
    if _t0 is None:
        return None
    took, _t0 = time.monotonic() - _t0, None
    return took
