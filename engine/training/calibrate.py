"""``spfde-train plan --calibrate``: a short measurement of this machine's speed for one
configuration (engine.cost.wall_time), when no run of it has recorded one yet.

The real engine trains a stand-in of the configuration for two short epochs in a temporary
folder: the same network, method, batch, image size, classes, precision, device and thread
policy, on synthetic data of ``CALIBRATION_BATCHES`` batches (plus a test pass of a fifth
of that), with freezing, sieving and the analyses off (they change how many FLOPs are
executed, not how fast). The rate is the second epoch's executed FLOPs over its training
and evaluation time, so the per-batch work of the engine (masks, bookkeeping, the test
pass) is in it, and the first epoch's warm-up is not. Data loading from disk is not: a
CIFAR or ImageFolder run's own recording, at its end, supersedes the calibration.
"""
from __future__ import annotations

import io
import json
import tempfile
import time
from pathlib import Path

from engine.cost import wall_time
from engine.data.sizes import dataset_sizes

CALIBRATION_BATCHES = 12


def calibration_config(cfg):
    """The stand-in configuration that is timed."""
    sizes = dataset_sizes(cfg)
    n = CALIBRATION_BATCHES * cfg.batch_size
    return cfg.replace(**{
        "name": "calibration", "epochs": 2, "interval": 1,
        "data.name": "synthetic", "data.root": None, "data.train_size": n,
        "data.test_size": max(cfg.batch_size, n // 5), "data.num_classes": sizes["num_classes"],
        "data.image_size": sizes["image_size"], "freeze.target": 0.0, "sieve.ratio": 0.0,
        "analysis.enabled": False, "checkpoint.every": 0, "trackers.tensorboard.enabled": False,
        "trackers.mlflow.enabled": False, "trackers.wandb.enabled": False})


def calibrate(cfg) -> dict:
    """Measure, record under ``cfg``'s key and return {flops_per_s, device, epoch_s, source}."""
    from engine.run.telemetry import Emitter
    from engine.training.trainer import Trainer
    stand_in = calibration_config(cfg)
    with tempfile.TemporaryDirectory(prefix="spfde-calibration-") as tmp:
        out = io.StringIO()
        trainer = Trainer(stand_in, Path(tmp), Emitter(Path(tmp), stream=out, progress_bar=False))
        trainer.throughput.primary = False       # recorded below, under the real configuration's key
        trainer.fit()
        device = trainer.device.type
    ends = [e for e in map(json.loads, out.getvalue().splitlines()) if e.get("event") == "epoch_end"]
    last = ends[-1]
    seconds = float(last["epoch_time"]) + float(last.get("eval_time") or 0.0)
    rate = wall_time.executed_flops(last["flops_epoch"]) / seconds
    source = f"calibration ({CALIBRATION_BATCHES} batches) on {time.strftime('%Y-%m-%d')}"
    wall_time.record(cfg, device, rate, source)
    return {"flops_per_s": rate, "device": device, "epoch_s": seconds, "source": source}
