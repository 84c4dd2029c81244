"""The budget search side by side on the demo (assets/searches/demo_budget.yaml), for the
same number of training epochs:

  (a) the search as shipped: TPE, cost-exact feasibility (over-budget points refused before
      training) and the median pruner;
  (b) the same TPE search without feasibility and pruning: every sampled point trains to
      the end, over budget or not (only a configuration error is refused);
  (c) random sampling, without feasibility or pruning.

For each: the epochs trained, the epochs spent on trials over the budget, the best test
accuracy found within the budget (an over-budget trial's accuracy does not count: it is
not an answer to the question), and the epochs after which it first reached (b)'s best.
Goal (issue 21): (a) spends 0 epochs over budget and reaches (b)'s best with at most half
of (b)'s epochs. The plain-MEST reference trial is off in all three (--reference turns it
on in all three), so only the search mechanics differ.

    python benchmarks/bench_search.py [--epochs 24] [--seeds 0] [--out DIR]
"""
from __future__ import annotations

import argparse
import copy
import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)

from engine.search import spec as spec_mod  # noqa: E402
from engine.search import study as study_mod  # noqa: E402
from engine.sweep import manifest as manifest_mod  # noqa: E402
from engine.sweep import state as state_mod  # noqa: E402

VARIANTS = {"a: feasibility+pruning": {"sampler": "tpe", "pruner": "median", "feasibility": True},
            "b: no feasibility/pruning": {"sampler": "tpe", "pruner": "none", "feasibility": False},
            "c: random sampling": {"sampler": "random", "pruner": "none", "feasibility": False}}


def epochs_of(folder: Path, cells: list[str]) -> int:
    m = manifest_mod.read(folder)
    n = 0
    for c in m.cells:
        if c.name in cells:
            for rd in state_mod.run_dirs(folder, c):
                n += len({e.get("epoch") for e in manifest_mod.read_jsonl(rd / "events.jsonl")
                          if e.get("event") == "epoch_end"})
    return n


def run_variant(label: str, v: dict, cap: int, seed: int, parent: Path, reference: bool) -> dict:
    raw = copy.deepcopy(spec_mod.load(spec_mod.SEARCHES_DIR / "demo_budget.yaml").raw)
    raw.update(name=f"bench-{label[0]}-s{seed}", sampler=v["sampler"], pruner=v["pruner"], reference=reference)
    spec = spec_mod.parse(raw, None, spec_mod.SEARCHES_DIR)
    folder = study_mod.folder_for(spec, parent)
    spent, t0 = 0, time.monotonic()
    search = None
    for k in range(1, 200):                 # one more trial at a time until the epoch cap
        spec.trials = k
        search = study_mod.Search(spec, folder, out=io.StringIO(), seed=seed, feasibility_on=v["feasibility"])
        search.run()
        spent = sum(epochs_of(folder, t.user_attrs.get("cells", [])) for t in search.study.trials)
        if spent >= cap or search.trained_count() < k:
            break
    assert search is not None
    timeline, total, best, over_epochs = [], 0, None, 0
    for t in sorted(search.study.trials, key=lambda t: t.number):
        cells = t.user_attrs.get("cells", [])
        if not cells:
            continue
        e = epochs_of(folder, cells)
        total += e
        over = float(t.user_attrs.get("over_budget", 0.0) or 0.0) > 0
        if over:
            over_epochs += e
        elif t.values and t.state.name == "COMPLETE":
            best = max(best or 0.0, t.values[0])
        timeline.append((total, best))
    return {"label": label, "epochs": total, "over_epochs": over_epochs, "best": best, "timeline": timeline,
            "trials": len([t for t in search.study.trials if t.user_attrs.get("cells")]),
            "refused": len([t for t in search.study.trials if t.user_attrs.get("infeasible")]),
            "pruned": len([t for t in search.study.trials if t.user_attrs.get("pruned_epoch") is not None]),
            "wall": time.monotonic() - t0}


def epochs_to_reach(timeline: list, target: float | None) -> int | None:
    if target is None:
        return None
    for total, best in timeline:
        if best is not None and best >= target - 1e-12:
            return total
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=24, help="training epochs each variant may spend (default 24)")
    ap.add_argument("--seeds", default="0", help="sampler seeds, comma-separated (default 0)")
    ap.add_argument("--reference", action="store_true", help="queue the plain-MEST reference trial in all three")
    ap.add_argument("--out", help="keep the study folders here (default: a temporary folder)")
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    parent = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_search_"))
    for seed in [int(s) for s in args.seeds.split(",")]:
        res = [run_variant(label, v, args.epochs, seed, parent, args.reference) for label, v in VARIANTS.items()]
        target = res[1]["best"]
        print(f"\nsampler seed {seed}, epoch cap {args.epochs} (demo_budget: 3 epochs a trial, budget 13% of dense)")
        print(f"{'variant':28s} {'epochs':>6s} {'over budget':>11s} {'trials':>6s} {'refused':>7s} {'pruned':>6s} "
              f"{'best in budget':>14s} {'epochs to b best':>16s} {'wall s':>7s}")
        for r in res:
            reach = epochs_to_reach(r["timeline"], target)
            best = f"{100 * r['best']:.2f}%" if r["best"] is not None else "-"
            print(f"{r['label']:28s} {r['epochs']:6d} {r['over_epochs']:11d} {r['trials']:6d} {r['refused']:7d} "
                  f"{r['pruned']:6d} {best:>14s} {str(reach) if reach is not None else 'never':>16s} "
                  f"{r['wall']:7.0f}")
        a_reach = epochs_to_reach(res[0]["timeline"], target)
        if a_reach is not None and res[1]["epochs"]:
            print(f"(a) reached (b)'s best after {a_reach} epochs = {a_reach / res[1]['epochs']:.2f} of (b)'s "
                  f"{res[1]['epochs']} (goal <= 0.5); (a) over-budget epochs: {res[0]['over_epochs']} (goal 0)")
        else:
            print(f"(a) did not reach (b)'s best within {args.epochs} epochs; (a) over-budget epochs: "
                  f"{res[0]['over_epochs']} (goal 0)")
    print(f"\nload average at end: {os.getloadavg()}; study folders under {parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
