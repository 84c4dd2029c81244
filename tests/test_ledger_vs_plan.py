"""A finished run's ledger equals its projection: the real engine (CLI, subprocess) trains the
demo preset, shortened, with every technique on (MEST EM&S, single-shot freezing, circular
sieving) and its counted FLOPs must match engine.cost.projection.project within 0.5%, in total and
for every source of saving. Every sparse layer, frozen blocks included, ends at exactly its
target sparsity."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from engine.config import from_dict, load_preset
from engine.cost.arch import describe
from engine.cost.projection import project, target_densities
from engine.sparsity import schedule as dst_schedule
from engine.sparsity.masks import keep_count
from engine.training import checkpoint as ckpt

ROOT = Path(__file__).resolve().parent.parent
TOL = 0.005

# The demo preset (MEST EM&S 90%, 20% freeze, 20% circular sieve), shortened to seconds.
SHORTEN = ["name=ledger-check", "device=cpu", "epochs=6", "interval=1", "model.width=0.25",
           "data.image_size=16", "data.train_size=256", "data.test_size=64", "data.num_classes=4",
           "data.augment=false", "freeze.target=0.1", "sieve.ratio=0.25", "checkpoint.every=0"]
CONFIG = load_preset("demo", SHORTEN).to_dict()


@pytest.mark.slow
def test_counted_flops_match_the_projection(tmp_path):
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(CONFIG))
    out = subprocess.run([sys.executable, "-m", "engine", "run", "--config", str(cfg_path),
                          "--run-dir", str(tmp_path / "runs")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    events = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    finished = [e for e in events if e["event"] == "run_finished"]
    assert finished and finished[0]["status"] == "completed", out.stderr[-3000:]
    counted = finished[0]["flops"]

    projected = project(from_dict(CONFIG))["flops"]
    assert projected["saved"]["freeze"] > 0 and projected["saved"]["sieve"] > 0
    assert counted["spent"] == pytest.approx(projected["spent"], rel=TOL)
    assert counted["dense"] == pytest.approx(projected["dense"], rel=TOL)
    for source, value in projected["saved"].items():
        assert counted["saved"][source] == pytest.approx(value, rel=TOL), source
    # the demo measures the Section 3 analyses: their probe forwards are an overhead in both
    assert projected["overhead"]["analysis"] > 0
    assert counted["overhead"] == pytest.approx(projected["overhead"], rel=TOL)

    epochs = [e for e in events if e["event"] == "epoch_end"]
    assert len(epochs) == CONFIG["epochs"]
    assert sum(e["flops_epoch"]["spent"] for e in epochs) == pytest.approx(counted["spent"], rel=1e-9)
    assert epochs[-1]["flops"]["spent"] == pytest.approx(counted["spent"], rel=1e-12)
    started = next(e for e in events if e["event"] == "run_started")
    assert started["projected"]["flops"]["spent"] == pytest.approx(projected["spent"], rel=1e-12)

    # blocks froze during the mask search, above the target, and still end at the target
    cfg = from_dict(CONFIG)
    plan = project(cfg)["freeze_plan"]
    assert min(plan["freeze_epochs"].values()) < dst_schedule.boundaries(cfg)[1]
    assert any(l.get("reason") == "freeze" for e in events if e["event"] == "mask_update" for l in e["layers"])
    end = [e for e in events if e["event"] == "checkpoint" and e["reason"] == "end"][-1]
    state = ckpt.load(end["path"])
    masks = state["components"]["sparsifier"]["masks"]
    target = target_densities(cfg, describe(cfg.model, 4, 16))
    assert masks and {n: int(m.sum()) for n, m in masks.items()} == \
        {n: keep_count(m.numel(), target[n]) for n, m in masks.items()}
    weights = state["model"]
    assert all(int((weights[n + ".weight"] != 0).sum()) <= int(m.sum()) for n, m in masks.items())
