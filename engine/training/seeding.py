"""Keyed random generators: every random decision derives from (seed, purpose, epoch, ...).

A resumed run then makes the same decisions as an uninterrupted one without replaying any
random stream, and components never disturb each other's randomness.
"""
from __future__ import annotations

import hashlib

import torch


def key_seed(seed: int, *keys) -> int:
    h = hashlib.blake2b(repr((int(seed),) + tuple(keys)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & ((1 << 63) - 1)


def gen(seed: int, *keys, device: str | torch.device = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(key_seed(seed, *keys))
    return g
