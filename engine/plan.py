"""Project a whole run epoch by epoch, without torch and without the data: training FLOPs
(spent, dense equivalent, saved by sparsity / freezing / sieving), training memory and the
freeze plan. ``spfde-train plan``, the GUI's live preview and ``run_started.projected``.

The ledger decomposition (docs/cost-model.md), per epoch, with N the full training set,
n the samples trained, F_dense / F_sparse the forward FLOPs per sample dense / at the
epoch's densities and F_frozen the forward FLOPs of the frozen leading blocks:

    dense    = N x 3 x F_dense
    sparsity = N x 3 x (F_dense - F_sparse)
    sieve    = (N - n) x 3 x F_sparse
    freeze   = n x 2 x F_frozen
    spent    = dense - sparsity - sieve - freeze = n x (3 F_sparse - 2 F_frozen)

engine.ledger applies the same formulas to what a run actually did.
"""
from __future__ import annotations

from engine import arch as arch_mod
from engine import costmodel, dst_schedule
from engine.config import ConfigError, RunConfig, sieve_oneshot_epoch
from engine.analysis import schedule as analysis_schedule
from engine.datasets_info import dataset_sizes

SOURCES = ("sparsity", "freeze", "sieve")
MEMORY_BITS = 32


def epoch_flops(train_size: int, samples: int, f_dense: float, f_sparse: float, f_frozen: float) -> dict:
    """One epoch's ledger entry (the formulas in the module docstring)."""
    dense = train_size * 3.0 * f_dense
    saved = {
        "sparsity": train_size * 3.0 * (f_dense - f_sparse),
        "freeze": samples * 2.0 * f_frozen,
        "sieve": (train_size - samples) * 3.0 * f_sparse,
    }
    return {"spent": dense - sum(saved.values()), "dense": dense, "saved": saved}


def add_flops(total: dict, part: dict) -> dict:
    over_t, over_p = total.get("overhead", {}), part.get("overhead", {})
    return {"spent": total["spent"] + part["spent"], "dense": total["dense"] + part["dense"],
            "saved": {k: total["saved"][k] + part["saved"][k] for k in SOURCES},
            "overhead": {k: over_t.get(k, 0.0) + over_p.get(k, 0.0) for k in sorted({*over_t, *over_p})}}


def zero_flops() -> dict:
    return {"spent": 0.0, "dense": 0.0, "saved": {k: 0.0 for k in SOURCES}, "overhead": {}}


def with_overhead(entry: dict, overhead: dict) -> dict:
    """An epoch entry plus FLOPs spent on top of the training itself, by source (e.g.
    ``analysis``): they add to ``spent``, never to ``dense`` or the savings."""
    merged = dict(entry.get("overhead", {}))
    extra = 0.0
    for k, v in overhead.items():
        if v:
            merged[k] = merged.get(k, 0.0) + float(v)
            extra += float(v)
    return {**entry, "spent": entry["spent"] + extra, "overhead": merged}


def samples_per_epoch(cfg: RunConfig, train_size: int) -> list[int]:
    removed = int(round(cfg.sieve.ratio * train_size))
    if cfg.sieve.ratio <= 0:
        return [train_size] * cfg.epochs
    if cfg.sieve.mode == "oneshot":
        at = sieve_oneshot_epoch(cfg)
        return [train_size if e < at else train_size - removed for e in range(cfg.epochs)]
    return [train_size - removed] * cfg.epochs


def describe_run(cfg: RunConfig) -> tuple[dict, "arch_mod.Arch"]:
    """(dataset sizes, architecture) of a configuration, or a ConfigError."""
    sizes = dataset_sizes(cfg)
    return sizes, arch_mod.describe(cfg.model, sizes["num_classes"], sizes["image_size"])


def _scheduled(cfg: RunConfig, arch) -> list[dict]:
    """Layer densities the schedule prescribes at each epoch (ignoring freezing)."""
    specs = arch.layer_specs()
    by_sparsity: dict[float, dict] = {}
    out = []
    for e in range(cfg.epochs):
        s = dst_schedule.training_sparsity(cfg, e)
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


def _with_frozen_masks(cfg: RunConfig, arch, scheduled: list[dict], prefix: list[int]) -> list[dict]:
    """Densities the run trains at: masks change only at mask-update epochs; a block entering
    the frozen prefix is pruned to its target densities (never regrown) and skips updates
    while frozen; unfrozen again, it keeps the target until the next update reaches it."""
    target = target_densities(cfg, arch) if cfg.sparsity.target > 0 else {}
    out: list[dict] = []
    cur: dict = {}
    for e in range(cfg.epochs):
        p = prefix[e]
        if e == 0:
            cur = dict(scheduled[0])
        elif dst_schedule.mask_update(cfg, e) is not None:
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


def _plan_freeze(cfg: RunConfig, arch, scheduled: list[dict], samples: list[int]) -> dict | None:
    if cfg.freeze.target <= 0:
        return None
    from engine.freeze_plan import plan_freeze  # only when freezing is on
    fwd = [costmodel.block_forward_flops(arch, d) for d in scheduled]
    at_target = costmodel.block_forward_flops(arch, target_densities(cfg, arch)) \
        if cfg.sparsity.target > 0 else None
    try:
        return plan_freeze(cfg, arch.block_names, fwd, samples,
                           block_layers=[len(b.layers) for b in arch.blocks],
                           frozen_block_fwd_flops=at_target)
    except ValueError as exc:
        raise ConfigError([("freeze.target", str(exc))]) from None


def _check_sieve(cfg: RunConfig, train_size: int) -> None:
    """Sieve settings that would silently do nothing on this dataset are errors."""
    if cfg.sieve.ratio <= 0:
        return
    removed = int(round(cfg.sieve.ratio * train_size))
    if removed < 1:
        raise ConfigError([("sieve.ratio", f"{cfg.sieve.ratio:g} of {train_size} training samples rounds to 0 "
                            f"removed; use at least {1 / train_size:.2g} or 0 to switch sieving off")])
    if removed >= train_size:
        raise ConfigError([("sieve.ratio", f"{cfg.sieve.ratio:g} removes all {train_size} training samples")])
    if cfg.sieve.mode == "circular" and int(round(cfg.sieve.update_ratio * removed)) < 1:
        raise ConfigError([("sieve.update_ratio", f"{cfg.sieve.update_ratio:g} of the {removed} removed samples "
                            f"rounds to 0 swapped per update, so the removed samples would never return; "
                            f"use at least {0.5 / removed:.2g}")])


def project(cfg: RunConfig) -> dict:
    """The whole run projected epoch by epoch (see the module docstring)."""
    sizes, arch = describe_run(cfg)
    n_train = sizes["train_size"]
    _check_sieve(cfg, n_train)
    samples = samples_per_epoch(cfg, n_train)
    scheduled = _scheduled(cfg, arch)
    fplan = _plan_freeze(cfg, arch, scheduled, samples)
    prefix = list(fplan["frozen_prefix"]) if fplan else [0] * cfg.epochs
    densities = _with_frozen_masks(cfg, arch, scheduled, prefix)

    f_dense = arch.forward_flops_dense
    dense_mem = costmodel.memory(arch, {}, 0, cfg.batch_size, MEMORY_BITS)
    total = zero_flops()
    rows, mems = [], []
    for e in range(cfg.epochs):
        blocks = costmodel.block_forward_flops(arch, densities[e])
        fl = epoch_flops(n_train, samples[e], f_dense, sum(blocks), sum(blocks[:prefix[e]]))
        fl = with_overhead(fl, {analysis_schedule.SOURCE: analysis_schedule.probe_flops(cfg, n_train, e, sum(blocks))})
        total = add_flops(total, fl)
        mem = costmodel.memory(arch, densities[e], prefix[e], cfg.batch_size, MEMORY_BITS)
        mems.append(mem)
        rows.append({"epoch": e, "samples": samples[e], "density": overall_density(arch, densities[e]),
                     "training_sparsity": dst_schedule.training_sparsity(cfg, e),
                     "frozen_prefix": prefix[e], "flops": fl, "memory_bytes": mem["total"]})

    peak = max(range(cfg.epochs), key=lambda e: mems[e]["total"])
    low = min(range(cfg.epochs), key=lambda e: mems[e]["total"])
    dense_block = costmodel.block_forward_flops(arch, {})
    return {
        "model": {"name": arch.model, "width": arch.width, "params": arch.params},
        "dataset": sizes,
        "epochs": rows,
        "blocks": [{"name": b.name, "params": b.params, "forward_flops": dense_block[b.index],
                    "layers": list(b.layers)} for b in arch.blocks],
        "freeze_plan": fplan,
        "flops": {
            "total": total["spent"], "dense": total["dense"], "saved": total["saved"],
            "overhead": total["overhead"],
            "forward_dense_per_sample": f_dense,
        },
        "memory": {
            "bits": MEMORY_BITS, "batch_size": cfg.batch_size,
            "peak_bytes": mems[peak]["total"], "peak_epoch": peak,
            "min_bytes": mems[low]["total"], "min_epoch": low,
            "average_bytes": sum(m["total"] for m in mems) / len(mems),
            "dense_bytes": dense_mem["total"],
            "by_part": {"peak": _parts(mems[peak]), "min": _parts(mems[low]), "dense": _parts(dense_mem)},
        },
    }


def _parts(mem: dict) -> dict:
    return {k: mem[k] for k in costmodel.MEMORY_PARTS}


# ---------------------------------------------------------------- human output

def _mib(b: float) -> str:
    return f"{b / 2**20:,.1f} MiB"


def _segments(rows: list[dict]) -> list[tuple[int, int]]:
    """Runs of consecutive epochs with the same samples, density and frozen prefix."""
    out, start = [], 0
    key = lambda r: (r["samples"], round(r["density"], 6), r["frozen_prefix"])
    for i in range(1, len(rows) + 1):
        if i == len(rows) or key(rows[i]) != key(rows[start]):
            out.append((start, i - 1))
            start = i
    return out


def format_plan(plan: dict) -> str:
    f, m, ds = plan["flops"], plan["memory"], plan["dataset"]
    dense = f["dense"] or 1.0
    lines = [
        f"model {plan['model']['name']} (width {plan['model']['width']:g}, {plan['model']['params']:,} params), "
        f"dataset {ds['name']} ({ds['train_size']:,} train, {ds['num_classes']} classes, {ds['image_size']} px)",
        f"forward FLOPs per sample (dense): {f['forward_dense_per_sample']:.4g}",
        "",
        f"{'training FLOPs':<22}{'FLOPs':>12}{'of dense':>10}",
        f"{'dense equivalent':<22}{f['dense']:>12.4g}{100.0:>9.1f}%",
    ]
    for k in SOURCES:
        lines.append(f"{'saved by ' + k:<22}{f['saved'][k]:>12.4g}{100 * f['saved'][k] / dense:>9.1f}%")
    for k, v in f.get("overhead", {}).items():
        lines.append(f"{'overhead ' + k:<22}{v:>12.4g}{100 * v / dense:>9.1f}%")
    lines.append(f"{'spent':<22}{f['total']:>12.4g}{100 * f['total'] / dense:>9.1f}%")
    lines += ["", f"training memory ({m['bits']}-bit, batch {m['batch_size']}): peak {_mib(m['peak_bytes'])} "
                  f"(epoch {m['peak_epoch']}), average {_mib(m['average_bytes'])}, min {_mib(m['min_bytes'])}, "
                  f"dense {_mib(m['dense_bytes'])}"]
    fp = plan.get("freeze_plan")
    if fp:
        lines.append(f"freeze plan: start epoch {fp['start_epoch']}, target {100 * fp['target']:.1f}%, "
                     f"achieved {100 * fp['achieved']:.1f}%, {len(fp['freeze_epochs'])} blocks: "
                     + ", ".join(f"{b}@{e}" for b, e in fp["freeze_epochs"].items()))
        if fp.get("adaptive"):
            a = fp["adaptive"]
            lines.append(f"adaptive freezing: saves {100 * a['min_saving']:.1f}% (the deadlines above) to "
                         f"{100 * a['max_saving']:.1f}% (every freezable block stable as early as "
                         f"patience {a['patience']} allows); the run reports what it achieved")
    lines += ["", f"{'epochs':<10}{'samples':>10}{'density':>9}{'frozen':>8}{'FLOPs/epoch':>13}"]
    rows = plan["epochs"]
    for a, b in _segments(rows):
        r = rows[a]
        span = f"{a}" if a == b else f"{a}-{b}"
        lines.append(f"{span:<10}{r['samples']:>10,}{r['density']:>9.4f}{r['frozen_prefix']:>8}{r['flops']['spent']:>13.4g}")
    return "\n".join(lines)
