"""CKA against the final model (the paper's Fig. 1b / A1), from Grams kept on disk.

Each measurement's centred Gram per block (n x n over the probe set, float64) is written to
``<run_dir>/analysis/gram_e<epoch>.pt`` (atomically: a crash leaves the previous files
whole). At the last epoch every kept Gram is scored against the final one, per block;
the files survive a resume, so a resumed run scores the measurements of its first part too.
While running, only CKA with the previous measurement exists (the event's ``cka``); the
final comparison arrives once, in the last epoch's ``cka_to_final`` (docs/fidelity.md).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from . import metrics

FOLDER = "analysis"


class GramStore:
    def __init__(self, run_dir: str | os.PathLike):
        self.folder = Path(run_dir) / FOLDER

    def path(self, epoch: int) -> Path:
        return self.folder / f"gram_e{int(epoch)}.pt"

    def save(self, epoch: int, grams: dict[str, torch.Tensor]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path(epoch).with_suffix(".tmp")
        torch.save({k: g.detach().to("cpu", metrics.FLOAT) for k, g in grams.items()}, tmp)
        os.replace(tmp, self.path(epoch))

    def load(self, epoch: int) -> dict[str, torch.Tensor] | None:
        p = self.path(epoch)
        if not p.is_file():
            return None
        try:
            return torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:   # a damaged file: that measurement is scored as missing
            raise ValueError(f"{p}: unreadable Gram file ({exc}); delete it to score without it") from exc

    def against_final(self, epochs: list[int], final: dict[str, torch.Tensor]) -> dict[str, list]:
        """Per block, for every measurement epoch: CKA of its Gram with ``final`` (None where
        the file or the block is missing)."""
        out: dict[str, list] = {name: [] for name in final}
        for e in epochs:
            grams = self.load(e) or {}
            for name, k_final in final.items():
                g = grams.get(name)
                val = metrics.cka_from_grams(g, k_final.to("cpu", metrics.FLOAT)) if g is not None else None
                out[name].append(round(val, 6) if val is not None and math.isfinite(val) else None)
        return out
