"""Models named timm:NAME or py:MODULE:CALLABLE: parsing, freeze blocks derived, the
measured FLOPs against a hand count, the cost table, and every bad input with its message."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine import config as C
from engine.config import ConfigError, model_spec
from engine.cost import arch as arch_mod
from engine.cost import measured

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent


def _model(name: str, **kw) -> C.ModelConfig:
    return C.ModelConfig(name=name, **kw)


def _measure(name: str, num_classes: int = 4, image_size: int = 8, **kw) -> arch_mod.Arch:
    from engine.models.measure import measure_config
    return arch_mod.from_table(measure_config(_model(name, **kw), num_classes, image_size))


def _errors(exc) -> dict:
    return dict(exc.value.errors)


# ----------------------------------------------------------------------------- names

def test_model_names_parse_into_their_kinds():
    assert model_spec.parse("resnet32") == model_spec.ModelSpec("builtin", "resnet32")
    assert model_spec.parse("timm:vit_tiny_patch16_224") == model_spec.ModelSpec("timm", "vit_tiny_patch16_224")
    assert model_spec.parse("py:my_pkg.models:build") == model_spec.ModelSpec("py", "my_pkg.models", "build")
    assert not model_spec.parse("resnet50").measured and model_spec.parse("wrn28").measured


@pytest.mark.parametrize("name,expect", [("timm:", "timm:NAME"), ("py:pkg", "py:MODULE:CALLABLE"),
                                         ("py:pkg:", "py:MODULE:CALLABLE"), ("vgg16", "timm:NAME or py:")])
def test_malformed_model_names_are_config_errors(name, expect):
    with pytest.raises(ConfigError) as exc:
        C.from_dict({"model": {"name": name}})
    assert expect in _errors(exc)["model.name"]


def test_pretrained_without_a_local_file_says_how_to_supply_one():
    with pytest.raises(ConfigError) as exc:
        C.from_dict({"model": {"name": "timm:resnet18", "pretrained": True}})
    msg = _errors(exc)["model.pretrained"]
    assert "nothing is downloaded" in msg and "model.checkpoint" in msg and "torch.save" in msg


def test_fields_a_model_kind_does_not_take_are_refused():
    with pytest.raises(ConfigError) as exc:
        C.from_dict({"model": {"name": "resnet20", "kwargs": {"depth": 3}, "blocks": ["stem"]}})
    assert set(_errors(exc)) == {"model.kwargs", "model.blocks"}
    with pytest.raises(ConfigError) as exc:
        C.from_dict({"model": {"name": "timm:resnet18", "width": 2}})
    assert "model.kwargs" in _errors(exc)["model.width"]


def test_opening_a_config_with_a_factory_imports_nothing():
    """A shared config must not run code by being opened: reading, validating and planning
    it (the studio's preview) import neither the factory's module nor torch."""
    code = ("import sys\n"
            "from engine import config as C\n"
            "from engine.cost.projection import project\n"
            "cfg = C.from_dict({'model': {'name': 'py:toy_models:small_convnet'}})\n"
            "try:\n    project(cfg)\nexcept C.ConfigError as e:\n    print(e.errors[0][0])\n"
            "assert 'toy_models' not in sys.modules and 'torch' not in sys.modules\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "model.name"


# ----------------------------------------------------------------------------- FLOPs

def test_flops_of_a_linear_only_model_equal_a_hand_count():
    a = _measure("py:toy_models:linear_only", num_classes=4, image_size=8, kwargs={"image_size": 8, "hidden": 16})
    macs = 3 * 8 * 8 * 16 + 16 * 4
    assert a.forward_flops_dense == 2 * macs
    assert a.extra_flops == 0
    assert [l.macs for l in a.layers] == [3 * 8 * 8 * 16, 16 * 4]
    assert a.params == 3 * 8 * 8 * 16 + 16 + 16 * 4 + 4


def test_flops_of_a_conv_only_model_equal_a_hand_count():
    a = _measure("py:toy_models:conv_only", num_classes=3, image_size=8)
    c1 = 4 * 3 * 3 * 3 * 8 * 8          # 3x3, 3->4, stride 1: 8x8 outputs
    c2 = 5 * 4 * 3 * 3 * 4 * 4          # 3x3, 4->5, stride 2: 4x4 outputs
    c3 = 3 * 5 * 1 * 1 * 4 * 4          # 1x1, 5->3
    assert [l.macs for l in a.layers] == [c1, c2, c3]
    assert a.forward_flops_dense == 2 * (c1 + c2 + c3)
    assert [l.out_hw for l in a.layers] == [(8, 8), (4, 4), (4, 4)]


def test_attention_flops_are_counted_beside_the_layers():
    pytest.importorskip("timm")
    a = _measure("timm:test_vit", image_size=16, kwargs={"img_size": 16, "patch_size": 4})
    tokens, dim = 16 + 1, a.layer_by_name["blocks.0.attn.qkv"].weight_shape[1]
    # q @ k^T and attention @ v: 2 x tokens^2 x dim multiply-accumulates per block
    assert a.blocks[1].extra_flops == pytest.approx(2 * 2 * tokens * tokens * dim)
    assert a.layer_by_name["blocks.0.attn.qkv"].macs == tokens * dim * 3 * dim
    # the whole forward as torch's counter sees it (the math attention kernel)
    import timm
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode
    net = timm.create_model("test_vit", num_classes=4, img_size=16, patch_size=4).eval()
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fc:
        net(torch.zeros(1, 3, 16, 16))
    assert a.forward_flops_dense == fc.get_total_flops()


def test_the_analytic_resnets_have_no_extra_flops():
    a = arch_mod.describe(C.ModelConfig("resnet20", 1.0), 10, 32)
    assert a.extra_flops == 0 and a.blocks_from == "analytic"
    assert a.forward_flops_dense == 2 * sum(l.macs for l in a.layers)


def test_a_cost_table_round_trips():
    a = _measure("py:toy_models:small_convnet", kwargs={"width": 4})
    b = arch_mod.from_table(json.loads(json.dumps(arch_mod.to_table(a))))
    assert b == a and b.blocks_from == a.blocks_from


# ----------------------------------------------------------------------------- blocks

def test_timm_blocks_come_from_its_coarse_grouping():
    pytest.importorskip("timm")
    a = _measure("timm:test_resnet", image_size=16)
    assert a.blocks_from.startswith("timm group_matcher")
    # timm's test_resnet has one residual block per stage: a stage's group is that block
    assert a.block_names == ["stem", "layer1.0", "layer2.0", "layer3.0", "layer4.0", "fc"]
    tags = {l.name: l.tags for l in a.layers}
    assert "stem" in tags[a.layers[0].name] and "head" in tags[a.layers[-1].name]
    assert any("shortcut" in t for t in tags.values())       # downsample 1x1 projections


def test_factory_blocks_come_from_its_freeze_blocks_method():
    a = _measure("py:toy_models:small_convnet")
    assert a.block_names == ["stem", "stage1", "stage2", "classifier"]
    assert a.blocks_from == "freeze_blocks()" and not a.warnings


def test_model_blocks_prefixes_override_and_must_cover_the_model_in_order():
    a = _measure("py:toy_models:small_convnet", blocks=["stem", "stage1", "stage2.0", "stage2.1", "fc"])
    assert a.block_names == ["stem", "stage1", "stage2.0", "stage2.1", "fc"]
    with pytest.raises(ConfigError) as exc:
        _measure("py:toy_models:small_convnet", blocks=["stem", "stage1"])
    assert "do not cover the model" in _errors(exc)["model.blocks"] and "stage2.0.weight" in _errors(exc)["model.blocks"]
    with pytest.raises(ConfigError) as exc:
        _measure("py:toy_models:small_convnet", blocks=["stage1", "stem", "stage2", "fc"])
    assert "forward order" in _errors(exc)["model.blocks"]
    with pytest.raises(ConfigError) as exc:
        _measure("py:toy_models:small_convnet", blocks=["stem", "stem.0", "stage1", "stage2", "fc"])
    assert "must not overlap" in _errors(exc)["model.blocks"]
    with pytest.raises(ConfigError) as exc:
        _measure("py:toy_models:small_convnet", blocks=["stem", "stage1", "stage2", "fc", "nothing"])
    assert "'nothing'" in _errors(exc)["model.blocks"] and "holds no parameter" in _errors(exc)["model.blocks"]


def test_without_declared_blocks_the_top_level_modules_are_used_with_a_warning():
    a = _measure("py:toy_models:plain_sequential")
    assert a.block_names == ["0", "2", "6"]
    assert a.warnings and "top-level modules" in a.warnings[0]


# ----------------------------------------------------------------------------- bad input

def test_an_unknown_timm_name_suggests_the_closest():
    pytest.importorskip("timm")
    with pytest.raises(ConfigError) as exc:
        _measure("timm:resnet181")
    msg = _errors(exc)["model.name"]
    assert "timm has no model 'resnet181'" in msg and "closest:" in msg and "resnet18" in msg


def test_a_missing_factory_module_or_attribute_names_both():
    with pytest.raises(ConfigError) as exc:
        _measure("py:no_such_pkg.models:build")
    assert "no_such_pkg.models" in _errors(exc)["model.name"] and "cannot import" in _errors(exc)["model.name"]
    with pytest.raises(ConfigError) as exc:
        _measure("py:toy_models:no_such_factory")
    msg = _errors(exc)["model.name"]
    assert "'toy_models'" in msg and "'no_such_factory'" in msg
    with pytest.raises(ConfigError) as exc:
        _measure("py:toy_models:NOT_CALLABLE")
    assert "not callable" in _errors(exc)["model.name"]
    with pytest.raises(ConfigError) as exc:
        _measure("py:toy_models:small_convnet", kwargs={"depth": 3})
    assert "depth" in _errors(exc)["model.kwargs"]


def test_a_factory_that_fails_is_a_config_error_naming_it():
    with pytest.raises(ConfigError) as exc:
        _measure("py:toy_models:broken")
    assert "py:toy_models:broken could not be built" in _errors(exc)["model.name"]
    assert "always fails" in _errors(exc)["model.name"]


def test_a_model_without_prunable_layers_is_refused_before_training():
    with pytest.raises(ConfigError) as exc:
        _measure("py:toy_models:no_prunable")
    assert "no conv or linear layer" in _errors(exc)["model.name"]


def test_the_analyses_are_refused_for_a_model_that_runs_as_a_whole():
    with pytest.raises(ConfigError) as exc:
        C.from_dict({"model": {"name": "timm:test_vit"}, "analysis": {"enabled": True}})
    assert "analysis.enabled" in _errors(exc)
    # a factory's model: refused by the plan, before any run folder exists
    from engine.cost.projection import project
    from engine.models.measure import ensure_measured
    cfg = C.from_dict({"model": {"name": "py:toy_models:small_convnet"}, "analysis": {"enabled": True},
                       "data": {"image_size": 8, "train_size": 64, "num_classes": 4}, "epochs": 2, "interval": 1})
    ensure_measured(cfg.model, 4, 8)
    with pytest.raises(ConfigError) as exc:
        project(cfg)
    assert "runs as a whole" in _errors(exc)["analysis.enabled"]
    # the built-in WideResNet runs its blocks one by one: the analyses work on it
    wrn = cfg.replace(**{"model.name": "wrn28", "model.width": 0.25})
    ensure_measured(wrn.model, 4, 8)
    assert project(wrn)["blocks"][0]["name"] == "stem"


def test_a_local_checkpoint_is_loaded_weights_only(tmp_path):
    import torch

    from engine.models import build_network
    cfg = SimpleNamespace(model=_model("py:toy_models:small_convnet", kwargs={"width": 4}))
    torch.manual_seed(1)
    src = build_network(cfg, 4)
    path = tmp_path / "w.pt"
    torch.save({"state_dict": src.state_dict()}, path)
    torch.manual_seed(2)
    loaded = build_network(SimpleNamespace(model=_model(cfg.model.name, kwargs={"width": 4}, checkpoint=str(path))), 4)
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(ConfigError) as exc:
        build_network(SimpleNamespace(model=_model(cfg.model.name, checkpoint=str(path))), 4)   # width 8: no fit
    assert "does not fit the model" in _errors(exc)["model.checkpoint"]
    with pytest.raises(ConfigError) as exc:
        build_network(SimpleNamespace(model=_model(cfg.model.name, checkpoint=str(tmp_path / "none.pt"))), 4)
    assert "no such file" in _errors(exc)["model.checkpoint"]


def test_dense_layers_take_module_name_patterns():
    from engine.sparsity import schedule as dst_schedule
    cfg = C.from_dict({"model": {"name": "py:toy_models:small_convnet"},
                       "sparsity": {"dense_layers": ["stem", "stage*.0"]}, "data": {"image_size": 8}})
    a = _measure(cfg.model.name)
    assert dst_schedule.dense_layer_names(cfg, a.layer_specs()) == {"stem.0", "stage1.0", "stage2.0"}
    bad = cfg.replace(**{"sparsity.dense_layers": ["blocks.*.qkv"]})
    with pytest.raises(ValueError, match=r"blocks\.\*\.qkv.*pattern"):
        dst_schedule.dense_layer_names(bad, a.layer_specs())


# ----------------------------------------------------------------------------- the planner

def test_the_planner_prices_a_registered_table_without_torch():
    """The studio's path: a table from `spfde-train plan --json`, registered, then project()."""
    code = ("import sys, json\n"
            "from engine import config as C\n"
            "from engine.cost import measured\n"
            "from engine.cost.projection import project\n"
            "cfg = C.from_dict(json.loads(sys.argv[1]))\n"
            "measured.register(cfg.model, 4, 8, json.loads(sys.argv[2]))\n"
            "p = project(cfg)\n"
            "print(p['flops']['forward_dense_per_sample'], [b['name'] for b in p['blocks']])\n"
            "assert 'torch' not in sys.modules\n")
    cfg = {"model": {"name": "py:toy_models:conv_only"}, "data": {"image_size": 8, "num_classes": 4,
                                                                  "train_size": 64}, "epochs": 2, "interval": 1}
    table = arch_mod.to_table(_measure("py:toy_models:conv_only", num_classes=4, image_size=8))
    r = subprocess.run([sys.executable, "-c", code, json.dumps(cfg), json.dumps(table)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    flops, names = r.stdout.split(" ", 1)
    assert float(flops) == arch_mod.from_table(table).forward_flops_dense
    assert measured.key(C.from_dict(cfg).model, 4, 8) != measured.key(C.from_dict(cfg).model, 4, 16)


@pytest.mark.slow
def test_plan_prints_the_measured_blocks_and_hands_out_the_cost_table(tmp_path, capsys):
    pytest.importorskip("timm")
    from engine.cli import main  # in-process: the worker has torch loaded already
    p = tmp_path / "c.yaml"
    p.write_text("epochs: 4\ninterval: 1\nmodel: {name: 'timm:test_vit', kwargs: {img_size: 16, patch_size: 4}}\n"
                 "data: {image_size: 16, train_size: 64, test_size: 16, num_classes: 4}\nfreeze: {target: 0.05}\n")
    capsys.readouterr()
    assert main(["plan", "--config", str(p)]) == 0
    out = capsys.readouterr().out
    assert "freeze blocks (timm group_matcher(coarse=True)): 8" in out
    assert "blocks.0" in out and "attention/matmul" in out
    assert main(["plan", "--config", str(p), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    table = plan["cost_table"]
    assert [b["name"] for b in table["blocks"]] == [b["name"] for b in plan["blocks"]]
    assert arch_mod.from_table(table).forward_flops_dense == plan["flops"]["forward_dense_per_sample"]


@pytest.mark.parametrize("preset", ["cifar100_wrn28x10_spfde", "vit_tiny_spfde_demo"])
def test_the_model_presets_plan_with_their_measured_blocks(preset):
    if preset.startswith("vit"):
        pytest.importorskip("timm")
    from engine.cost.projection import project
    from engine.data.sizes import dataset_sizes
    from engine.models.measure import ensure_measured
    cfg = C.load_preset(preset)
    sizes = dataset_sizes(cfg)
    ensure_measured(cfg.model, sizes["num_classes"], sizes["image_size"])
    plan = project(cfg)
    fp = plan["freeze_plan"]
    assert fp["achieved"] >= cfg.freeze.target - 1e-9 and plan["flops"]["saved"]["sieve"] > 0
    if preset.startswith("cifar100_wrn"):
        # WRN-28-10: 36.5M parameters, 5.25 G multiply-accumulates per 32 px image
        assert plan["model"]["params"] == pytest.approx(36.5e6, rel=0.01)
        assert plan["flops"]["forward_dense_per_sample"] / 2 == pytest.approx(5.25e9, rel=0.01)
        assert len(plan["blocks"]) == 14
    else:
        assert plan["blocks"][0]["name"] == "stem" and plan["blocks"][1]["extra_flops"] > 0
