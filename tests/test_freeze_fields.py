"""Paper-exact freezing: freeze.start_epoch sets t_frz, freeze.blocks the number of
freezing blocks, freeze.prune_frozen whether a freezing block is pruned to the target."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from engine.config import ConfigError, from_dict, load_preset
from engine.cost import projection as plan_mod

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["device=cpu", "epochs=8", "interval=1", "model.width=0.25", "data.image_size=8",
         "data.train_size=64", "data.test_size=16", "data.num_classes=4", "data.augment=false",
         "sieve.ratio=0", "checkpoint.every=0", "batch_size=16"]


def cfg(*extra):
    return load_preset("demo", SMALL + list(extra))


def test_start_epoch_and_blocks_set_the_plan_directly():
    p = plan_mod.project(cfg("freeze.target=0", "freeze.start_epoch=3", "freeze.blocks=2"))
    fp = p["freeze_plan"]
    assert fp["start_given"] and fp["start_epoch"] == 3
    assert fp["frozen_prefix"] == [0, 0, 0, 1, 2, 2, 2, 2]
    assert fp["achieved"] > 0 and p["flops"]["saved"]["freeze"] > 0
    # printed counted from 1, as the studio shows it; the given field keeps its own value
    assert "start epoch 4 (given: freeze.start_epoch=3)" in plan_mod.format_plan(p)
    # without blocks: every block within layer_fraction freezes, one per interval
    fp2 = plan_mod.project(cfg("freeze.target=0", "freeze.start_epoch=3"))["freeze_plan"]
    assert fp2["frozen_prefix"][3:5] == [1, 2] and max(fp2["frozen_prefix"]) >= 2
    # freezing stays off without a target or a start epoch
    assert plan_mod.project(cfg("freeze.target=0"))["freeze_plan"] is None


def test_prune_frozen_false_keeps_the_mask_it_froze_with():
    # under MEST EM&S blocks freeze above the target density (soft bound): pruning them saves
    # sparsity FLOPs; keeping the mask saves fewer, but freezing the denser blocks saves more
    on = plan_mod.project(cfg("freeze.target=0", "freeze.start_epoch=2", "sparsity.target=0.8"))
    off = plan_mod.project(cfg("freeze.target=0", "freeze.start_epoch=2", "sparsity.target=0.8",
                               "freeze.prune_frozen=false"))
    assert not off["freeze_plan"]["prune_frozen"] and on["freeze_plan"]["prune_frozen"]
    assert off["flops"]["saved"]["sparsity"] < on["flops"]["saved"]["sparsity"]
    assert off["flops"]["saved"]["freeze"] > on["flops"]["saved"]["freeze"]


@pytest.mark.parametrize("extra, fld", [
    (["freeze.start_epoch=8"], "freeze.start_epoch"),
    (["freeze.start_epoch=-1"], "freeze.start_epoch"),
    (["freeze.start_epoch=2", "freeze.blocks=0"], "freeze.blocks"),
    (["freeze.start_epoch=2", "freeze.blocks=99"], "freeze.blocks"),
    (["freeze.prune_frozen=maybe"], "freeze.prune_frozen"),
])
def test_bad_freeze_fields_are_named(extra, fld):
    with pytest.raises(ConfigError) as ei:
        plan_mod.project(cfg(*extra))
    assert fld in dict(ei.value.errors), ei.value.errors


@pytest.mark.slow
def test_run_with_paper_fields_counts_what_the_plan_projects(tmp_path):
    c = cfg("freeze.target=0", "freeze.start_epoch=2", "freeze.blocks=3", "freeze.prune_frozen=false",
            "sparsity.target=0.8", "epochs=5", "name=paper-freeze").to_dict()
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(c))
    out = subprocess.run([sys.executable, "-m", "engine", "run", "--config", str(p), "--run-dir", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    evs = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
    counted = next(e for e in evs if e["event"] == "run_finished")["flops"]
    projected = plan_mod.project(from_dict(c))["flops"]
    assert counted["saved"]["freeze"] == pytest.approx(projected["saved"]["freeze"], rel=1e-9)
    assert counted["spent"] == pytest.approx(projected["spent"], rel=1e-9)
    assert [e["block_index"] for e in evs if e["event"] == "freeze"] == [0, 1, 2]
    # no block was pruned on freezing
    assert not [e for e in evs if e["event"] == "mask_update" and e.get("reason") == "freeze"]
