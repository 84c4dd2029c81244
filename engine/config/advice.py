"""Warnings about valid configurations that quietly do less than they seem to.

These are not errors (the run works), so ``validate`` and ``run`` print them and go on.
"""
from __future__ import annotations

from engine.config.schema import RunConfig


def config_warnings(cfg: RunConfig) -> list[str]:
    """One sentence per setting that silently defeats part of the run."""
    out: list[str] = []
    if cfg.sieve.ratio > 0 and cfg.interval == 1:
        # a forgetting event needs a sample seen correct and then wrong within one interval:
        # with one epoch per interval each sample is seen once
        out.append("interval: 1 with sieving (sieve.ratio > 0): each sample is seen once per "
                   "interval, so no forgetting event can be recorded; the sieve then ranks samples "
                   "only by never-correct and the forgetting histogram is one bar at 0 "
                   "(use interval >= 2)")
    return out
