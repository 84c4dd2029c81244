"""Project a whole run, without torch and without the data: training FLOPs (spent, dense
equivalent, saved by sparsity / freezing / sieving, overhead of the method), training memory
and the freeze plan. ``spfde-train plan``, the GUI's live preview and ``run_started.projected``.

The ledger decomposition (docs/cost-model.md), per epoch, with N the full training set,
n the samples trained, F_dense / F_sparse the forward FLOPs per sample dense / at the
epoch's densities and F_frozen the forward FLOPs of the frozen leading blocks:

    dense    = N x 3 x F_dense
    sparsity = N x 3 x (F_dense - F_sparse)
    sieve    = (N - n) x 3 x F_sparse
    freeze   = n x 2 x F_frozen
    spent    = dense - sparsity - sieve - freeze + overhead = n x (3 F_sparse - 2 F_frozen) + overhead

overhead: FLOPs the sparse-training method spends on top of training, by source (RigL's
dense-gradient steps ``dst_dense_grad``, SNIP/GraSP's scoring passes ``mask_scoring``), from
the method's pure schedule (engine.sparsity.methods).

Every schedule is piecewise constant, so the run is priced by segments of epochs with the
same samples, frozen prefix, densities and overhead: the cost grows with the number of
segments, not of epochs (docs/cost-model.md).

engine.cost.ledger applies the same formulas to what a run actually did.
"""
from __future__ import annotations

import bisect
from collections.abc import Sequence

from engine.analysis import schedule as analysis_schedule
from engine.config import ConfigError, RunConfig, freeze_enabled, sieve_oneshot_epoch, sieve_removed, sieve_swapped
from engine.cost import arch as arch_mod
from engine.cost import costmodel, oneshot_range
from engine.data.sizes import dataset_sizes
from engine.freezing.schedule import FreezeTargetUnreachable, changes, saving_text, schedule_freeze
from engine.run.payloads import OVERHEAD, SOURCES, Flops, FreezeSchedule, Projection, Saved, add_flops, with_overhead, zero_flops  # noqa: F401 - OVERHEAD, SOURCES, add_flops, zero_flops: re-exported
from engine.sparsity import schedule as dst_schedule
from engine.sparsity.methods import method_for

MEMORY_BITS = 32


def epoch_flops(train_size: int, samples: int, f_dense: float, f_sparse: float, f_frozen: float,
                overhead: dict | None = None) -> Flops:
    """One epoch's ledger entry (the formulas in the module docstring) plus the method's overhead."""
    dense = train_size * 3.0 * f_dense
    saved: Saved = {
        "sparsity": train_size * 3.0 * (f_dense - f_sparse),
        "freeze": samples * 2.0 * f_frozen,
        "sieve": (train_size - samples) * 3.0 * f_sparse,
    }
    over = {k: 0.0 for k in OVERHEAD}
    over.update(overhead or {})
    spent = dense - saved["sparsity"] - saved["freeze"] - saved["sieve"] + sum(over.values())
    return {"spent": spent, "dense": dense, "saved": saved, "overhead": over}


def samples_per_epoch(cfg: RunConfig, train_size: int) -> list[int]:
    removed = sieve_removed(cfg, train_size)
    if cfg.sieve.ratio <= 0:
        return [train_size] * cfg.epochs
    if cfg.sieve.mode == "oneshot":
        at = sieve_oneshot_epoch(cfg)
        at = max(0, min(at, cfg.epochs))
        return [train_size] * at + [train_size - removed] * (cfg.epochs - at)
    return [train_size - removed] * cfg.epochs


def describe_run(cfg: RunConfig) -> tuple[dict, arch_mod.Arch]:
    """(dataset sizes, architecture) of a configuration, or a ConfigError."""
    sizes = dataset_sizes(cfg)
    return sizes, arch_mod.describe(cfg.model, sizes["num_classes"], sizes["image_size"])


def _scheduled(cfg: RunConfig, arch, method=None) -> list[dict]:
    """Layer densities the schedule prescribes at each epoch (ignoring freezing); epochs of
    one sparsity share one dict."""
    specs = arch.layer_specs()
    by_sparsity: dict[float, dict] = {}
    out = []
    for s in _sparsity_rows(cfg, method or method_for(cfg)):
        if s not in by_sparsity:
            try:
                by_sparsity[s] = dst_schedule.mask_densities(cfg, specs, s)
            except ValueError as exc:
                raise ConfigError([("sparsity.dense_layers", str(exc))]) from None
        out.append(by_sparsity[s])
    return out


def target_densities(cfg: RunConfig, arch) -> dict:
    """Layer densities at the target sparsity: what a frozen block is pruned to."""
    return dst_schedule.mask_densities(cfg, arch.layer_specs(), cfg.sparsity.target)


def _frozen_cut(cfg: RunConfig, arch) -> dict:
    """Densities a block is cut to when it freezes; {} when none is cut. freeze.prune_frozen
    false: a freezing block keeps the mask it froze with (the paper's "structure and weights
    remain unchanged")."""
    return target_densities(cfg, arch) if cfg.sparsity.target > 0 and cfg.freeze.prune_frozen else {}


def _with_frozen_masks(cfg: RunConfig, arch, scheduled: list[dict], prefix: list[int]) -> list[dict]:
    """Densities the run trains at: masks change only at mask-update epochs; a block entering
    the frozen prefix is pruned to its target densities (never regrown) and skips updates
    while frozen; unfrozen again, it keeps the target until the next update reaches it.
    The per-epoch reference of what project() computes by segments."""
    target = _frozen_cut(cfg, arch)
    ups = set(dst_schedule.update_epochs(cfg))
    out: list[dict] = []
    cur: dict = {}
    for e in range(cfg.epochs):
        p = prefix[e]
        if e == 0:
            cur = dict(scheduled[0])
        elif e in ups:
            cur = dict(cur)
            for l in arch.layers:
                if l.block >= p:
                    cur[l.name] = scheduled[e][l.name]
        if p and any(l.block < p and cur[l.name] > target.get(l.name, 1.0) for l in arch.layers):
            cur = dict(cur)
            for l in arch.layers:
                if l.block < p:
                    cur[l.name] = min(cur[l.name], target.get(l.name, 1.0))
        out.append(cur)
    return out


def overall_density(arch, densities: dict) -> float:
    total = sum(l.params for l in arch.layers)
    return sum(l.params * densities.get(l.name, 1.0) for l in arch.layers) / total


def _freeze_schedule(cfg: RunConfig, arch, method, samples: list[int]) -> FreezeSchedule | None:
    if not freeze_enabled(cfg):
        return None
    specs = arch.layer_specs()
    T = cfg.epochs
    cuts = sorted({0, T} | {c for c in method.sparsity_changes() if 0 < c < T})
    by_sparsity: dict[float, list[float]] = {}
    fwd: list[list[float]] = []
    for a, b in zip(cuts, cuts[1:]):            # one priced row per schedule segment, shared
        sp = method.training_sparsity(a)
        if sp not in by_sparsity:
            by_sparsity[sp] = costmodel.block_forward_flops(arch, dst_schedule.mask_densities(cfg, specs, sp))
        fwd.extend([by_sparsity[sp]] * (b - a))
    at_target = costmodel.block_forward_flops(arch, target_densities(cfg, arch)) \
        if cfg.sparsity.target > 0 and cfg.freeze.prune_frozen else None
    try:
        return schedule_freeze(cfg, arch.block_names, fwd, samples,
                           block_layers=[len(b.layers) for b in arch.blocks],
                           frozen_block_fwd_flops=at_target)
    except FreezeTargetUnreachable as exc:
        raise ConfigError([("freeze.target", str(exc))], suggestions={"freeze.target": exc.suggestion}) from None
    except ValueError as exc:
        msg = str(exc)
        field = next((f for f in ("freeze.start_epoch", "freeze.blocks", "freeze.layer_fraction",
                                  "freeze.resume_epochs", "freeze.delay_epochs") if msg.startswith(f)), "freeze.target")
        raise ConfigError([(field, msg)]) from None


def _check_sieve(cfg: RunConfig, train_size: int) -> None:
    """Sieve settings that would silently do nothing on this dataset are errors."""
    if cfg.sieve.ratio <= 0:
        return
    removed = sieve_removed(cfg, train_size)
    if removed < 1:
        raise ConfigError([("sieve.ratio", f"{cfg.sieve.ratio:g} of {train_size} training samples rounds to 0 "
                            f"removed; use at least {1 / train_size:.2g} or 0 to switch sieving off")])
    if removed >= train_size:
        raise ConfigError([("sieve.ratio", f"{cfg.sieve.ratio:g} removes all {train_size} training samples")])
    if cfg.sieve.mode == "circular" and sieve_swapped(cfg, removed) < 1:
        raise ConfigError([("sieve.update_ratio", f"{cfg.sieve.update_ratio:g} of the {removed} removed samples "
                            f"rounds to 0 swapped per update, so the removed samples would never return; "
                            f"use at least {0.5 / removed:.2g}")])


def _breakpoints(cfg: RunConfig, method, samples: list[int], prefix: list[int], ups: list[int]) -> list[int]:
    """Epochs that start a segment: every per-epoch quantity (samples, frozen prefix, layer
    densities, the method's overhead) is constant between two of them. Densities change only
    at a mask update at or after a change of the schedule or an unfreezing."""
    T = cfg.epochs
    points = {0, 1, T}
    moved = sorted(set(changes(samples)) | set(changes(prefix)))
    points.update(moved)
    late = set(method.sparsity_changes()) | {e for e in moved if prefix[e] < prefix[e - 1]}
    points.update(late)
    for c in late:   # the first update at or after c applies it
        i = bisect.bisect_left(ups, c)
        if i < len(ups):
            points.add(ups[i])
    return sorted(p for p in points if 0 <= p <= T)


def _sparsity_rows(cfg: RunConfig, method) -> list[float]:
    """training_sparsity of every epoch, evaluated once per segment of the schedule."""
    T = cfg.epochs
    cuts = sorted({0, T} | {c for c in method.sparsity_changes() if 0 < c < T})
    out: list[float] = []
    for a, b in zip(cuts, cuts[1:]):
        out.extend([method.training_sparsity(a)] * (b - a))
    return out


def _segments_priced(cfg: RunConfig, arch, method, samples: list[int], prefix: list[int], n_train: int) -> list[dict]:
    """Segments [start, end) of the run, each with its constant densities, prefix, samples and
    one epoch's FLOPs and memory: the per-epoch walk of _with_frozen_masks, visiting only the
    epochs where something can change."""
    specs = arch.layer_specs()
    ups_sorted = method.update_epochs()
    ups = set(ups_sorted)
    target = _frozen_cut(cfg, arch)
    by_sparsity: dict[float, dict] = {}

    def scheduled(e: int) -> dict:
        s = method.training_sparsity(e)
        if s not in by_sparsity:
            try:
                by_sparsity[s] = dst_schedule.mask_densities(cfg, specs, s)
            except ValueError as exc:
                raise ConfigError([("sparsity.dense_layers", str(exc))]) from None
        return by_sparsity[s]

    f_dense = arch.forward_flops_dense
    dense_blocks = costmodel.block_forward_flops(arch, {})
    points = _breakpoints(cfg, method, samples, prefix, ups_sorted)
    out: list[dict] = []
    cur: dict = {}
    for a, b in zip(points, points[1:]):
        p = prefix[a]
        if a == 0:
            cur = dict(scheduled(0))
        elif a in ups:
            sched = scheduled(a)
            cur = dict(cur)
            for l in arch.layers:
                if l.block >= p:
                    cur[l.name] = sched[l.name]
        if p and any(l.block < p and cur[l.name] > target.get(l.name, 1.0) for l in arch.layers):
            cur = dict(cur)
            for l in arch.layers:
                if l.block < p:
                    cur[l.name] = min(cur[l.name], target.get(l.name, 1.0))
        blocks = costmodel.block_forward_flops(arch, cur)
        over = method.overhead(a, samples[a], sum(blocks[p:]), sum(dense_blocks[p:]), f_dense, n_train)
        fl = epoch_flops(n_train, samples[a], f_dense, sum(blocks), sum(blocks[:p]), over)
        mem = costmodel.memory(arch, cur, p, cfg.batch_size, MEMORY_BITS)
        out.append({"start": a, "end": b, "samples": samples[a], "density": overall_density(arch, cur),
                    "training_sparsity": method.training_sparsity(a), "frozen_prefix": p,
                    "flops": fl, "memory_bytes": mem["total"], "_mem": mem, "_densities": cur,
                    "_forward": sum(blocks)})
    return out


def _analysis_overhead(cfg: RunConfig, n_train: int, segs: list[dict]) -> dict[int, float]:
    """{measurement epoch: probe FLOPs} of the Section 3 analyses (engine.analysis.schedule)."""
    if not cfg.analysis.enabled:
        return {}
    starts = [sg["start"] for sg in segs]
    out = {}
    for e in analysis_schedule.measure_epochs(cfg):
        sg = segs[bisect.bisect_right(starts, e) - 1]
        out[e] = analysis_schedule.probe_flops(cfg, n_train, e, sg["_forward"])
    return out


def project(cfg: RunConfig) -> dict:
    """The whole run projected by segments of constant cost (see the module docstring).

    ``segments`` lists them ([start, end) epochs, one epoch's FLOPs each); ``epochs`` expands
    them to one row per epoch (rows of a segment share their ``flops`` dict)."""
    sizes, arch = describe_run(cfg)
    n_train = sizes["train_size"]
    if cfg.analysis.enabled and not arch.sequential:
        # CKA compares each block's output: a model that runs as a whole has none to read
        raise ConfigError([("analysis.enabled", f"the Section 3 analyses read each freeze block's output, and "
                            f"{cfg.model.name} runs as a whole; set analysis.enabled: false (a built-in model "
                            "or a factory returning a BlockModel supports them)")],
                          suggestions={"analysis.enabled": False})
    _check_sieve(cfg, n_train)
    samples = samples_per_epoch(cfg, n_train)
    method = method_for(cfg, samples)
    specs = arch.layer_specs()
    try:
        n_sparse = len(specs) - len(dst_schedule.dense_layer_names(cfg, specs))
    except ValueError as exc:
        raise ConfigError([("sparsity.dense_layers", str(exc))]) from None
    problems = method.check(n_sparse, n_train)
    if problems:
        raise ConfigError(problems)
    fplan = _freeze_schedule(cfg, arch, method, samples)
    prefix = list(fplan["frozen_prefix"]) if fplan else [0] * cfg.epochs
    segs = _segments_priced(cfg, arch, method, samples, prefix, n_train)

    total = zero_flops()
    for sg in segs:
        total = add_flops(total, sg["flops"], sg["end"] - sg["start"])
    # The analyses' probe forwards happen at measurement epochs only: priced per measurement
    # at its segment's forward FLOPs, on top of the segments' totals (and in their epoch rows).
    probes = _analysis_overhead(cfg, n_train, segs)
    total = with_overhead(total, {analysis_schedule.SOURCE: sum(probes.values())})
    peak = max(segs, key=lambda sg: sg["_mem"]["total"])
    low = min(segs, key=lambda sg: sg["_mem"]["total"])
    dense_mem = costmodel.memory(arch, {}, 0, cfg.batch_size, MEMORY_BITS)
    dense_block = costmodel.block_forward_flops(arch, {})
    public = [{k: v for k, v in sg.items() if not k.startswith("_")} for sg in segs]
    average = sum(sg["_mem"]["total"] * (sg["end"] - sg["start"]) for sg in segs) / cfg.epochs
    return {
        "model": {"name": cfg.model.name, "width": arch.width, "params": arch.params,
                  "blocks_from": arch.blocks_from, "warnings": list(arch.warnings)},
        "dataset": sizes,
        "method": {"name": method.name, "exact": method.exact_plan,
                   "distribution": method.layer_distribution() if method.distribution else None,
                   # SNIP/GraSP only: the data pick the layer densities; the forward FLOPs any such mask can have
                   **({"forward_range": list(oneshot_range.forward_range(cfg, arch, cfg.sparsity.target))}
                      if not method.exact_plan and cfg.sparsity.target > 0 else {})},
        "segments": public,
        "epochs": EpochRows(public, probes),
        "blocks": [{"name": b.name, "params": b.params, "forward_flops": dense_block[b.index],
                    "extra_flops": b.extra_flops, "layers": list(b.layers)} for b in arch.blocks],
        "freeze_plan": fplan,
        "probes": [[e, f] for e, f in sorted(probes.items())],
        "flops": {
            "spent": total["spent"], "dense": total["dense"], "saved": total["saved"],
            "overhead": total["overhead"], "forward_dense_per_sample": arch.forward_flops_dense,
        },
        "memory": {
            "bits": MEMORY_BITS, "batch_size": cfg.batch_size,
            "peak_bytes": peak["_mem"]["total"], "peak_epoch": peak["start"],
            "min_bytes": low["_mem"]["total"], "min_epoch": low["start"],
            "average_bytes": average,
            "dense_bytes": dense_mem["total"],
            "by_part": {"peak": _parts(peak["_mem"]), "min": _parts(low["_mem"]), "dense": _parts(dense_mem)},
        },
    }


class EpochRows(Sequence):
    """One row per epoch, made on access from the segments, so a 100,000-epoch plan costs no
    more than its segments; ``tolist()`` (used by JSON output) expands them all."""

    def __init__(self, segments: list[dict], extra: dict[int, float] | None = None):
        self._segs = segments
        self._extra = extra or {}           # {epoch: analysis probe FLOPs} on top of its segment
        self._starts = [sg["start"] for sg in segments]
        self._n = segments[-1]["end"] if segments else 0

    def __len__(self) -> int:
        return self._n

    def _row(self, e: int) -> dict:
        sg = self._segs[bisect.bisect_right(self._starts, e) - 1]
        fl = sg["flops"]
        if self._extra.get(e):
            fl = with_overhead(fl, {analysis_schedule.SOURCE: self._extra[e]})
        return {"epoch": e, "samples": sg["samples"], "density": sg["density"],
                "training_sparsity": sg["training_sparsity"], "frozen_prefix": sg["frozen_prefix"],
                "flops": fl, "memory_bytes": sg["memory_bytes"]}

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._row(e) for e in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        return self._row(i)

    def tolist(self) -> list[dict]:
        return [self._row(e) for e in range(self._n)]


def _parts(mem: dict) -> dict:
    return {k: mem[k] for k in costmodel.MEMORY_PARTS}


# ---------------------------------------------------------------- human output

def _mib(b: float) -> str:
    return f"{b / 2**20:,.1f} MiB"


def _merged(segments: Sequence) -> list[dict]:
    """Consecutive segments with the same samples, density and frozen prefix, as one line."""
    out: list[dict] = []
    key = lambda r: (r["samples"], round(r["density"], 6), r["frozen_prefix"])
    for sg in segments:
        if out and key(out[-1]) == key(sg) and out[-1]["flops"]["spent"] == sg["flops"]["spent"]:
            out[-1] = dict(out[-1], end=sg["end"])
        else:
            out.append(sg)
    return out


def _format_blocks(plan: Projection) -> list[str]:
    """The freeze blocks with their parameters and dense forward FLOPs, so a split can be
    checked before training."""
    blocks = plan.get("blocks") or []
    model = plan["model"]
    out = [f"freeze blocks ({model.get('blocks_from', 'analytic')}): {len(blocks)}",
           f"  {'#':>3} {'block':<24}{'params':>12}{'fwd FLOPs':>12}{'of which attention/matmul':>27}{'layers':>8}"]
    for i, b in enumerate(blocks):
        extra = b.get("extra_flops", 0.0)
        out.append(f"  {i:>3} {b['name']:<24}{b['params']:>12,}{b['forward_flops']:>12.4g}"
                   f"{(f'{extra:.4g}' if extra else '-'):>27}{len(b['layers']):>8}")
    out += [f"warning: {w}" for w in model.get("warnings", [])]
    return out


def format_plan(plan: Projection) -> str:
    f, m, ds = plan["flops"], plan["memory"], plan["dataset"]
    dense = f["dense"] or 1.0
    lines = [
        f"model {plan['model']['name']} (width {plan['model']['width']:g}, {plan['model']['params']:,} params), "
        f"dataset {ds['name']} ({ds['train_size']:,} train, {ds['num_classes']} classes, {ds['image_size']} px)",
        f"forward FLOPs per sample (dense): {f['forward_dense_per_sample']:.4g}",
    ]
    lines += _format_blocks(plan)
    meth = plan.get("method") or {}
    if meth:
        lines.append(f"sparse training: {meth['name']}" + ("" if meth.get("exact", True) else
                     " (layer densities chosen from the data at the start: priced at the uniform split, an estimate)"))
        if meth.get("forward_range"):
            lo, hi = meth["forward_range"]
            dense_fwd = f["forward_dense_per_sample"]
            lines.append(f"  its masks' forward FLOPs per sample can lie anywhere from {lo:.4g} to {hi:.4g} "
                         f"({lo / dense_fwd:.2f}-{hi / dense_fwd:.2f} of dense); the ledger counts the real ones")
    lines += [
        "",
        f"{'training FLOPs':<22}{'FLOPs':>12}{'of dense':>10}",
        f"{'dense equivalent':<22}{f['dense']:>12.4g}{100.0:>9.1f}%",
    ]
    for k in SOURCES:
        lines.append(f"{'saved by ' + k:<22}{f['saved'][k]:>12.4g}{100 * f['saved'][k] / dense:>9.1f}%")
    for src, v in f.get("overhead", {}).items():
        if v:
            lines.append(f"{'overhead ' + src:<22}{v:>12.4g}{100 * v / dense:>9.1f}%")
    lines.append(f"{'spent':<22}{f['spent']:>12.4g}{100 * f['spent'] / dense:>9.1f}%")
    lines += ["", f"training memory ({m['bits']}-bit, batch {m['batch_size']}): peak {_mib(m['peak_bytes'])} "
                  f"(epoch {m['peak_epoch'] + 1}), average {_mib(m['average_bytes'])}, min {_mib(m['min_bytes'])}, "
                  f"dense {_mib(m['dense_bytes'])}"]
    fp = plan.get("freeze_plan")
    if fp:
        # epochs counted from 1, as the studio and the report show them (events count from 0;
        # freeze.start_epoch is the event index, so a given start names the field's value)
        how = (f"given: freeze.start_epoch={fp['start_epoch']}" if fp.get("start_given")
               else f"target {100 * fp['target']:.1f}%")
        lines.append(f"freeze plan: start epoch {fp['start_epoch'] + 1} ({how}), "
                     f"{saving_text(fp)}, {len(fp['freeze_epochs'])} blocks "
                     "(frozen from epoch): "
                     + ", ".join(f"{b}@{e + 1}" for b, e in fp["freeze_epochs"].items()))
        lines += [f"warning: {w}" for w in fp.get("warnings", [])]
        if fp.get("adaptive"):
            a = fp["adaptive"]
            lines.append(f"adaptive freezing: saves {100 * a['min_saving']:.1f}% (the deadlines above) to "
                         f"{100 * a['max_saving']:.1f}% (every freezable block stable as early as "
                         f"patience {a['patience']} allows); the run reports what it achieved")
    lines += ["", f"{'epochs':<10}{'samples':>10}{'density':>9}{'frozen':>8}{'FLOPs/epoch':>13}"]
    for r in _merged(plan["segments"]):
        a, b = r["start"] + 1, r["end"]          # counted from 1
        span = f"{a}" if a == b else f"{a}-{b}"
        lines.append(f"{span:<10}{r['samples']:>10,}{r['density']:>9.4f}{r['frozen_prefix']:>8}{r['flops']['spent']:>13.4g}")
    return "\n".join(lines)
