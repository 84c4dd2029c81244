"""Runs as TensorBoard scalars: ``spfde-gui export --tensorboard OUT RUN_OR_SWEEP``.

Written through the ``tensorboard`` package by the engine's exporter (engine.tracking.export),
the same records the live TensorBoard tracker logs: one folder per run under OUT (a
sweep: one per cell, named by the cell's run folder), tags ``train/loss``, ``test/acc``,
``flops/spent``..., step = epoch. ``pip install 'spfde-studio[tensorboard]'``.
"""
from __future__ import annotations

from pathlib import Path

from engine.tracking.export import ExportError, to_tensorboard


def export(source: str | Path, out: str | Path) -> list[Path]:
    """A run folder or a sweep folder (every cell's runs) as TensorBoard log folders.
    ValueError (ExportError) when ``source`` is neither."""
    return to_tensorboard(source, out)


__all__ = ["ExportError", "export"]
