"""What the window says about the run in view, as plain functions of its RunModel (no Qt):
whether and why it cannot be resumed, and the progress line inside an epoch."""
from __future__ import annotations

import math
from pathlib import Path

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
    progress event; the run's ETA counts the epochs left at this epoch's pace."""
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
            if later:
                # epoch_time (training only) when known: evaluation adds to it
                et = m.last("epoch_time")
                per = et if not math.isnan(et) and et > 0 else per_epoch / ips
                parts.append(f"run ends in {fmt_eta(left_epoch + later * per)}")
    return "  ·  ".join(parts)
