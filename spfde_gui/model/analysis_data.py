"""The Section 3 analyses of a run (``analysis`` events) as matrices for the views and
the report. Pure Python + numpy, like spfde_gui.model.run_model.

A measurement at the end of epoch e compares the network with the previous measurement,
so its value stands for the epochs since then: ``heat`` fills columns (previous, e] with
it, giving a layers x epochs image without gaps (NaN before the first comparison).
"""
from __future__ import annotations

import numpy as np

from spfde_gui.model.run_model import RunModel

KINDS = {
    "cka": ("cka", "blocks", "CKA with the previous measurement"),
    "mask_similarity": ("mask_similarity", "layers", "structural similarity with the previous measurement"),
    "block_mask_similarity": ("block_mask_similarity", "blocks", "structural similarity (block mean)"),
    "similarity_to_final": ("similarity_to_final", "layers", "structural similarity with the final mask (Fig. 1a)"),
    "cka_to_final": ("cka_to_final", "blocks", "CKA with the final model (Fig. 1b), at the end of the run"),
    "rank_overlap_to_final": ("rank_overlap_to_final", "layers", "top-half rank overlap with the final weights"),
}
# Tables the last epoch carries for every measurement at once (they need the final model)
_FINAL_TABLES = ("similarity_to_final", "cka_to_final", "rank_overlap_to_final")


def has_analysis(m: RunModel) -> bool:
    return bool(m.analysis_events)


def measured(m: RunModel) -> list[dict]:
    """The measurement events, in epoch order (a resumed run's superseded ones are gone)."""
    return [e for e in m.analysis_events if e.get("measured") and isinstance(e.get("epoch"), int)]


def _n_epochs(m: RunModel) -> int:
    last = max((e.get("epoch", -1) for e in m.analysis_events if isinstance(e.get("epoch"), int)), default=-1)
    return max(m.epochs_planned or 0, m.n_epochs, last + 1)


def heat(m: RunModel, kind: str) -> tuple[list[str], np.ndarray]:
    """(row names, rows x epochs float matrix) of one measure; NaN where there is no value."""
    if kind not in KINDS:
        raise KeyError(f"unknown analysis measure {kind!r}; expected one of {', '.join(KINDS)}")
    T = _n_epochs(m)
    evs = measured(m)
    if kind in _FINAL_TABLES:
        last = next((e for e in reversed(m.analysis_events) if isinstance(e.get(kind), dict)), None)
        if last is None:
            return [], np.full((0, T), np.nan)
        table = last[kind]
        epochs = [int(x) for x in last.get("measure_epochs") or []]
        names = list(table)
        mat = np.full((len(names), T), np.nan)
        prev = -1
        for j, e in enumerate(epochs):
            for i, n in enumerate(names):
                vals = table[n]
                if j < len(vals) and vals[j] is not None:
                    mat[i, prev + 1:e + 1] = float(vals[j])
            prev = e
        return names, mat
    key = KINDS[kind][0]
    names: list[str] = []
    if KINDS[kind][1] == "blocks":
        names = list(m.block_names)
    for e in evs:
        for n in (e.get(key) or {}):
            if n not in names:
                names.append(n)
    row = {n: i for i, n in enumerate(names)}
    mat = np.full((len(names), T), np.nan)
    prev = -1
    for e in evs:
        ep = int(e["epoch"])
        for n, v in (e.get(key) or {}).items():
            if v is not None:
                mat[row[n], prev + 1:ep + 1] = float(v)
        prev = ep
    return names, mat


def grad_norms(m: RunModel) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(block names, epochs, blocks x epochs mean gradient norms; NaN while frozen)."""
    evs = [e for e in m.analysis_events if isinstance(e.get("grad_norm"), dict)]
    names = list(m.block_names)
    for e in evs:
        for n in e["grad_norm"]:
            if n not in names:
                names.append(n)
    epochs = np.array([float(e.get("epoch", np.nan)) for e in evs])
    mat = np.full((len(names), len(evs)), np.nan)
    row = {n: i for i, n in enumerate(names)}
    for j, e in enumerate(evs):
        for n, v in e["grad_norm"].items():
            if v is not None:
                mat[row[n], j] = float(v)
    return names, epochs, mat


def grad_norm_differences(m: RunModel) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The paper's Fig. 3b: per block, |mean gradient norm(e) - mean gradient norm(e - 1)|
    between consecutive epochs (NaN where either is missing, e.g. frozen or the first)."""
    names, epochs, g = grad_norms(m)
    diff = np.full_like(g, np.nan)
    if g.shape[1] > 1:
        consecutive = np.diff(epochs) == 1
        diff[:, 1:] = np.where(consecutive, np.abs(np.diff(g, axis=1)), np.nan)
    return names, epochs, diff


def freeze_epochs(m: RunModel) -> dict[str, int]:
    """Block -> the epoch it (last) froze at, from the run's freeze events."""
    out: dict[str, int] = {}
    for e in m.freeze_events:
        b, ep = e.get("block"), e.get("epoch")
        if isinstance(b, str) and isinstance(ep, int):
            out[b] = ep
    return out


def layer_block(m: RunModel) -> dict[str, str]:
    """Layer name -> block name, from run_started's model description."""
    blocks = (((m.run_started or {}).get("model") or {}).get("blocks")) or []
    out = {}
    for b in blocks:
        if isinstance(b, dict):
            for layer in b.get("layers") or []:
                out[str(layer)] = str(b.get("name"))
    return out


def freeze_marks(m: RunModel, rows: list[str]) -> list[tuple[int, int]]:
    """(epoch, row) of each row's block freeze: rows are block or layer names."""
    fe = freeze_epochs(m)
    lb = layer_block(m)
    marks = []
    for i, r in enumerate(rows):
        b = r if r in fe else lb.get(r)
        if b in fe:
            marks.append((fe[b], i))
    return marks


def adaptive_summary(m: RunModel) -> str | None:
    """One line on adaptive freezing (None for other schemes)."""
    decisions = [e["adaptive"] for e in m.analysis_events if isinstance(e.get("adaptive"), dict)]
    fp = m.freeze_plan or {}
    if fp.get("scheme") != "adaptive":
        return None
    rng = fp.get("adaptive") or {}
    early = [e for e in m.freeze_events if e.get("reason") == "stable"]
    fin = (m.finished or {}).get("flops") or {}
    saved, spent = (fin.get("saved") or {}).get("freeze"), fin.get("spent")
    got = ""
    if isinstance(saved, (int, float)) and isinstance(spent, (int, float)) and spent + saved > 0:
        # the plan's share: of the training FLOPs, overheads (the analyses) excluded
        spent -= sum(v for v in (fin.get("overhead") or {}).values() if isinstance(v, (int, float)))
        got = f"; achieved {100 * saved / (spent + saved):.1f}%"
    return (f"adaptive freezing: {len(early)} block(s) frozen early as stable, {len(decisions)} decisions; "
            f"plan range {100 * float(rng.get('min_saving', 0)):.1f}%–{100 * float(rng.get('max_saving', 0)):.1f}%{got}")
