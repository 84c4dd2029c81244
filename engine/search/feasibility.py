"""Cost-exact feasibility: plan a sampled point with the FLOPs planner (engine.cost.projection,
pure Python, no training) and compare it with the budget. Infeasible points are refused
before a single step; the corners of the space give its projected cost range."""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Any

from engine import config as config_mod
from engine.config import ConfigError
from engine.cost import projection as plan_mod
from engine.search.spec import SearchError, SearchSpec

MAX_CORNERS = 256


@dataclass
class Verdict:
    feasible: bool
    reason: str                 # why not ("" when feasible)
    config: dict | None         # the full, validated configuration
    projected: dict             # {flops_spent, flops_dense, flops_saved, peak_memory_bytes}


def point_config(spec: SearchSpec, params: dict[str, Any], seed: int, name: str) -> dict:
    d = copy.deepcopy(spec.base)
    for k, v in params.items():
        config_mod._set_dotted(d, k, config_mod._coerce(config_mod.FIELD_BY_PATH[k], v))
    d["seed"], d["name"] = seed, name
    return d


def project(cfg: dict) -> dict:
    p = plan_mod.project(config_mod.from_dict(cfg))
    f = p["flops"]
    return {"flops_spent": f["spent"], "flops_dense": f["dense"], "flops_saved": dict(f["saved"]),
            "peak_memory_bytes": p["memory"]["peak_bytes"],
            "exact": bool(p.get("method", {}).get("exact", True))}


def budget_flops(spec: SearchSpec, dense_flops: float) -> float:
    if spec.budget_flops is not None:
        return spec.budget_flops
    return float(spec.budget_fraction or 1.0) * dense_flops


def judge(spec: SearchSpec, params: dict[str, Any], seed: int = 0, name: str = "point") -> Verdict:
    """Validate and plan one point; over budget or invalid -> infeasible with the reason."""
    raw = point_config(spec, params, seed, name)
    try:
        cfg = config_mod.from_dict(raw).to_dict()
        pj = project(cfg)
    except ConfigError as exc:
        return Verdict(False, "invalid: " + "; ".join(f"{f}: {m}" for f, m in exc.errors), None, {})
    limit = budget_flops(spec, pj["flops_dense"])
    if pj["flops_spent"] > limit:
        return Verdict(False, f"over budget: {pj['flops_spent']:.4g} FLOPs planned > {limit:.4g} allowed",
                       cfg, pj)
    return Verdict(True, "", cfg, pj)


def corners(spec: SearchSpec) -> list[dict[str, Any]]:
    dims = list(spec.space.values())
    combos = itertools.islice(itertools.product(*(d.corners() for d in dims)), MAX_CORNERS)
    return [{d.path: v for d, v in zip(dims, combo)} for combo in combos]


def cost_range(spec: SearchSpec) -> dict:
    """Planned FLOPs over the space's corners: {min, max, dense, budget, cheapest}; valid corners only."""
    costs: list[tuple[float, dict, dict]] = []
    for c in corners(spec):
        v = judge(spec, c)
        if v.projected and v.config is not None:
            costs.append((v.projected["flops_spent"], c, v.projected))
    if not costs:
        raise SearchError([("space", "no corner of the space is a valid configuration")], spec.source)
    costs.sort(key=lambda t: t[0])
    dense = costs[0][2]["flops_dense"]
    return {"min": costs[0][0], "max": costs[-1][0], "dense": dense, "budget": budget_flops(spec, dense),
            "cheapest": costs[0][1]}


def check_budget(spec: SearchSpec) -> dict:
    """The cost range; a budget below the cheapest corner is an error before any trial."""
    r = cost_range(spec)
    if r["budget"] < r["min"]:
        key = "budget.flops" if spec.budget_flops is not None else "budget.fraction"
        raise SearchError([(key, f"the budget {r['budget']:.4g} FLOPs is below the cheapest point of the space "
                                 f"({r['min']:.4g} FLOPs at {r['cheapest']}); raise it or widen the space")],
                          spec.source)
    return r
