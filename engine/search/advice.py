"""The advice, from the trials alone (pure Python: the CLI's --report, the studio's Search
tab and the HTML report share it): the best trial within the budget with its accuracy over
seeds, its training FLOPs split by technique, its distance from the plain-MEST reference
(no freezing, no sieving) at the same budget, and its time.

The search writes every trial as a row in ``trials.json`` in the search folder after each
trial (engine.search.report.write_snapshot), so readers need neither Optuna nor the study's
storage driver, and a study on a remote database is still shown from its folder.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

SNAPSHOT = "trials.json"
# The ledger's names for the FLOPs each technique saved, and the words the advice uses.
TECHNIQUES = {"sparsity": "sparsity", "freeze": "freezing", "sieve": "sieving"}


def read_snapshot(folder: str | Path) -> dict | None:
    """The search folder's trials.json, or None before the first trial (or when torn)."""
    p = Path(folder) / SNAPSHOT
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("trials"), list) else None


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, None
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def is_plain_mest(row: dict) -> bool:
    """No freezing and no sieving (searched or not: rows carry the full point's values)."""
    p = {**(row.get("fixed") or {}), **(row.get("params") or {})}
    return float(p.get("freeze.target", 0) or 0) == 0 and float(p.get("sieve.ratio", 0) or 0) == 0


def split_by_technique(row: dict) -> dict[str, Any]:
    """Training FLOPs of a trial split by technique: the dense cost, what sparsity, freezing
    and sieving each saved, and what was spent; measured by the run's ledger when it
    finished (first seed), else the plan's."""
    m = row.get("measured") or {}
    src = "measured" if m.get("flops_dense") else "planned"
    dense = float((m if src == "measured" else row).get("flops_dense") or 0.0)
    saved = (m if src == "measured" else row).get("flops_saved") or {}
    spent = float((m.get("flops_spent") if src == "measured" else row.get("flops")) or 0.0)
    out: dict[str, Any] = {"source": src, "dense": dense, "spent": spent,
                           "saved": {word: float(saved.get(k, 0.0) or 0.0) for k, word in TECHNIQUES.items()}}
    other = {k: float(v) for k, v in saved.items() if k not in TECHNIQUES and isinstance(v, (int, float))}
    if other:
        out["saved"]["other"] = sum(other.values())
    return out


def advice(rows: list[dict], reference_note: dict | None = None) -> dict[str, Any] | None:
    """The best completed trial (highest mean test accuracy over its seeds) and how it
    compares with the plain-MEST reference; None before any trial completed."""
    done = [r for r in rows if r.get("state") == "complete" and r.get("test_acc") is not None]
    if not done:
        return None
    best = max(done, key=lambda r: r["test_acc"])
    mean, std = _mean_std([float(a) for a in (best.get("test_acc_seeds") or [best["test_acc"]])])
    refs = [r for r in done if r.get("reference")]
    plain = refs or [r for r in done if is_plain_mest(r)]
    mest = max(plain, key=lambda r: r["test_acc"]) if plain else None
    out: dict[str, Any] = {"best": best, "mean": mean, "std": std,
                           "n": len(best.get("test_acc_seeds") or [best["test_acc"]]),
                           "split": split_by_technique(best), "mest": mest, "mest_split": None,
                           "gap_points": None, "flops_ratio": None}
    if mest is not None:
        ms = split_by_technique(mest)
        out["mest_split"] = ms
        out["gap_points"] = 100 * (mean - _mean_std([float(a) for a in
                                                    (mest.get("test_acc_seeds") or [mest["test_acc"]])])[0])
        out["flops_ratio"] = out["split"]["spent"] / ms["spent"] if ms["spent"] else None
    else:
        why = (reference_note or {}).get("missing")
        out["mest_missing"] = (f"no plain-MEST trial: {why}" if why else
                               "no plain-MEST trial (freeze.target = sieve.ratio = 0) has completed yet; the search "
                               "queues one as its first trial unless the file says reference: false")
    return out


def _pct(x: float, of: float) -> str:
    return f"{100 * x / of:.1f}%" if of else "-"


def format_advice(adv: dict | None, budget: dict | None = None) -> list[str]:
    """The advice as text lines (the CLI's --report, the studio's advice box)."""
    if adv is None:
        return ["no completed trial yet"]
    b, sp = adv["best"], adv["split"]
    std = f" ± {100 * adv['std']:.2f}" if adv["std"] is not None else " (one seed: no spread)"
    lines = [f"best within the budget: trial #{b['trial']}: test accuracy {100 * adv['mean']:.2f}%{std} "
             f"over {adv['n']} seed(s)",
             "  settings: " + ", ".join(f"{k}={_v(v)}" for k, v in b.get("params", {}).items())]
    dense = sp["dense"]
    parts = ", ".join(f"{w} {v:.3g} ({_pct(v, dense)})" for w, v in sp["saved"].items())
    lines.append(f"  training FLOPs ({sp['source']}): {sp['spent']:.4g} spent = {_pct(sp['spent'], dense)} of dense "
                 f"{dense:.4g}; saved by {parts}")
    if adv["mest"] is not None:
        m, ms = adv["mest"], adv["mest_split"]
        ratio = f", {adv['flops_ratio']:.2f}x its FLOPs" if adv["flops_ratio"] else ""
        which = "the plain-MEST reference" if m.get("reference") else "the best plain-MEST trial"
        lines.append(f"  vs {which} (#{m['trial']}, no freezing or sieving, "
                     + ", ".join(f"{k}={_v(v)}" for k, v in m.get("params", {}).items())
                     + f"): {adv['gap_points']:+.2f} accuracy points{ratio} "
                       f"({100 * m['test_acc']:.2f}% at {ms['spent']:.4g} FLOPs)")
    else:
        lines.append("  " + adv["mest_missing"])
    hours = (budget or {}).get("gpu_hours")
    wall = (b.get("measured") or {}).get("wall_time")
    if hours is not None:
        est = b.get("gpu_hours")
        lines.append(f"  time: {est:.3g} GPU-hours estimated of {hours:.3g} allowed, at "
                     f"{(budget or {}).get('speed_source', 'the given speed')}" if est is not None else
                     f"  budget {hours:.3g} GPU-hours at {(budget or {}).get('speed_source', 'the given speed')}")
    if wall:
        lines.append(f"  measured wall time of its run: {wall:.1f} s on {b.get('device') or 'this machine'}")
    return lines


def _v(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
