"""The measurements of the paper's Section 3, as plain tensor functions.

* Linear CKA (Kornblith et al. 2019): for features X (n x p) and Y (n x q) of the same n
  inputs, with column-centred Xc, Yc,
      CKA = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)
          = <Kc, Lc>_F / (||Kc||_F ||Lc||_F),  Kc = Xc Xc^T, Lc = Yc Yc^T.
  The Gram form is used: a block's output has far more features than the probe has
  samples, and one measurement's centred Gram (n x n) is all the next one needs. Centring
  (which cancels large terms) and the Frobenius products run in float64; the Gram product
  itself runs in the features' precision, at least float32 (its relative error, about
  1e-7, is far below any difference the heat maps or the adaptive thresholds read), since
  it is most of a measurement's time on a CPU.
* Structural similarity (Fig. 1a, paper Section 3.1): the share of epoch e's 50%
  largest-magnitude non-zero weights that are non-zero in the *final mask*,
  |top(e) and final mask| / |top(e)| (``kept_share``).
* Rank overlap (not a paper figure): the positions of the top-half sets of two moments,
  |A and B| / |B| (B the later set, ``overlap``): whether the weight *ranking* is stable.
"""
from __future__ import annotations

import torch

FLOAT = torch.float64


def centered_gram(x: torch.Tensor) -> torch.Tensor:
    """Kc = Xc Xc^T (float64) of features x (n x ...), Xc = x minus its column means
    (centred in float64, multiplied in x's precision promoted to at least float32)."""
    x = x.reshape(x.shape[0], -1)
    work = torch.promote_types(x.dtype, torch.float32)
    x64 = x.to(FLOAT)
    xc = (x64 - x64.mean(dim=0, keepdim=True)).to(work)
    return (xc @ xc.T).to(FLOAT)


def cka_from_grams(k: torch.Tensor, l: torch.Tensor) -> float:
    """Linear CKA of two centred Grams (nan when either set of features is constant)."""
    num = (k * l).sum()
    den = torch.linalg.matrix_norm(k) * torch.linalg.matrix_norm(l)
    return float(num / den) if float(den) > 0 else float("nan")


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of two feature matrices over the same inputs (rows)."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"linear_cka: both feature sets need the same number of samples, got {x.shape[0]} and {y.shape[0]}")
    return cka_from_grams(centered_gram(x), centered_gram(y))


def top_half(weight: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Bool tensor marking the ceil(k/2) largest-magnitude of the k non-zero (and, with a
    mask, kept) weights. Ties are broken by position (stable), so the set is deterministic."""
    w = weight.detach().abs().flatten()
    alive = w != 0
    if mask is not None:
        alive &= mask.flatten().bool()
    k = int(alive.sum())
    out = torch.zeros_like(alive)
    if k == 0:
        return out.view_as(weight)
    score = torch.where(alive, w, torch.full_like(w, -1.0))
    idx = torch.sort(score, descending=True, stable=True).indices[:(k + 1) // 2]
    out[idx] = True
    return out.view_as(weight)


def overlap(earlier: torch.Tensor, later: torch.Tensor) -> float | None:
    """|earlier and later| / |later| of two bool position sets (None when ``later`` is empty)."""
    n = int(later.sum())
    if n == 0:
        return None
    return float((earlier.bool() & later.bool()).sum()) / n


def kept_share(top: torch.Tensor, final_mask: torch.Tensor) -> float | None:
    """Fig. 1a: |top and final_mask| / |top| (None when ``top`` is empty)."""
    return overlap(final_mask, top)


def pack(bits: torch.Tensor) -> torch.Tensor:
    """A bool tensor as uint8 bytes (8 positions a byte) on the CPU: one measurement's
    top-half sets stay small enough to keep every one of them for the final comparison."""
    flat = bits.detach().flatten().to("cpu", torch.uint8)
    pad = (-flat.numel()) % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    weights = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)
    return (flat.view(-1, 8) * weights).sum(dim=1, dtype=torch.int32).to(torch.uint8)


def unpack(packed: torch.Tensor, numel: int) -> torch.Tensor:
    shifts = torch.tensor([7, 6, 5, 4, 3, 2, 1, 0], dtype=torch.uint8)
    bits = (packed.to(torch.uint8).view(-1, 1) >> shifts) & 1
    return bits.flatten()[:numel].bool()
