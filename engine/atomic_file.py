"""Writing a small file whole or not at all (pure Python, no torch).

A unique temporary file beside the target (two writers never share one), then
``os.replace``: a reader sees the old content or the new, never half of either, and a write
that fails (a full disk) removes its temporary file. Checkpoints have their own, with
fsync (engine.training.checkpoint); the sweep manifest refuses planted links
(engine.sweep.manifest).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_text(path: str | Path, text: str) -> None:
    """Replace ``path``'s content with ``text`` (UTF-8) in one step; an OSError propagates."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
