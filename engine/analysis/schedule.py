"""When the analyses measure and what their probe forwards cost (pure Python).

A measurement happens at the end of epoch e when (e + 1) is a multiple of
``analysis.every`` (default: the DST interval) and at the end of the last epoch, so every
run ends with one (structural similarity against the final mask needs it). It forwards
the fixed probe set once through the whole network, frozen blocks included, at the
epoch's densities: ``probe_samples x F_sparse`` FLOPs, counted as the ``analysis``
overhead by the ledger and by ``engine.cost.projection.project`` alike. The per-step gradient norms
(one fused norm over the gradients the step already has, about two FLOPs per weight) are
below 0.01% of a step's FLOPs and are not counted.
"""
from __future__ import annotations

from engine.config import RunConfig, analysis_every

SOURCE = "analysis"


def measures(cfg: RunConfig, epoch: int) -> bool:
    """Whether the analyses measure at the end of ``epoch``."""
    if not cfg.analysis.enabled:
        return False
    return (epoch + 1) % analysis_every(cfg) == 0 or epoch == cfg.epochs - 1


def measure_epochs(cfg: RunConfig) -> list[int]:
    return [e for e in range(cfg.epochs) if measures(cfg, e)]


def probe_samples(cfg: RunConfig, train_size: int) -> int:
    """Probe set size: ``analysis.probe_size`` capped by the training set."""
    return min(int(cfg.analysis.probe_size), int(train_size))


def probe_flops(cfg: RunConfig, train_size: int, epoch: int, forward_flops: float) -> float:
    """Analysis FLOPs at the end of ``epoch``; ``forward_flops`` per sample at its densities."""
    return probe_samples(cfg, train_size) * float(forward_flops) if measures(cfg, epoch) else 0.0
