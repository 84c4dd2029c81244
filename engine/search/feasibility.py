"""Cost-exact feasibility: plan a sampled point with the FLOPs planner (engine.cost.projection,
pure Python, no training) and compare it with the budget. Infeasible points are refused
before a single step; the corners of the space give its projected cost range."""
from __future__ import annotations

import copy
import functools
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import config as config_mod
from engine.config import ConfigError
from engine.cost import projection as plan_mod
from engine.cost import wall_time
from engine.search.spec import SearchError, SearchSpec
from engine.sweep import results as results_mod

MAX_CORNERS = 256
# Plain MEST (no freezing, no sieving): the fields set to 0 and the technique they switch off.
PLAIN_OFF = {"freeze.target": "freezing", "sieve.ratio": "sieving"}


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
            "flops_overhead": dict(f.get("overhead") or {}), "peak_memory_bytes": p["memory"]["peak_bytes"],
            "exact": bool(p.get("method", {}).get("exact", True))}


@functools.lru_cache(maxsize=8)
def _planned_spent(cfg_json: str) -> float:
    return float(plan_mod.project(config_mod.from_dict(json.loads(cfg_json)))["flops"]["spent"])


def reference_flops(spec: SearchSpec) -> float:
    """The planned training FLOPs of ``budget.of`` (the preset the fraction is of)."""
    try:
        return _planned_spent(json.dumps(spec.budget_of_config, sort_keys=True))
    except ConfigError as exc:
        raise SearchError([("budget.of", f"{spec.budget_of}: " + "; ".join(f"{f}: {m}" for f, m in exc.errors))],
                          spec.source) from None


def budget_flops(spec: SearchSpec, dense_flops: float) -> float:
    if spec.budget_flops is not None:
        return spec.budget_flops
    if spec.budget_of_config is not None:
        return float(spec.budget_fraction or 1.0) * reference_flops(spec)
    return float(spec.budget_fraction or 1.0) * dense_flops


def measured_speed(spec: SearchSpec) -> tuple[dict, str]:
    """({flops_per_s, startup_s?, source}, where it comes from) for ``budget.gpu_hours``.

    ``speed: N`` is taken as given; ``speed: RUN_DIR`` is measured from that run (executed
    FLOPs over its wall time; it must have run on a GPU: a CPU's speed gives no GPU-hours);
    without ``speed``, the GPU rate this machine measured for the base model, batch and
    precision (engine.cost.wall_time's cache: every run records its own, ``spfde-train plan
    --calibrate`` measures one)."""
    sp = spec.budget_speed
    if isinstance(sp, (int, float)):
        return {"flops_per_s": float(sp), "source": "the search file"}, \
            f"{sp:.3g} executed FLOPs/s (given in the search file)"
    if sp is None:
        cfg = config_mod.from_dict(copy.deepcopy(spec.base))
        hit = wall_time.read_cache().get(wall_time.key(cfg, "cuda"))
        if not hit:
            raise SearchError([("budget.speed", "no GPU speed measured for the base model, batch and precision on "
                                                "this machine: run it on the GPU (every run records its speed) or "
                                                "spfde-train plan --calibrate there, or give speed: RUN_DIR (a GPU "
                                                "run) or speed: N (executed FLOPs/s); on a CPU-only machine use "
                                                "budget.flops or budget.fraction")], spec.source)
        return hit, f"{hit['flops_per_s']:.3g} executed FLOPs/s measured on this machine's GPU ({hit.get('source')})"
    rd = Path(str(sp))
    events = results_mod.read_jsonl(rd / "events.jsonl") if (rd / "events.jsonl").is_file() else []
    devices = [str(e.get("device", "")) for e in events if e.get("event") == "run_started"]
    if not events:
        raise SearchError([("budget.speed", f"{rd} holds no events.jsonl; expected a run folder of the base preset "
                                            "run on the GPU in question")], spec.source)
    if not devices or not devices[-1].startswith("cuda"):
        raise SearchError([("budget.speed", f"{rd} ran on {devices[-1] if devices else 'an unknown device'}, not a "
                                            "GPU: GPU-hours need a GPU's measured speed (run the base preset on the "
                                            "GPU for an epoch or two, or give speed: N executed FLOPs/s); on a "
                                            "CPU-only machine use budget.flops or budget.fraction")], spec.source)
    s = results_mod.summarize_run(rd)
    wall = float(s.get("wall_time") or 0.0)
    if not s.get("flops_dense") or wall <= 0:
        raise SearchError([("budget.speed", f"{rd} has not finished a run (no run_finished with FLOPs and wall "
                                            "time); let it finish or stop it with a checkpoint")], spec.source)
    rate = wall_time.executed_flops({"spent": s.get("flops_spent"), "dense": s["flops_dense"],
                                     "saved": s.get("flops_saved") or {}}) / wall
    return {"flops_per_s": rate, "source": str(rd)}, f"{rate:.3g} executed FLOPs/s measured by {rd} on {devices[-1]}"


def unit(spec: SearchSpec) -> str:
    return "GPU-hours" if spec.budget_gpu_hours is not None else "FLOPs"


def cost(spec: SearchSpec, projected: dict) -> float:
    """A planned point's cost in the budget's unit: training FLOPs, or one run's GPU-hours
    (engine.cost.wall_time's estimate: executed FLOPs at the measured speed plus start-up)."""
    if spec.budget_gpu_hours is None:
        return float(projected["flops_spent"])
    rate, _ = measured_speed(spec)
    plan = {"flops": {"spent": projected["flops_spent"], "dense": projected["flops_dense"],
                      "saved": projected.get("flops_saved") or {}, "overhead": projected.get("flops_overhead") or {}}}
    return float(wall_time.estimate(None, plan, rate)["seconds"]) / 3600.0


def limit(spec: SearchSpec, projected: dict) -> float:
    if spec.budget_gpu_hours is not None:
        return spec.budget_gpu_hours
    return budget_flops(spec, projected["flops_dense"])


def judge(spec: SearchSpec, params: dict[str, Any], seed: int = 0, name: str = "point") -> Verdict:
    """Validate and plan one point; over budget or invalid -> infeasible with the reason."""
    raw = point_config(spec, params, seed, name)
    try:
        cfg = config_mod.from_dict(raw).to_dict()
        pj = project(cfg)
    except ConfigError as exc:
        return Verdict(False, "invalid: " + "; ".join(f"{f}: {m}" for f, m in exc.errors), None, {})
    c, lim = cost(spec, pj), limit(spec, pj)
    if c > lim:
        return Verdict(False, f"over budget: {c:.4g} {unit(spec)} planned > {lim:.4g} allowed", cfg, pj)
    return Verdict(True, "", cfg, pj)


def over_budget(spec: SearchSpec, projected: dict) -> float:
    """How far over the budget a planned point is (0 within it): the Optuna constraint."""
    return max(0.0, cost(spec, projected) / limit(spec, projected) - 1.0)


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
            costs.append((cost(spec, v.projected), c, v.projected))
    if not costs:
        raise SearchError([("space", "no corner of the space is a valid configuration")], spec.source)
    costs.sort(key=lambda t: t[0])
    dense = costs[0][2]["flops_dense"]
    return {"min": costs[0][0], "max": costs[-1][0], "dense": dense, "budget": limit(spec, costs[0][2]),
            "cheapest": costs[0][1], "unit": unit(spec),
            "projected": (costs[0][2], costs[-1][2])}


def wall_time_range(spec: SearchSpec, r: dict) -> dict:
    """{seconds: (one run at the cheapest corner, at the costliest), runs, flops_per_s, source,
    why}: this machine's measured speed for the base configuration (engine.cost.wall_time;
    seconds None with ``why`` where nothing has measured it yet)."""
    base = config_mod.from_dict(copy.deepcopy(spec.base))
    rate = wall_time.lookup(base)
    runs = spec.trials * len(spec.seeds)
    if not rate:
        return {"seconds": None, "runs": runs, "why": wall_time.estimate(base, {})["why"]}
    secs = []
    for pj in r["projected"]:
        plan = {"flops": {"spent": pj["flops_spent"], "dense": pj["flops_dense"], "saved": pj.get("flops_saved") or {},
                          "overhead": pj.get("flops_overhead") or {}}}
        secs.append(float(wall_time.estimate(base, plan, rate)["seconds"]))
    return {"seconds": (min(secs), max(secs)), "runs": runs, "flops_per_s": float(rate["flops_per_s"]),
            "source": rate.get("source"), "why": ""}


def check_budget(spec: SearchSpec) -> dict:
    """The cost range; a budget below the cheapest corner is an error before any trial."""
    r = cost_range(spec)
    if r["budget"] < r["min"]:
        key = ("budget.gpu_hours" if spec.budget_gpu_hours is not None else
               "budget.flops" if spec.budget_flops is not None else "budget.fraction")
        raise SearchError([(key, f"the budget {r['budget']:.4g} {r['unit']} is below the cheapest point of the "
                                 f"space ({r['min']:.4g} {r['unit']} at {r['cheapest']}); raise it or widen the "
                                 "space")], spec.source)
    return r


def _base_value(spec: SearchSpec, path: str) -> Any:
    cur: Any = config_mod.from_dict(copy.deepcopy(spec.base)).to_dict()
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def _techniques_off(spec: SearchSpec) -> tuple[dict[str, Any] | None, str]:
    """freeze.target and sieve.ratio at 0 where the space allows it (None, why not)."""
    params: dict[str, Any] = {}
    for path, tech in PLAIN_OFF.items():
        d = spec.space.get(path)
        if d is None:
            fixed = _base_value(spec, path)
            if float(fixed or 0) != 0:
                return None, f"{path} is fixed at {fixed} by the base: no {tech}-free point"
        elif d.categorical:
            if not any(float(c or 0) == 0 for c in d.choices or []):
                return None, f"the space's {path} choices exclude 0: no {tech}-free point"
            params[path] = 0.0
        elif float(d.low or 0) > 0:
            return None, f"the space's {path} starts at {d.low}: no {tech}-free point"
        else:
            params[path] = 0 if isinstance(d.low, int) else 0.0
    return params, ""


def _other_fields(spec: SearchSpec, params: dict[str, Any]) -> dict[str, Any]:
    """The rest of the space at a neutral value: MEST where the algorithm is searched."""
    out = dict(params)
    for path, d in spec.space.items():
        if path in out or path == "sparsity.target":
            continue
        if d.categorical:
            ch = list(d.choices or [])
            out[path] = "mest_ems" if path == "sparsity.algorithm" and "mest_ems" in ch else ch[0]
        else:
            out[path] = d.low if isinstance(d.low, int) else (float(d.low or 0) + float(d.high or 0)) / 2
    return out


def plain_mest_point(spec: SearchSpec) -> tuple[dict[str, Any] | None, str]:
    """The plain-MEST reference at this budget: freezing and sieving off, the least sparsity
    (the densest network) whose plan fits the budget. (params, "") or (None, why not)."""
    off, why = _techniques_off(spec)
    if off is None:
        return None, why
    params = _other_fields(spec, off)
    sp = spec.space.get("sparsity.target")
    if sp is None or sp.categorical:
        choices: list = [None] if sp is None else sorted(sp.choices or [])
        for v in choices:                      # the least sparse that fits
            p = dict(params) if v is None else {**params, "sparsity.target": v}
            if judge(spec, p).feasible:
                return p, ""
        return None, "plain MEST does not fit the budget at any sparsity of the space"
    lo, hi = float(sp.low or 0), float(sp.high or 0)
    if judge(spec, {**params, "sparsity.target": lo}).feasible:
        return {**params, "sparsity.target": lo}, ""
    top = judge(spec, {**params, "sparsity.target": hi})
    if not top.feasible:
        return None, f"plain MEST does not fit the budget even at sparsity.target={hi:g} ({top.reason})"
    for _ in range(24):                       # the cost falls with sparsity: bisect the budget line
        mid = (lo + hi) / 2
        if judge(spec, {**params, "sparsity.target": mid}).feasible:
            hi = mid
        else:
            lo = mid
    short = round(hi, 6)                      # a readable value when it still fits
    return {**params, "sparsity.target": short if judge(spec, {**params, "sparsity.target": short}).feasible
            else hi}, ""
