"""The advice: the best trial within the budget, its accuracy over seeds, its FLOPs split by
technique, its distance from the best plain-MEST trial (no freezing, no sieving), and the
best configuration exported as a preset YAML."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from engine import config as config_mod
from engine.search.spec import SearchSpec
from engine.sweep import manifest as manifest_mod
from engine.sweep.results import stat

BEST_PRESET = "best.yaml"


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per trial: settings, state, FLOPs, accuracy, why infeasible or pruned."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        ua = t.user_attrs
        state = "infeasible" if ua.get("infeasible") else t.state.name.lower()
        rows.append({"trial": t.number, "state": state, "params": dict(t.params),
                     "flops": ua.get("flops_spent"), "test_acc": t.values[0] if t.values and t.state == TrialState.COMPLETE
                     else None,
                     "test_acc_seeds": ua.get("test_acc_seeds"), "pruned_epoch": ua.get("pruned_epoch"),
                     "reason": ua.get("infeasible") or ua.get("pruned_reason") or ua.get("error") or "",
                     "flops_saved": ua.get("flops_saved") or {}, "cells": ua.get("cells") or []})
    return rows


def _plain_mest(row: dict) -> bool:
    p = row["params"]
    return float(p.get("freeze.target", 0) or 0) == 0 and float(p.get("sieve.ratio", 0) or 0) == 0


def advice(study: optuna.Study) -> dict[str, Any] | None:
    done = [r for r in trial_rows(study) if r["state"] == "complete" and r["test_acc"] is not None]
    if not done:
        return None
    best = max(done, key=lambda r: r["test_acc"])
    s = stat(best["test_acc_seeds"] or [best["test_acc"]])
    mest = [r for r in done if _plain_mest(r)]
    mest_best = max(mest, key=lambda r: r["test_acc"]) if mest else None
    return {"best": best, "mean": s.mean, "std": s.std, "n": s.n, "mest": mest_best,
            "gap_to_mest": (best["test_acc"] - mest_best["test_acc"]) if mest_best else None}


def export_best(folder: Path, adv: dict) -> Path | None:
    m = manifest_mod.read(folder)
    names = adv["best"]["cells"]
    cells = [c for c in m.cells if c.name in names]
    if not cells:
        return None
    cfg = dict(cells[0].config)
    cfg["name"] = f"{m.name}-best"
    out = folder / BEST_PRESET
    config_mod.save(config_mod.from_dict(cfg), out)
    return out


def format_report(spec: SearchSpec, study: optuna.Study, folder: Path) -> str:
    rows = trial_rows(study)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    lines = [f"search {spec.name}: {len(rows)} trials (" + ", ".join(f"{n} {k}" for k, n in counts.items()) + ")"]
    for r in rows:
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r["params"].items())
        acc = f"{100 * r['test_acc']:.2f}%" if r["test_acc"] is not None else "-"
        flops = f"{r['flops']:.3g}" if r["flops"] else "-"
        extra = f"  [{r['reason']}]" if r["reason"] else ""
        lines.append(f"  #{r['trial']:<3d} {r['state']:<10s} acc {acc:>7s}  FLOPs {flops:>9s}  {params}{extra}")
    adv = advice(study)
    if adv is None:
        lines.append("no completed trial yet")
        return "\n".join(lines)
    b = adv["best"]
    std = f" ± {100 * adv['std']:.2f}" if adv["std"] is not None else ""
    lines.append(f"best within the budget: trial #{b['trial']}: test accuracy {100 * adv['mean']:.2f}%{std} "
                 f"over {adv['n']} seed(s), {b['flops']:.4g} training FLOPs")
    lines.append("  settings: " + ", ".join(f"{k}={v}" for k, v in b["params"].items()))
    saved = b["flops_saved"]
    lines.append("  FLOPs saved by technique: " + ", ".join(f"{k} {v:.3g}" for k, v in saved.items()))
    if adv["mest"] is not None:
        lines.append(f"  vs the best plain MEST trial (#{adv['mest']['trial']}, no freezing or sieving): "
                     f"{100 * adv['gap_to_mest']:+.2f} points")
    else:
        lines.append("  no plain MEST trial (freeze.target = sieve.ratio = 0) was run to compare with")
    out = export_best(folder, adv)
    if out is not None:
        lines.append(f"  preset: {out}")
    return "\n".join(lines)
