"""The search file (docs/search.md), in the sweep file's style:

    name: demo-budget
    base: {preset: demo}
    overrides: {epochs: 2}
    space:
      sparsity.target: [0.8, 0.98]          # a float range [low, high]
      freeze.target: [0, 0.3]
      sparsity.algorithm: {choices: [mest_ems, set]}
    budget: {fraction: 0.25}                # of the dense training cost; or {flops: 1.5e12};
                                            # or {fraction: 0.5, of: PRESET} (of that preset's
                                            # planned training FLOPs); or {gpu_hours: 2,
                                            # speed: RUN_DIR | executed FLOPs/s} (one run's time)
    objective: {maximize: test_acc}         # or {pareto: [test_acc, flops]}
    trials: 8
    seeds: 1
    sampler: tpe                            # tpe | random | nsga2 (default for pareto)
    pruner: median                          # median | hyperband | none
    workers: 1
    storage: null                           # an Optuna URL; default SQLite in the folder

Pure Python: shape and range checks; engine.search.feasibility plans the points.
"""
from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine import config as config_mod
from engine.config import ConfigError
from engine.sweep import spec as sweep_spec
from engine.sweep.spec import SweepError

SEARCHES_DIR = Path(__file__).resolve().parent.parent.parent / "assets" / "searches"
KEYS = ("name", "description", "base", "overrides", "space", "budget", "objective", "trials", "seeds",
        "sampler", "pruner", "workers", "storage", "search_dir", "reference")
OBJECTIVES = ("test_acc",)
PARETO = ("test_acc", "flops")
SAMPLERS = ("tpe", "random", "nsga2")
PRUNERS = ("median", "hyperband", "none")


class SearchError(SweepError):
    """A bad search file; ``errors`` lists (where, message)."""

    def __init__(self, errors: list[tuple[str, str]], source: str | None = None):
        super().__init__(errors, source)
        n = len(self.errors)
        head = f"invalid search{f' {source}' if source else ''} ({n} error{'s' if n != 1 else ''}):\n"
        self.args = (head + "\n".join(f"  {f}: {m}" for f, m in self.errors),)


@dataclass
class Dim:
    """One searched field: a float/int range or a list of choices."""
    path: str
    low: float | None = None
    high: float | None = None
    choices: list | None = None
    log: bool = False

    @property
    def categorical(self) -> bool:
        return self.choices is not None

    def corners(self) -> list:
        return list(self.choices) if self.choices is not None else [self.low, self.high]


@dataclass
class SearchSpec:
    name: str
    base: dict
    space: dict[str, Dim]
    budget_flops: float | None = None
    budget_fraction: float | None = None
    budget_of: str | None = None            # a preset (name or file) whose planned FLOPs the fraction is of
    budget_gpu_hours: float | None = None   # one trial's training time on one GPU
    budget_speed: float | str | None = None  # executed FLOPs/s, or a GPU run folder to measure it from
    reference: bool = True                  # also train the plain-MEST point (no freezing, no sieving)
    budget_of_config: dict | None = None    # budget_of, read
    objectives: list[str] = field(default_factory=lambda: ["test_acc"])
    trials: int = 8
    seeds: list[int] = field(default_factory=lambda: [0])
    sampler: str = "tpe"
    pruner: str = "median"
    workers: int = 1
    storage: str | None = None
    search_dir: str = "searches"
    description: str = ""
    source: str | None = None
    raw: dict = field(default_factory=dict)

    @property
    def pareto(self) -> bool:
        return len(self.objectives) > 1

    def fingerprint(self) -> str:
        """What makes a study folder this file's: everything but trials, workers and storage."""
        keep = {k: v for k, v in self.raw.items() if k not in ("trials", "workers", "storage", "description")}
        return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load(path: str | Path) -> SearchSpec:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SearchError([(str(p), f"cannot read the search file: {exc}")]) from None
    except yaml.YAMLError as exc:
        raise SearchError([(str(p), f"not valid YAML: {exc}")]) from None
    return parse(data, str(p), p.parent)


def _dim(fld: str, raw: Any, errors: list) -> Dim | None:
    where = f"space.{fld}"
    sp = config_mod.FIELD_BY_PATH.get(fld)
    if sp is None or fld in sweep_spec.NOT_AN_AXIS:
        errors.append((where, f"unknown or unsearchable field {fld!r}; expected a dotted configuration field "
                              "such as sparsity.target, freeze.target, sieve.ratio"))
        return None
    if isinstance(raw, dict) and "choices" in raw:
        ch = raw["choices"]
        if not isinstance(ch, list) or not ch:
            errors.append((where, f"choices: expected a non-empty list, got {ch!r}"))
            return None
        for v in ch:
            msg = config_mod._check_field(sp, config_mod._coerce(sp, v))
            if msg:
                errors.append((where, f"choice {v!r}: {msg}"))
        return Dim(fld, choices=[config_mod._coerce(sp, v) for v in ch])
    log = False
    if isinstance(raw, dict):
        log = bool(raw.get("log", False))
        raw = [raw.get("low"), raw.get("high")]
    if sp.kind not in ("float", "int"):
        errors.append((where, f"{fld} is a {sp.kind} field: give {{choices: [...]}}"))
        return None
    ok = isinstance(raw, list) and len(raw) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw)
    if not ok or raw[0] >= raw[1]:
        errors.append((where, f"expected a range [low, high] with low < high, got {raw!r}"))
        return None
    for v in raw:
        msg = config_mod._check_field(sp, config_mod._coerce(sp, v))
        if msg:
            errors.append((where, f"bound {v!r} is outside the field's allowed range: {msg}"))
    return Dim(fld, low=float(raw[0]) if sp.kind == "float" else int(raw[0]),
               high=float(raw[1]) if sp.kind == "float" else int(raw[1]), log=log)


BUDGET_FORMS = ("{fraction: F} (of the dense training FLOPs), {flops: N}, {fraction: F, of: PRESET} "
                "or {gpu_hours: H, speed: RUN_DIR | FLOPs/s}")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _budget(raw: Any, errors: list) -> dict[str, Any]:
    """{flops|fraction|of|gpu_hours|speed: value}; an empty dict when malformed (error added)."""
    forms = ({"flops"}, {"fraction"}, {"fraction", "of"}, {"gpu_hours", "speed"}, {"gpu_hours"})
    if not isinstance(raw, dict) or set(raw) not in forms:
        errors.append(("budget", f"expected {BUDGET_FORMS}; got {raw!r}"))
        return {}
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if k == "of":
            if not isinstance(v, str) or not v.strip():
                errors.append(("budget.of", f"expected a preset name or file, got {v!r}"))
            else:
                out[k] = v.strip()
        elif k == "speed":
            if _number(v) and v > 0:
                out[k] = float(v)
            elif isinstance(v, str) and v.strip():
                out[k] = v.strip()
            else:
                errors.append(("budget.speed", f"expected a GPU run folder or executed FLOPs per second > 0, got {v!r}"))
        elif not _number(v) or v <= 0 or (k == "fraction" and v > 1):
            errors.append((f"budget.{k}", f"expected a number {'in (0, 1]' if k == 'fraction' else '> 0'}, got {v!r}"))
        else:
            out[k] = float(v)
    if "gpu_hours" in raw and "speed" not in raw:
        errors.append(("budget.speed", "budget.gpu_hours needs the GPU's measured speed: speed: RUN_DIR (a run of the "
                                       "base preset on that GPU, even one epoch) or speed: N (executed FLOPs/s)"))
    return out


def _objectives(raw: Any, errors: list) -> list[str]:
    if isinstance(raw, dict) and set(raw) == {"maximize"} and raw["maximize"] in OBJECTIVES:
        return [raw["maximize"]]
    if isinstance(raw, dict) and set(raw) == {"pareto"} and sorted(raw["pareto"] or []) == sorted(PARETO):
        return list(PARETO)
    errors.append(("objective", f"unknown objective {raw!r}; expected {{maximize: test_acc}} or "
                                "{pareto: [test_acc, flops]}"))
    return ["test_acc"]


def _int(data: dict, key: str, default: int, errors: list, low: int = 1) -> int:
    v = data.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        errors.append((key, f"expected an integer >= {low}, got {v!r}"))
        return default
    return v


def _choice(data: dict, key: str, default: str, allowed: tuple, errors: list) -> str:
    v = data.get(key, default)
    if v not in allowed:
        errors.append((key, f"unknown {key} {v!r}; expected one of {', '.join(allowed)}"))
        return default
    return str(v)


def parse(data: Any, source: str | None = None, here: Path | None = None) -> SearchSpec:
    if not isinstance(data, dict):
        raise SearchError([("<root>", "expected a mapping (name, base, space, budget, objective, ...)")], source)
    errors: list[tuple[str, str]] = [(str(k), f"unknown key; expected one of {', '.join(KEYS)}")
                                     for k in data if k not in KEYS]
    name = data.get("name", Path(source).stem if source else "search")
    if not isinstance(name, str) or not name.strip():
        errors.append(("name", f"expected a non-empty string, got {name!r}"))
        name = "search"
    base = sweep_spec._base_config(data.get("base"), here or Path.cwd(), errors)
    overrides = data.get("overrides") or {}
    if not isinstance(overrides, dict):
        errors.append(("overrides", f"expected a mapping of fields, got {overrides!r}"))
        overrides = {}
    for k, v in sweep_spec._flatten(overrides).items():
        config_mod._set_dotted(base, k, v)
    space_raw = data.get("space")
    space: dict[str, Dim] = {}
    if not isinstance(space_raw, dict) or not space_raw:
        errors.append(("space", f"expected a mapping of field: [low, high] or {{choices: [...]}}, got {space_raw!r}"))
    else:
        for k, v in space_raw.items():
            d = _dim(str(k), v, errors)
            if d is not None:
                space[str(k)] = d
    budget = _budget(data.get("budget"), errors)
    of_cfg = None
    if "of" in budget:
        of_errors: list = []
        of_cfg = sweep_spec._base_config(budget["of"], here or Path.cwd(), of_errors)
        errors.extend(("budget.of", m) for _, m in of_errors)
    if isinstance(budget.get("speed"), str):
        sp = Path(budget["speed"]).expanduser()
        budget["speed"] = str(sp if sp.is_absolute() else (here or Path.cwd()) / sp)
    reference = data.get("reference", True)
    if not isinstance(reference, bool):
        errors.append(("reference", f"expected true or false, got {reference!r}"))
        reference = True
    objectives = _objectives(data.get("objective", {"maximize": "test_acc"}), errors)
    seeds = sweep_spec._seeds(data.get("seeds", 1), base, errors)
    sampler = _choice(data, "sampler", "nsga2" if len(objectives) > 1 else "tpe", SAMPLERS, errors)
    pruner = _choice(data, "pruner", "median", PRUNERS, errors)
    storage = data.get("storage")
    if storage is not None and not isinstance(storage, str):
        errors.append(("storage", f"expected an Optuna storage URL string, got {storage!r}"))
    spec = SearchSpec(name=name.strip(), base=base, space=space, budget_flops=budget.get("flops"),
                      budget_fraction=budget.get("fraction"), budget_of=budget.get("of"),
                      budget_gpu_hours=budget.get("gpu_hours"), budget_speed=budget.get("speed"), reference=reference,
                      budget_of_config=of_cfg,
                      objectives=objectives, trials=_int(data, "trials", 8, errors), seeds=seeds,
                      sampler=sampler, pruner=pruner, workers=_int(data, "workers", 1, errors),
                      storage=storage, search_dir=str(data.get("search_dir", "searches")),
                      description=str(data.get("description", "") or ""), source=source, raw=copy.deepcopy(data))
    if errors:
        raise SearchError(errors, source)
    try:
        config_mod.from_dict(copy.deepcopy(base))
    except ConfigError as exc:
        raise SearchError([(f"base: {f}", m) for f, m in exc.errors], source) from None
    return spec
