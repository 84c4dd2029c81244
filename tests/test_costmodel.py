"""The cost model and the planner: the paper's FLOPs figures, the ledger decomposition,
memory, dataset sizes and clear errors. Pure Python (no torch)."""
import time

import pytest

from engine.config import ConfigError, ModelConfig, from_dict, sieve_oneshot_epoch
from engine.cost import arch as arch_mod
from engine.cost import costmodel
from engine.cost import projection as plan_mod
from engine.cost.projection import format_plan, project
from engine.data.sizes import dataset_sizes
from engine.sparsity import schedule as dst_schedule

# The paper's setting: 2x ResNet-32, CIFAR-100 (50,000 images), 160 epochs, interval 5.
PAPER = {"epochs": 160, "interval": 5, "model": {"name": "resnet32", "width": 2},
         "data": {"name": "cifar100", "root": "/nonexistent/cifar100"}}


def paper_cfg(sparsity=None, **sections):
    d = dict(PAPER)
    d["sparsity"] = sparsity if sparsity is not None else {"target": 0.0}
    d.update(sections)
    return from_dict(d)


def close(value, expected, rel=0.02):
    return abs(value - expected) <= rel * expected


def test_dense_paper_figures():
    p = project(paper_cfg())
    assert close(p["flops"]["forward_dense_per_sample"], 5.512e8)
    assert close(p["flops"]["dense"], 1.323e16)
    assert close(p["flops"]["spent"], 1.323e16)
    assert all(v == 0 for v in p["flops"]["saved"].values())


@pytest.mark.parametrize("s, expected", [(0.90, 1.32e15), (0.95, 0.66e15), (0.98, 0.26e15)])
def test_static_uniform_on_every_layer(s, expected):
    p = project(paper_cfg({"target": s, "algorithm": "static", "dense_layers": []}))
    assert close(p["flops"]["spent"], expected), p["flops"]["spent"]
    # masks keep whole weights, so a layer's density is 1-s up to half a weight (< 0.1% here)
    assert close(p["flops"]["saved"]["sparsity"], p["flops"]["dense"] * s, rel=1e-3)


def test_mest_ems_without_data_efficiency():
    p = project(paper_cfg({"target": 0.9, "algorithm": "mest_ems", "dense_layers": []}))
    assert close(p["flops"]["spent"], 1.757e15), p["flops"]["spent"]
    # EM&S trains at the soft bound s-0.05, then s-0.025, then s (ALGORITHMS.md section 1).
    assert [round(p["epochs"][e]["training_sparsity"], 6) for e in (0, 89, 90, 119, 120, 159)] == \
        [0.85, 0.85, 0.875, 0.875, 0.9, 0.9]


@pytest.mark.parametrize("s, expected", [(0.90, 1.54e15), (0.95, 0.96e15)])
def test_mest_with_oneshot_data_efficiency(s, expected):
    # MEST's one-shot removal of 12,000 of 50,000 images at epoch 70.
    p = project(paper_cfg({"target": s, "dense_layers": []}, sieve={"ratio": 0.24, "mode": "oneshot"}))
    assert close(p["flops"]["spent"], expected), p["flops"]["spent"]
    assert p["epochs"][69]["samples"] == 50000 and p["epochs"][70]["samples"] == 38000


def test_resnet50_dense_inference_flops():
    a = arch_mod.describe(ModelConfig("resnet50", 1.0), 1000, 224)
    assert close(a.forward_flops_dense, 8.2e9)
    assert len(a.layers) == 54 and len(a.blocks) == 18
    # v1.5: the stride sits on the 3x3 conv of the first bottleneck of a stage.
    assert a.layer_by_name["layer2.0.conv2"].stride == 2 and a.layer_by_name["layer2.0.conv1"].stride == 1
    assert a.layer_by_name["layer4.2.conv3"].out_hw == (7, 7)


def _combined_cfg(**over):
    sections = {"freeze": {"target": 0.2}, "sieve": {"ratio": 0.2}}
    sections.update(over)
    return paper_cfg({"target": 0.9}, **sections)


def test_savings_add_up_per_epoch_and_in_total():
    p = project(_combined_cfg())
    f = p["flops"]
    saved = f["saved"]
    assert all(saved[k] > 0 for k in ("sparsity", "freeze", "sieve"))
    assert f["spent"] == pytest.approx(f["dense"] - sum(saved.values()), rel=1e-12)
    for key in ("spent", "dense"):
        assert sum(r["flops"][key] for r in p["epochs"]) == pytest.approx(f[key], rel=1e-12)
    for k in saved:
        assert sum(r["flops"]["saved"][k] for r in p["epochs"]) == pytest.approx(saved[k], rel=1e-12)
    # Every epoch's spent equals samples x (3 F_sparse - 2 F_frozen) computed independently.
    a = arch_mod.describe(ModelConfig("resnet32", 2.0), 100, 32)
    r = p["epochs"][-1]
    blocks = costmodel.block_forward_flops(a, _final_densities(p, a))
    expect = r["samples"] * (3 * sum(blocks) - 2 * sum(blocks[:r["frozen_prefix"]]))
    assert r["flops"]["spent"] == pytest.approx(expect, rel=1e-9)


def _final_densities(p, a):
    cfg = _combined_cfg()
    sched = plan_mod._scheduled(cfg, a)
    return plan_mod._with_frozen_masks(cfg, a, sched, [r["frozen_prefix"] for r in p["epochs"]])[-1]


@pytest.mark.parametrize("algorithm", ["mest_em", "static"])
def test_freeze_saving_meets_the_target(algorithm):
    # Densities constant over the run: the planner's and the projection's prices agree.
    p = project(paper_cfg({"target": 0.9, "algorithm": algorithm}, freeze={"target": 0.15}))
    fp = p["freeze_plan"]
    assert fp is not None and fp["start_epoch"] > 0
    assert p["epochs"][0]["frozen_prefix"] == 0 and p["epochs"][-1]["frozen_prefix"] == len(fp["freeze_epochs"])
    no_freeze = project(paper_cfg({"target": 0.9, "algorithm": algorithm}))
    assert 1 - p["flops"]["spent"] / no_freeze["flops"]["spent"] == pytest.approx(0.15, abs=0.005)
    assert p["flops"]["saved"]["freeze"] == pytest.approx(no_freeze["flops"]["spent"] - p["flops"]["spent"], rel=1e-9)
    assert p["flops"]["saved"]["sieve"] == 0


def test_frozen_block_is_pruned_to_target_then_keeps_its_mask():
    cfg = paper_cfg({"target": 0.9}, freeze={"target": 0.2})
    a = arch_mod.describe(cfg.model, 100, 32)
    p = project(cfg)
    prefix = [r["frozen_prefix"] for r in p["epochs"]]
    dens = plan_mod._with_frozen_masks(cfg, a, plan_mod._scheduled(cfg, a), prefix)
    first = a.layer_by_name["layer1.0.conv1"]
    at = next(e for e, k in enumerate(prefix) if k > first.block)
    assert at < 90    # freezes in the first search segment, at the soft-bound density
    # (densities are exact mask counts: within half a weight of the nominal value)
    assert dens[at - 1][first.name] == pytest.approx(0.15, abs=1e-4)
    # pruned to the target as it freezes, and kept there through the later updates
    assert all(d[first.name] == pytest.approx(0.10, abs=1e-4) for d in dens[at:])
    assert dens[90]["layer3.4.conv2"] == pytest.approx(0.125, abs=1e-4)   # a training block follows the schedule
    assert dens[-1] == plan_mod.target_densities(cfg, a)        # every layer ends at the target


def test_unfrozen_block_keeps_the_target_until_the_next_update():
    cfg = paper_cfg({"target": 0.9}, freeze={"target": 0.1, "scheme": "periodic"})
    a = arch_mod.describe(cfg.model, 100, 32)
    prefix = [r["frozen_prefix"] for r in project(cfg)["epochs"]]
    sched = plan_mod._scheduled(cfg, a)
    dens = plan_mod._with_frozen_masks(cfg, a, sched, prefix)
    layer = a.layer_by_name["layer1.0.conv1"]
    unfrozen = [e for e in range(1, 80) if prefix[e - 1] > layer.block >= prefix[e]]
    quiet = [e for e in unfrozen if dst_schedule.mask_update(cfg, e) is None]
    updated = [e for e in unfrozen if dst_schedule.mask_update(cfg, e) is not None]
    assert quiet and updated
    assert all(dens[e][layer.name] == pytest.approx(0.10, abs=1e-4) for e in quiet)
    assert all(dens[e][layer.name] == pytest.approx(sched[e][layer.name]) == pytest.approx(0.15, abs=1e-4)
               for e in updated)


def test_sieve_samples_per_epoch():
    circ = project(paper_cfg({"target": 0.9}, sieve={"ratio": 0.2}))
    assert {r["samples"] for r in circ["epochs"]} == {40000}
    cfg = paper_cfg({"target": 0.9}, sieve={"ratio": 0.2, "mode": "oneshot"})
    one = project(cfg)
    at = sieve_oneshot_epoch(cfg)
    assert [r["samples"] for r in one["epochs"]] == [50000] * at + [40000] * (160 - at)


def test_memory_ordering_and_frozen_blocks():
    p = project(_combined_cfg())
    m = p["memory"]
    assert m["min_bytes"] < m["average_bytes"] < m["peak_bytes"] < m["dense_bytes"]
    a = arch_mod.describe(ModelConfig("resnet32", 2.0), 100, 32)
    dens = {l.name: 0.1 for l in a.layers}
    live = costmodel.memory(a, dens, 0, 64)
    frozen = costmodel.memory(a, dens, 6, 64)
    assert frozen["weights"] == live["weights"]        # frozen weights are still stored
    assert frozen["weight_grads"] < live["weight_grads"]
    assert frozen["activations"] < live["activations"]
    dense = costmodel.memory(a, {}, 0, 64)
    assert live["weights"] < 0.2 * dense["weights"]    # values + 16-bit indices at 10%
    assert dense["activations"] == live["activations"]  # activations do not shrink with weights
    assert costmodel.memory(a, dens, 0, 128)["activations"] == pytest.approx(2 * live["activations"])


def test_sparse_weight_storage_is_never_larger_than_dense():
    a = arch_mod.describe(ModelConfig("resnet20", 1.0), 10, 32)
    l = a.layer_by_name["layer1.0.conv1"]
    assert costmodel.weight_bytes(l, 0.95) == costmodel.weight_bytes(l, 1.0) == l.params * 4
    assert costmodel.weight_bytes(l, 0.1) < costmodel.weight_bytes(l, 1.0)


def test_resnet50_plan_is_fast():
    cfg = from_dict({"epochs": 150, "interval": 2, "model": {"name": "resnet50"},
                     "data": {"name": "imagefolder", "root": "/nonexistent/imagenet", "image_size": 224},
                     "sparsity": {"target": 0.8}, "freeze": {"target": 0.2}, "sieve": {"ratio": 0.2}})
    t0 = time.perf_counter()
    p = project(cfg)
    print(f"\nResNet-50 150-epoch plan: {1000 * (time.perf_counter() - t0):.1f} ms")
    assert p["dataset"]["train_size"] == 1281167 and len(p["epochs"]) == 150
    assert p["flops"]["spent"] < p["flops"]["dense"]
    text = format_plan(p)
    assert "saved by freeze" in text and "freeze plan" in text


def test_unknown_dataset_size_is_a_clear_error(tmp_path):
    cfg = from_dict({"data": {"name": "imagefolder", "root": str(tmp_path / "mydata")}})
    with pytest.raises(ConfigError) as err:
        project(cfg)
    assert err.value.errors[0][0] == "data.root" and "unknown size" in str(err.value)


def test_imagefolder_is_counted(tmp_path):
    for split, n in (("train", 3), ("val", 1)):
        for cls in ("cat", "dog"):
            d = tmp_path / "ds" / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                (d / f"{i}.JPEG").write_bytes(b"")
            (d / "notes.txt").write_text("not an image")
    (tmp_path / "ds" / "train" / "empty").mkdir()
    cfg = from_dict({"data": {"name": "imagefolder", "root": str(tmp_path / "ds"), "image_size": 16}})
    assert dataset_sizes(cfg) == {"name": "imagefolder", "train_size": 6, "test_size": 2,
                                  "num_classes": 3, "image_size": 16}


def test_synthetic_uses_configured_sizes():
    cfg = from_dict({"data": {"name": "synthetic", "train_size": 300, "test_size": 50, "num_classes": 4}})
    p = project(cfg)
    assert p["dataset"]["train_size"] == 300 and p["dataset"]["num_classes"] == 4
    assert p["flops"]["dense"] == pytest.approx(300 * 3 * p["flops"]["forward_dense_per_sample"] * cfg.epochs)


def test_bad_layer_name_is_a_config_error():
    with pytest.raises(ConfigError) as err:
        project(from_dict({"sparsity": {"dense_layers": ["layer9.0.conv1"]}}))
    assert err.value.errors[0][0] == "sparsity.dense_layers"


def test_resnet50_width_must_be_one():
    with pytest.raises(ConfigError) as err:
        arch_mod.describe(ModelConfig("resnet50", 2.0), 10, 64)
    assert err.value.errors[0][0] == "model.width"


def test_sieve_settings_that_would_do_nothing_are_errors():
    from engine.config import ConfigError, load_preset
    from engine.cost.projection import project
    for override, field in (("sieve.update_ratio=0.0001", "sieve.update_ratio"), ("sieve.ratio=0.00001", "sieve.ratio")):
        cfg = load_preset("demo", [override])
        with pytest.raises(ConfigError) as info:
            project(cfg)
        assert info.value.errors[0][0] == field
    project(load_preset("demo", ["sieve.update_ratio=0.001"]))   # 0.001 x 1000 removed = 1 swap: fine
