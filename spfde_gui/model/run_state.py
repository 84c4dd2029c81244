"""What the window says about the run in view, as plain functions of its RunModel (no Qt):
whether and why it cannot be resumed, the progress line inside an epoch, and when the run
should end."""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from engine.cost import wall_time
from spfde_gui.fmt import fmt_eta, fmt_rate
from spfde_gui.model.run_model import RunModel


def resume_blocker(m: RunModel | None, running: bool) -> str:
    """Why the run in view cannot be resumed ("" when it can)."""
    if running:
        return "An engine is running: stop it first."
    if m is None or m.run_dir is None:
        return "Open a stopped or crashed run to resume it."
    if m.status not in ("stopped", "crashed", "killed"):
        return f"This run is {m.status}: only a stopped, crashed or killed run can be resumed."
    # the engine's checkpoint folder (engine.training.checkpoint.checkpoint_dir, which imports torch)
    ck = Path(m.run_dir) / "checkpoints"
    if not (ck.is_dir() and any(ck.glob("*.pt"))):
        return (f"No checkpoint in {ck}: the engine ended before writing its first one, so there is "
                "nothing to resume from. Launch the run again instead.")
    return ""


def batch_progress_text(m: RunModel) -> str:
    """'batch 120/390 · 850 images/s · epoch ends in 40 s · run in 12 min', from the latest
    progress event; the run's ETA is ``finish_estimate``'s, else (before an epoch of this
    session has ended) the epochs left at this epoch's pace."""
    pr = m.progress
    if not pr or not pr.get("batches"):
        return ""
    batch, batches = int(pr.get("batch", 0)), int(pr["batches"])
    parts = [f"batch {batch}/{batches}"]
    ips = pr.get("images_per_s")
    if isinstance(ips, (int, float)) and ips > 0:
        parts.append(fmt_rate(ips))
        bs = ((m.config or {}).get("batch_size")) or 0
        samples = m.last("samples")
        per_epoch = samples if not math.isnan(samples) else batches * bs
        if per_epoch:
            left_epoch = max(0.0, (batches - batch) / batches) * per_epoch / ips
            parts.append(f"epoch ends in {fmt_eta(left_epoch)}")
            total = m.epochs_planned or 0
            later = max(0, total - (int(pr.get("epoch", 0)) + 1))
            est = finish_estimate(m)
            if est is not None:          # the plan's FLOPs to go at this session's pace
                parts.append(f"run ends in {fmt_eta(est['left_s'])}")
            elif later:
                # epoch_time (training only) when known: evaluation adds to it
                et = m.last("epoch_time")
                per = et if not math.isnan(et) and et > 0 else per_epoch / ips
                parts.append(f"run ends in {fmt_eta(left_epoch + later * per)}")
    return "  ·  ".join(parts)


def _executed(m: RunModel) -> np.ndarray:
    """The executed FLOPs (engine.cost.wall_time.executed_flops) after each epoch so far."""
    cols = [m.column(c) for c in ("flops_spent", "flops_dense", "saved_sparsity", "saved_freeze", "saved_sieve",
                                  "flops_overhead")]
    out = np.full(m.n_epochs, np.nan)
    for i in range(m.n_epochs):
        spent, dense, sp, fr, sv, over = (float(c[i]) if i < c.size else math.nan for c in cols)
        if math.isfinite(dense):
            nz = lambda v: v if math.isfinite(v) else 0.0        # noqa: E731
            out[i] = wall_time.executed_flops({"spent": nz(spent), "dense": dense, "overhead": {"all": nz(over)},
                                               "saved": {"sparsity": nz(sp), "freeze": nz(fr), "sieve": nz(sv)}})
    return out


def finish_estimate(m: RunModel, now: float | None = None) -> dict | None:
    """{started, ends, left_s, flops_per_s} of the running run in view: the plan's executed
    FLOPs still to go (freezing and sieving make later epochs cheaper, so not the epochs left)
    at the pace of this session's epochs since its first ended (start-up and warm-up out;
    with one epoch ended, from the session's start). None without a plan or an ended epoch
    in this session."""
    plan = (m.projected or {}).get("flops") if isinstance(m.projected, dict) else None
    if m.status != "running" or not isinstance(plan, dict) or not m.sessions:
        return None
    session_t = m.sessions[-1].get("time")
    t = m.column("time")
    done = _executed(m)
    rows = [i for i in range(min(t.size, done.size)) if math.isfinite(t[i]) and math.isfinite(done[i])
            and isinstance(session_t, (int, float)) and t[i] >= session_t]
    if not rows:
        return None
    last = rows[-1]
    if len(rows) >= 2:
        span, work = t[last] - t[rows[0]], done[last] - done[rows[0]]
    else:
        before = done[last - 1] if last >= 1 and math.isfinite(done[last - 1]) else 0.0
        span, work = t[last] - float(session_t), done[last] - before   # type: ignore[arg-type]
    if span <= 0 or work <= 0:
        return None
    rate = work / span
    ends = float(t[last]) + max(0.0, wall_time.executed_flops(plan) - float(done[last])) / rate
    now = time.time() if now is None else now
    timing = m.timing()
    return {"started": timing["first_start"], "ends": ends, "left_s": max(0.0, ends - now), "flops_per_s": rate}


def clock_text(est: dict | None) -> str:
    """'started 21:50 · ends about 21:54 (3 min left)' for the cost panel and the header."""
    if not est:
        return ""
    hm = lambda t: time.strftime("%H:%M", time.localtime(t))          # noqa: E731
    parts = [f"started {hm(est['started'])}"] if isinstance(est.get("started"), (int, float)) else []
    parts.append(f"ends about {hm(est['ends'])} ({fmt_eta(est['left_s'])} left)")
    return " · ".join(parts)
