"""The search's report from its Optuna study: one row per trial (settings, state, planned
and measured FLOPs, accuracy over seeds, pruned at which epoch and why), the parameter
importances (optuna.importance), the ``trials.json`` snapshot the studio reads, the text
report of ``spfde-train search --report`` and the best configuration as a preset YAML.
The advice itself is pure (engine.search.advice)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from engine import config as config_mod
from engine.search import advice as advice_mod
from engine.search import feasibility
from engine.search.spec import SearchError, SearchSpec
from engine.sweep import manifest as manifest_mod
from engine.sweep import results as results_mod

BEST_PRESET = "best.yaml"


def _measured(line: dict | None) -> dict | None:
    if not line or line.get("status") != "completed":
        return None
    return {k: line.get(k) for k in ("flops_spent", "flops_dense", "flops_saved", "wall_time", "final_test_acc",
                                     "best_test_acc", "peak_memory_bytes")}


def trial_rows(study: optuna.Study, folder: Path | None = None, spec: SearchSpec | None = None) -> list[dict[str, Any]]:
    """One row per trial: settings, state, FLOPs, accuracy, why infeasible or pruned, the
    learning curve reported to the pruner and, from the folder, what its first seed measured."""
    lines = results_mod.latest_lines(manifest_mod.read_jsonl(folder / manifest_mod.RESULTS)) if folder else {}
    cfgs: dict[str, dict] = {}
    if folder is not None and (folder / manifest_mod.MANIFEST).is_file():
        cfgs = {c.name: c.config for c in manifest_mod.read(folder).cells}
    rate = None
    if spec is not None and spec.budget_gpu_hours is not None:
        try:
            rate = feasibility.measured_speed(spec)[0]
        except SearchError:
            rate = None
    rows = []
    for t in study.get_trials(deepcopy=False):
        ua = t.user_attrs
        state = "infeasible" if ua.get("infeasible") else t.state.name.lower()
        cells = list(ua.get("cells") or [])
        cfg = cfgs.get(cells[0]) if cells else None
        fixed = {"freeze.target": (cfg or {}).get("freeze", {}).get("target"),
                 "sieve.ratio": (cfg or {}).get("sieve", {}).get("ratio")} if cfg else {}
        row = {"trial": t.number, "state": state, "params": dict(t.params),
               "flops": ua.get("flops_spent"), "flops_dense": ua.get("flops_dense"),
               "flops_saved": ua.get("flops_saved") or {}, "peak_memory_bytes": ua.get("peak_memory_bytes"),
               "over_budget": ua.get("over_budget"),
               "test_acc": t.values[0] if t.values and t.state == TrialState.COMPLETE else None,
               "test_acc_seeds": ua.get("test_acc_seeds"), "pruned_epoch": ua.get("pruned_epoch"),
               "reason": ua.get("infeasible") or ua.get("pruned_reason") or ua.get("error") or "",
               "cells": cells, "reference": bool(ua.get("reference")), "fixed": fixed,
               "curve": {str(k): v for k, v in sorted(t.intermediate_values.items())},
               "measured": _measured(lines.get(cells[0])) if cells else None,
               "device": (cfg or {}).get("device"),
               "started": t.datetime_start.timestamp() if t.datetime_start else None,
               "finished": t.datetime_complete.timestamp() if t.datetime_complete else None}
        if rate and row["flops_dense"]:
            row["gpu_hours"] = feasibility.cost(spec, {"flops_spent": row["flops"], "flops_dense": row["flops_dense"],
                                                       "flops_saved": row["flops_saved"]}) if spec else None
        rows.append(row)
    return rows


def importances(study: optuna.Study) -> dict[str, float]:
    """Optuna's parameter importances (fANOVA) over the completed trials; {} with too few."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if len(done) < 2 or not any(len({str(t.params.get(k)) for t in done}) > 1 for k in done[0].params):
        return {}
    try:
        target = (lambda t: t.values[0]) if len(study.directions) > 1 else None
        imp = optuna.importance.get_param_importances(study, target=target)
    except (RuntimeError, ValueError, ZeroDivisionError):
        return {}
    return {k: float(v) for k, v in imp.items()}


def budget_info(spec: SearchSpec, rows: list[dict]) -> dict[str, Any]:
    """The budget in words and, where it is one, as a FLOPs line for the scatter."""
    dense = next((float(r["flops_dense"]) for r in rows if r.get("flops_dense")), None)
    out: dict[str, Any] = {"unit": feasibility.unit(spec), "dense": dense}
    if spec.budget_gpu_hours is not None:
        out["gpu_hours"] = spec.budget_gpu_hours
        try:
            out["speed_source"] = feasibility.measured_speed(spec)[1]
        except SearchError as exc:
            out["speed_source"] = str(exc)
        out["text"] = f"{spec.budget_gpu_hours:g} GPU-hours per run"
        return out
    if dense is None and spec.budget_flops is None and spec.budget_of_config is None:
        out["text"] = f"{spec.budget_fraction:g} of the dense training FLOPs"
        return out
    out["flops"] = feasibility.budget_flops(spec, dense or 0.0)
    what = (f"{spec.budget_fraction:g} of {spec.budget_of}'s planned training FLOPs" if spec.budget_of
            else f"{spec.budget_fraction:g} of the dense training FLOPs" if spec.budget_fraction is not None
            else "training FLOPs")
    out["text"] = f"{out['flops']:.4g} FLOPs ({what})"
    return out


def snapshot(spec: SearchSpec, study: optuna.Study, folder: Path,
             imp: dict[str, float] | None = None) -> dict[str, Any]:
    rows = trial_rows(study, folder, spec)
    return {"format": 1, "name": spec.name, "source": spec.source, "updated": time.time(),
            "objectives": spec.objectives, "trials_requested": spec.trials, "seeds": spec.seeds,
            "space": {k: (d.choices if d.categorical else [d.low, d.high]) for k, d in spec.space.items()},
            "budget": budget_info(spec, rows), "reference": study.user_attrs.get("reference"),
            "importances": importances(study) if imp is None else imp, "trials": rows}


def write_snapshot(spec: SearchSpec, study: optuna.Study, folder: Path,
                   imp: dict[str, float] | None = None) -> dict[str, Any]:
    """trials.json, replaced atomically (the studio reads it while the search writes)."""
    snap = snapshot(spec, study, folder, imp)
    tmp = folder / f".{advice_mod.SNAPSHOT}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(snap, default=str), encoding="utf-8")
    tmp.replace(folder / advice_mod.SNAPSHOT)
    return snap


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
    snap = write_snapshot(spec, study, folder)
    rows = snap["trials"]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    lines = [f"search {spec.name}: {len(rows)} trials (" + ", ".join(f"{n} {k}" for k, n in counts.items()) + ")",
             f"budget: {snap['budget']['text']}"]
    for r in rows:
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r["params"].items())
        acc = f"{100 * r['test_acc']:.2f}%" if r["test_acc"] is not None else "-"
        flops = f"{r['flops']:.3g}" if r["flops"] else "-"
        extra = f"  [{r['reason']}]" if r["reason"] else ""
        ref = " (plain-MEST reference)" if r["reference"] else ""
        lines.append(f"  #{r['trial']:<3d} {r['state']:<10s} acc {acc:>7s}  FLOPs {flops:>9s}  {params}{ref}{extra}")
    adv = advice_mod.advice(rows, snap.get("reference"))
    lines += advice_mod.format_advice(adv, snap["budget"])
    if snap["importances"]:
        lines.append("  parameter importances (Optuna fANOVA): "
                     + ", ".join(f"{k} {v:.2f}" for k, v in snap["importances"].items()))
    if adv is not None:
        out = export_best(folder, adv)
        if out is not None:
            lines.append(f"  preset: {out}")
    return "\n".join(lines)


def advice(study: optuna.Study, folder: Path | None = None) -> dict[str, Any] | None:
    """The advice for a study (engine.search.advice on its rows)."""
    return advice_mod.advice(trial_rows(study, folder), study.user_attrs.get("reference"))
