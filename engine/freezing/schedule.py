"""Progressive layer freezing planner (paper Sec. 4.2, Alg. 1, App. B; ALGORITHMS.md §3).

Pure Python (no torch): ``engine.cost.projection.project`` calls ``schedule_freeze`` for the ``plan``
command, the GUI preview and ``run_started.freeze_plan``; the freezer follows the result.

Every scheme is described the same way: ``frozen_prefix[e]`` = number of leading blocks
frozen in epoch e (the frozen set is always a prefix). A frozen block still runs forward,
so it saves, per sample, its backward FLOPs = 2 x its forward FLOPs (ALGORITHMS.md §2).
Masks change only at mask-update epochs and a frozen block skips them. A block entering
the frozen prefix is pruned to its target densities (``frozen_block_fwd_flops``, the
sparsifier's early final prune, so every layer ends at the target sparsity; without that
argument it keeps the FLOPs it froze with); unfrozen again, it keeps them until the next
mask update. ``achieved`` (also ``saving_share``) is the ledger's freeze share of the run's
training FLOPs: freeze saving / (spent + freeze saving), both under this plan's own
densities, exactly what ``engine.cost.projection.project`` projects and the ledger then
counts; the target search uses it. ``reduction`` is the paper's figure (Tables 2, A4-A6):
1 - training FLOPs with this freezing / training FLOPs of the same run without freezing.
The two differ once frozen blocks miss later density changes (docs/fidelity.md).

Rules (docs/layer-freezing.md explains them and compares with the paper's Tables A4/A5):

* single_shot: block k freezes at ``start + k*interval``. ``start`` is the latest multiple
  of ``interval`` (at least one interval, so every block trains first) at which freezing
  all the freezable blocks reaches the target (Alg. 1); then only as many blocks are
  frozen as the target needs ("freeze the next block until the expected FLOPs satisfy the
  target"), and the last of them is moved later in whole intervals while the target still
  holds, so the achieved saving overshoots the target by less than one block-interval.
* single_shot_resume: the same, with every block active again in the last
  ``freeze_resume_epochs(cfg)`` epochs (at ``freeze.resume_lr``); its freezing has to end
  by then, so the search gives a start about dR earlier for the same budget.
* periodic / delayed_periodic: from ``start`` (0, or ``freeze.delay_epochs``, default half
  the run) epochs run in cycles of 4: phase 0 all blocks train; phases 1 and 3 the front
  and middle groups are frozen; phase 2 only the front group. So the front group updates
  one epoch in four, the middle one in two, the rest every epoch. The groups grow front to
  back, front and middle alternately (k blocks: front ceil(k/2), middle floor(k/2)); the
  smallest k reaching the target is used, and the step from k-1 to k blocks happens at the
  latest cycle start that still meets the target (fine control of the budget).
* Freezable blocks: single-shot schemes freeze at most the leading blocks whose layers
  (conv/linear) fit in ``freeze.layer_fraction`` of the model's layers (or exactly
  ``freeze.blocks`` when set).
* Paper-exact settings: ``freeze.start_epoch`` gives t_frz directly (Tables A4/A5); then
  nothing is searched, all the freezable blocks (or ``freeze.blocks``) freeze from it, one
  per interval (periodic schemes: the cycles start there), and ``achieved`` reports the
  saving. ``freeze.target`` may then be 0. Periodic schemes
  size their groups by the budget (paper App. B), from every block but the last.
"""
from __future__ import annotations

import bisect
import itertools
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.analysis import adaptive
from engine.analysis import schedule as analysis_schedule
from engine.config import RunConfig, freeze_resume_epochs
from engine.run.payloads import FreezeSchedule
from engine.sparsity import schedule as dst_schedule

PERIOD = 4                      # periodic cycle: front 1-in-4, middle 1-in-2
_REL_TOL = 1e-9                 # float noise allowance when comparing savings with the goal


def freezable_blocks(block_layers: Sequence[int], layer_fraction: float) -> int:
    """Leading blocks whose layers fit in ``layer_fraction`` of all layers (never the last)."""
    limit = layer_fraction * sum(block_layers) + 1e-9
    n, cum = 0, 0
    for count in block_layers[:-1]:
        cum += count
        if cum > limit:
            break
        n += 1
    return n


@dataclass
class _Inputs:
    """What every scheme's planner reads: the run's shape, the pricer and the goal."""
    cfg: RunConfig
    T: int
    dT: int
    B: int
    block_layers: Sequence[int]
    pricer: _Pricer
    goal: float
    fixed_start: int | None
    n_blocks: int | None

    def saving(self, points) -> float:
        """The freeze share of the run's training FLOPs (what the ledger reports) under the
        prefix given by its change points."""
        saved, total = self.pricer.totals(points)
        return saved / total if total > 0 else 0.0


@dataclass
class _Schedule:
    """A scheme's answer: the prefix's change points, the start and the scheme's own keys."""
    points: list
    start: int
    resume_epoch: int | None = None
    extra: dict = field(default_factory=dict)


def schedule_freeze(cfg: RunConfig, block_names: Sequence[str], block_fwd_flops: Sequence[Sequence[float]],
                samples: Sequence[float], block_layers: Sequence[int] | None = None,
                frozen_block_fwd_flops: Sequence[float] | None = None) -> FreezeSchedule | None:
    """The freeze plan of ``cfg`` (None when ``freeze.target`` is 0).

    block_fwd_flops[e][b]: forward FLOPs per sample of block b in epoch e at the scheduled
    densities; samples[e]: training samples in epoch e; block_layers[b]: conv/linear layers
    in block b (default 1); frozen_block_fwd_flops[b]: block b's forward FLOPs at the target
    densities, which a block is pruned to when it freezes (default: it keeps the FLOPs it
    froze with).
    Raises ValueError naming the largest reachable target when the target cannot be met.
    """
    if float(cfg.freeze.target) <= 0 and cfg.freeze.start_epoch is None:
        return None
    inp = _inputs(cfg, block_names, block_fwd_flops, samples, block_layers, frozen_block_fwd_flops)
    planner = _SCHEMES.get(cfg.freeze.scheme)
    if planner is None:
        raise ValueError(f"freeze.scheme: unknown scheme {cfg.freeze.scheme!r}; expected single_shot, "
                         "single_shot_resume, periodic, delayed_periodic or adaptive")
    sched = planner(inp, block_names)
    return _assemble(inp, sched, block_names, prune_frozen=frozen_block_fwd_flops is not None)


def _inputs(cfg, block_names, block_fwd_flops, samples, block_layers, frozen_block_fwd_flops) -> _Inputs:
    """Checks the inputs and prices the run without freezing."""
    T, dT, B = int(cfg.epochs), int(cfg.interval), len(block_names)
    _check_inputs(T, B, block_fwd_flops, samples)
    if block_layers is None:
        block_layers = [1] * B
    if len(block_layers) != B:
        raise ValueError(f"block_layers: expected {B} entries (one per block), got {len(block_layers)}")
    # Masks (and so block FLOPs) change only at mask-update epochs, and a frozen block skips
    # them; entering the prefix it drops to its target FLOPs (under MEST EM&S it froze at
    # the looser soft-bound density). Price schedules that way, as engine.cost.projection.project does.
    at_target = None
    if frozen_block_fwd_flops is not None:
        at_target = [float(v) for v in frozen_block_fwd_flops]
        if len(at_target) != B or any(not math.isfinite(v) or v < 0 for v in at_target):
            raise ValueError(f"frozen_block_fwd_flops: expected {B} finite non-negative FLOPs (one per block)")
    pricer = _Pricer(T, B, block_fwd_flops, samples, dst_schedule.update_epochs(cfg), at_target)
    if pricer.totals([(0, 0)])[1] <= 0:
        raise ValueError("the run has no training FLOPs to save by freezing")
    n_blocks = cfg.freeze.blocks
    if n_blocks is not None and not 1 <= n_blocks < B:
        raise ValueError(f"freeze.blocks: must be in [1, {B - 1}] (the last block never freezes), got {n_blocks}")
    return _Inputs(cfg, T, dT, B, block_layers, pricer, float(cfg.freeze.target) * (1 - _REL_TOL),
                   cfg.freeze.start_epoch, n_blocks)


def _schedule_single_shot(inp: _Inputs, block_names: Sequence[str]) -> _Schedule:
    """single_shot, single_shot_resume and adaptive (whose deadline is the single-shot plan)."""
    cfg, T, dT = inp.cfg, inp.T, inp.dT
    scheme = cfg.freeze.scheme
    n = inp.n_blocks if inp.n_blocks is not None else freezable_blocks(inp.block_layers, cfg.freeze.layer_fraction)
    if n == 0:
        raise ValueError(f"freeze.layer_fraction: {cfg.freeze.layer_fraction:g} of the layers does not cover "
                         f"even the first block ({inp.block_layers[0]} of {sum(inp.block_layers)} layers); raise it")
    end, resume_epoch = T, None
    if scheme == "single_shot_resume":
        dr = freeze_resume_epochs(cfg)
        if not 0 < dr < T:
            raise ValueError(f"freeze.resume_epochs: must be in [1, epochs-1] = [1, {T - 1}], got {dr}")
        end = resume_epoch = T - dr
    if inp.fixed_start is not None:
        if inp.fixed_start >= end:
            raise ValueError(f"freeze.start_epoch: must be before epoch {end} (the end of freezing), "
                             f"got {inp.fixed_start}")
        points, start = _single_shot_points(T, dT, inp.fixed_start, n, end), inp.fixed_start
    else:
        points, start = _plan_single_shot(T, dT, n, end, inp.saving, inp.goal)
    extra: dict = {"freezable_blocks": n}
    if scheme == "adaptive":   # single-shot is its deadline; see engine.analysis.adaptive
        extra["adaptive"] = _adaptive_range(cfg, T, n, points, inp.saving)
    return _Schedule(points, start, resume_epoch, extra)


def _schedule_periodic(inp: _Inputs, block_names: Sequence[str]) -> _Schedule:
    """periodic and delayed_periodic: cycles of 4 epochs from the start (paper App. B)."""
    cfg, T = inp.cfg, inp.T
    start = 0
    if cfg.freeze.scheme == "delayed_periodic":
        start = cfg.freeze.delay_epochs if cfg.freeze.delay_epochs is not None else T // 2
        if not 0 <= start < T:
            raise ValueError(f"freeze.delay_epochs: must be in [0, epochs-1] = [0, {T - 1}], got {start}")
    if inp.fixed_start is not None:
        start = inp.fixed_start
    if inp.fixed_start is not None or inp.n_blocks is not None:
        k = inp.n_blocks if inp.n_blocks is not None else inp.B - 1
        points, groups, join = _periodic_points(T, start, k, k, start), _groups(k), start
    else:
        points, groups, join = _plan_periodic(T, inp.B, start, inp.saving, inp.goal)
    extra = {
        "groups": {"front": list(block_names[:groups[0]]),
                   "middle": list(block_names[groups[0]:groups[0] + groups[1]])},
        "update_every": {name: (PERIOD if i < groups[0] else 2 if i < sum(groups) else 1)
                         for i, name in enumerate(block_names)},
        "groups_final_from": join,
    }
    return _Schedule(points, start, None, extra)


_SCHEMES = {
    "single_shot": _schedule_single_shot,
    "single_shot_resume": _schedule_single_shot,
    "adaptive": _schedule_single_shot,
    "periodic": _schedule_periodic,
    "delayed_periodic": _schedule_periodic,
}


def _block_lr_end(points, T: int, B: int, phase_end: int) -> list[int]:
    """Per block: the last epoch before ``phase_end`` in which it trains (prefix <= b), plus one."""
    ends = [b for _, b in zip(points, [e for e, _ in points[1:]] + [T])]
    out = []
    for b in range(B):
        last = 0
        for (a, p), z in zip(points, ends):
            if p <= b and a < phase_end:
                last = min(z, phase_end)
        out.append(last)
    return out


def _shortfall(cfg, inp: _Inputs, reduction: float, share: float) -> list[str]:
    """A given start epoch freezes what it freezes (Tables A4/A5): say when that misses the
    target rather than report the smaller saving silently (Alg. 1 freezes *until* the target)."""
    target = float(cfg.freeze.target)
    if inp.fixed_start is None or target <= 0 or share >= inp.goal:
        return []
    return [f"freeze.start_epoch {inp.fixed_start} misses freeze.target {100 * target:.1f}%: it saves "
            f"{100 * share:.1f}% of the training FLOPs (a {100 * reduction:.1f}% reduction against no "
            f"freezing); choose an earlier start epoch or leave it empty to search for the target"]


def _assemble(inp: _Inputs, sched: _Schedule, block_names: Sequence[str], prune_frozen: bool) -> FreezeSchedule:
    """The plan payload of a scheme's schedule."""
    cfg, T = inp.cfg, inp.T
    points = sched.points
    saved_sum, total_sum = inp.pricer.totals(points)
    without = inp.pricer.totals([(0, 0)])[1]
    reduction = 1.0 - (total_sum - saved_sum) / without
    freeze_epochs = {}
    for b, name in enumerate(block_names):
        first = next((e for e, p in points if p > b), None)
        if first is not None:
            freeze_epochs[name] = first
    phase_end = sched.resume_epoch if sched.resume_epoch is not None else T
    plan: FreezeSchedule = {                 # engine.run.payloads.FreezeSchedule; schemes add keys (extra)
        "scheme": cfg.freeze.scheme,
        "target": float(cfg.freeze.target),
        "achieved": saved_sum / total_sum,
        "saving_share": saved_sum / total_sum,
        "reduction": reduction,
        "warnings": _shortfall(cfg, inp, reduction, saved_sum / total_sum),
        "max_reachable": _max_reachable(cfg.freeze.scheme, T, inp.dT, inp.B, inp.block_layers, cfg, inp.saving,
                                        sched.resume_epoch),
        "start_epoch": sched.start,
        "start_given": inp.fixed_start is not None,
        "prune_frozen": prune_frozen,
        "interval": inp.dT,
        "layer_fraction": cfg.freeze.layer_fraction,
        "freeze_epochs": freeze_epochs,
        "frozen_prefix": _expand(points, T),
        "block_lr_end": _block_lr_end(points, T, inp.B, phase_end),
        "resume_epoch": sched.resume_epoch,
        "resume_lr": cfg.freeze.resume_lr if sched.resume_epoch is not None else None,
        "cost_without_freezing": without,
        "epoch_saving": inp.pricer.epoch_saving(points),
    }
    plan.update(sched.extra)  # type: ignore[typeddict-item]
    return plan


def _check_inputs(T, B, flops, samples) -> None:
    if B < 2:
        raise ValueError(f"freeze: the model needs at least 2 blocks to freeze a prefix, got {B}")
    if len(flops) != T:
        raise ValueError(f"block_fwd_flops: expected one row per epoch ({T}), got {len(flops)}")
    if len(samples) != T:
        raise ValueError(f"samples: expected one entry per epoch ({T}), got {len(samples)}")
    # epochs of one schedule segment share their row: check each new row once
    for e in [0] + changes(flops, operator.is_not) if T else []:
        row = flops[e]
        if len(row) != B:
            raise ValueError(f"block_fwd_flops[{e}]: expected {B} blocks, got {len(row)}")
        if any(not math.isfinite(v) or v < 0 for v in row):
            raise ValueError(f"block_fwd_flops[{e}]: FLOPs must be finite and non-negative")
    if any(not math.isfinite(v) or v < 0 for v in set(samples)):
        raise ValueError("samples: must be finite and non-negative")


def _epoch_prices(T, B, flops, updates, prefix, at_target) -> list[tuple[float, float]]:
    """Per epoch, (forward FLOPs per sample of the frozen prefix, of all blocks) with
    ``prefix[e]`` leading blocks frozen. A block has the FLOPs of the last mask-update epoch
    at which it was not frozen (epoch 0 included); frozen, it is cut to ``at_target[b]``
    (None: it keeps what it froze with)."""
    cur = list(flops[0])
    out = []
    for e in range(T):
        p = prefix[e]
        if updates[e]:
            for b in range(p, B):
                cur[b] = flops[e][b]
        if at_target is not None:
            for b in range(p):
                cur[b] = min(cur[b], at_target[b])
        out.append((sum(cur[:p]), sum(cur)))
    return out


class _Pricer:
    """The per-epoch walk of ``_epoch_prices`` done by segments: between two breakpoints
    (a change of the samples, of the scheduled FLOPs, of the prefix, and the first mask
    update after a schedule change or an unfreezing) every epoch costs the same, so a whole
    run is priced in time proportional to its segments, not its epochs."""

    def __init__(self, T, B, flops, samples, update_epochs, at_target):
        self.T, self.B, self.at_target = T, B, at_target
        self.flops, self.samples = flops, samples
        self.ups = sorted({0} | {e for e in update_epochs if 0 <= e < T})
        self.ups_set = set(self.ups)
        self.sched = [e for e in changes(flops, operator.is_not) if list(flops[e]) != list(flops[e - 1])]
        self.cuts = set(self.sched) | set(changes(samples)) | {0, T}
        self._rows: dict[int, list[float]] = {}

    def _row(self, e):
        r = self.flops[e]
        out = self._rows.get(id(r))
        if out is None:
            out = self._rows[id(r)] = [float(v) for v in r]
        return out

    def segments(self, points):
        """(start, end, prefix, frozen FLOPs, all FLOPs) per segment, FLOPs per sample."""
        T, B, at = self.T, self.B, self.at_target
        bps = set(self.cuts) | {e for e, _ in points if e < T}
        late = list(self.sched) + [points[i][0] for i in range(1, len(points)) if points[i][1] < points[i - 1][1]]
        for c in late:    # the first update at or after c applies it
            i = bisect.bisect_left(self.ups, c)
            if i < len(self.ups):
                bps.add(self.ups[i])
        cuts = sorted(bps)
        cur = list(self._row(0))
        out, j, p = [], 0, 0
        for a, b in zip(cuts, cuts[1:]):
            while j < len(points) and points[j][0] <= a:
                p = points[j][1]
                j += 1
            if a in self.ups_set:
                row = self._row(a)
                for k in range(p, B):
                    cur[k] = row[k]
            if at is not None:
                for k in range(p):
                    if cur[k] > at[k]:
                        cur[k] = at[k]
            out.append((a, b, p, sum(cur[:p]), sum(cur)))
        return out

    def totals(self, points):
        """(freeze saving, spent + freeze saving) of the run, the ledger's terms."""
        saved = total = 0.0
        for a, b, _, fr, t in self.segments(points):
            n = self.samples[a]
            saved += 2.0 * n * fr * (b - a)
            total += 3.0 * n * t * (b - a)
        return saved, total

    def epoch_saving(self, points):
        out: list[float] = []
        for a, b, _, fr, _ in self.segments(points):
            out.extend([2.0 * self.samples[a] * fr] * (b - a))
        return out


def changes(values, differ=operator.ne) -> list[int]:
    """Indices e > 0 with differ(values[e], values[e - 1]), scanned at C speed."""
    if not isinstance(values, list):
        values = list(values)
    return list(itertools.compress(range(1, len(values)), map(differ, values[1:], values[:-1])))


def _points(prefix: list[int]) -> list[tuple[int, int]]:
    """Change points [(epoch, prefix), ...] of a per-epoch prefix (the inverse of _expand)."""
    return [(0, prefix[0])] + [(e, prefix[e]) for e in changes(prefix)]


def _expand(points, T) -> list[int]:
    """Per-epoch prefix from its change points [(epoch, prefix), ...] (the first at epoch 0)."""
    out: list[int] = []
    for (a, p), (b, _) in zip(points, list(points[1:]) + [(T, 0)]):
        out.extend([p] * (max(a, min(b, T)) - a))
    return out[:T]


def _largest_ok(lo: int, hi: int, ok) -> int:
    """The largest i in [lo, hi] with ok(i), given ok(lo) and ok monotone (true, then false):
    a bisection that returns what a linear scan from lo would stop at."""
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _single_shot_points(T, dT, start, m, end, last_delay=0):
    freeze_at = [start + k * dT for k in range(m)]
    if m:
        freeze_at[-1] += last_delay
    pts = [(0, 0)]
    for k, t in enumerate(sorted(freeze_at), start=1):
        if t < end:
            if pts[-1][0] == t:
                pts[-1] = (t, k)
            else:
                pts.append((t, k))
    if end < T:
        pts.append((end, 0))
    if len(pts) > 1 and pts[1][0] == 0:
        pts = pts[1:]
    return pts


def _single_shot_prefix(T, dT, start, m, end, last_delay=0):
    return _expand(_single_shot_points(T, dT, start, m, end, last_delay), T)


def _plan_single_shot(T, dT, n, end, saving, goal):
    starts = list(range(dT, end, dT))
    ok = lambda i: saving(_single_shot_points(T, dT, starts[i], n, end)) >= goal
    if not starts or not ok(0):
        best = saving(_single_shot_points(T, dT, dT, n, end)) if starts else 0.0
        raise _unreachable(best, f"freezing {n} block(s) from epoch {dT}")
    # the latest start that still meets the goal (saving falls as the start moves later)
    start = starts[_largest_ok(0, len(starts) - 1, ok)]
    m = next(k for k in range(1, n + 1) if saving(_single_shot_points(T, dT, start, k, end)) >= goal)
    # the last block moved later in whole intervals while the goal holds
    j_max = max(0, (end - 1 - start - (m - 1) * dT) // dT)
    j = _largest_ok(0, j_max, lambda j: j == 0 or saving(_single_shot_points(T, dT, start, m, end, j * dT)) >= goal)
    return _single_shot_points(T, dT, start, m, end, j * dT), start


def _periodic_prefix_at(e, start, front, middle):
    if e < start:
        return 0
    phase = (e - start) % PERIOD
    return 0 if phase == 0 else front if phase == 2 else front + middle


def _groups(k):
    return (k + 1) // 2, k // 2


def _periodic_points(T, start, k_before, k_after, join):
    g0, g1 = _groups(k_before), _groups(k_after)
    pts = [(0, 0)]
    for e in range(start, T):
        p = _periodic_prefix_at(e, start, *(g1 if e >= join else g0))
        if p != pts[-1][1]:
            pts.append((e, p))
    return pts


def _periodic_prefix(T, start, k_before, k_after, join):
    return _expand(_periodic_points(T, start, k_before, k_after, join), T)


def _plan_periodic(T, B, start, saving, goal):
    k = next((k for k in range(1, B) if saving(_periodic_points(T, start, k, k, start)) >= goal), None)
    if k is None:
        best = saving(_periodic_points(T, start, B - 1, B - 1, start))
        raise _unreachable(best, f"periodic freezing of {B - 1} block(s) from epoch {start}")
    # join: the groups of k blocks start as late as the goal allows, in whole cycles
    steps = max(0, (T - 1 - start) // PERIOD)
    i = _largest_ok(0, steps, lambda i: i == 0 or saving(_periodic_points(T, start, k - 1, k, start + i * PERIOD)) >= goal)
    join = start + i * PERIOD
    return _periodic_points(T, start, k - 1, k, join), _groups(k), join


def _adaptive_range(cfg, T, n, deadline, saving) -> dict:
    """Savings freeze.scheme=adaptive can give: from its deadline (the single-shot plan) to
    every freezable block frozen as early as the patience allows."""
    a = cfg.freeze.adaptive
    earliest = adaptive.earliest_prefix(T, analysis_schedule.measure_epochs(cfg), n, a.patience, a.anneal_epochs)
    fastest = [max(x, y) for x, y in zip(_expand(deadline, T), earliest)]   # deadline: change points
    return {"min_saving": saving(deadline), "max_saving": saving(_points(fastest)), "earliest_prefix": fastest,
            "cka": a.cka, "mask_similarity": a.mask_similarity, "patience": a.patience,
            "anneal_epochs": a.anneal_epochs}


def _max_reachable(scheme, T, dT, B, block_layers, cfg, saving, resume_epoch):
    if scheme in ("single_shot", "single_shot_resume", "adaptive"):
        n = cfg.freeze.blocks or freezable_blocks(block_layers, cfg.freeze.layer_fraction)
        end = resume_epoch if resume_epoch is not None else T
        return saving(_single_shot_points(T, dT, dT, n, end)) if dT < end else 0.0
    start = 0
    if scheme == "delayed_periodic":
        start = cfg.freeze.delay_epochs if cfg.freeze.delay_epochs is not None else T // 2
    return saving(_periodic_points(T, start, B - 1, B - 1, start))


def saving_text(fp) -> str:
    """The plan's two freeze figures, named the same way in the CLI, the studio and the report."""
    red, share = fp.get("reduction"), fp.get("achieved")
    ok = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v == v
    parts = []
    if ok(red):
        parts.append(f"reduction {100 * red:.1f}% vs no freezing (paper's figure)")
    if ok(share):
        parts.append(f"share of the run's training FLOPs {100 * share:.1f}%")
    return "; ".join(parts)


class FreezeTargetUnreachable(ValueError):
    """freeze.target above what the schedule can save; ``best`` is the largest reachable saving
    and ``suggestion`` a target just below it (3 decimals, rounded down) that is reachable."""

    def __init__(self, message: str, best: float):
        super().__init__(message)
        self.best = best
        self.suggestion = math.floor(best * 1000) / 1000


def _unreachable(best: float, how: str) -> FreezeTargetUnreachable:
    return FreezeTargetUnreachable(f"target not reachable: the largest reachable freeze target is {best:.4f} "
                                   f"({100 * best:.2f}% of the training FLOPs, {how}); lower freeze.target"
                                   f" or raise freeze.layer_fraction / epochs", best)


def frozen_prefix(plan: FreezeSchedule | None, epoch: int) -> int:
    """Leading blocks frozen in ``epoch`` under ``plan`` (0 without a plan or past its end)."""
    if not plan:
        return 0
    fp = plan["frozen_prefix"]
    return fp[epoch] if 0 <= epoch < len(fp) else 0
