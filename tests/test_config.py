"""Run configuration: presets, validation messages, --set overrides, the validate CLI."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from engine import config as C
from engine.cli import main as cli_main

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ("demo", "cifar100_resnet32x2_mest", "cifar100_resnet32x2_spfde", "imagenet_resnet50_spfde",
           "cifar100_wrn28x10_spfde", "vit_tiny_spfde_demo")


@pytest.mark.parametrize("name", PRESETS)
def test_presets_load_and_validate(name):
    cfg = C.load_preset(name)
    assert C.validate(cfg) == []
    assert cfg.to_dict()["name"]  # round-trips to a plain dict


def test_preset_settings_follow_the_paper():
    mest = C.load_preset("cifar100_resnet32x2_mest")
    spfde = C.load_preset("cifar100_resnet32x2_spfde")
    assert (mest.model.name, mest.model.width, mest.data.name) == ("resnet32", 2, "cifar100")
    assert (mest.epochs, mest.batch_size, mest.optim.lr, mest.interval) == (160, 32, 0.15, 5)
    assert mest.sparsity.algorithm == "mest_ems" and mest.sparsity.target == 0.9
    assert mest.freeze.target == 0 and (mest.sieve.mode, mest.sieve.ratio) == ("oneshot", 0.24)
    assert C.sieve_oneshot_epoch(mest) == 70
    # SpFDE = the same base settings plus 20% freeze and 20% circular sieving
    for f in ("epochs", "batch_size", "interval", "model", "optim"):
        assert getattr(mest, f) == getattr(spfde, f), f
    assert spfde.freeze.target == 0.2 and (spfde.sieve.mode, spfde.sieve.ratio) == ("circular", 0.2)
    demo = C.load_preset("demo")
    assert demo.data.name == "synthetic" and demo.sparsity.target == 0.9
    assert demo.freeze.target > 0 and demo.sieve.ratio > 0 and demo.interval < demo.epochs


def test_several_bad_values_reported_together():
    d = {"epochs": 0, "optim": {"lr": -1}, "sparsity": {"target": 1.5, "algorithm": "dsr"},
         "model": {"name": "vgg"}}
    with pytest.raises(C.ConfigError) as ei:
        C.from_dict(d)
    errs = dict(ei.value.errors)
    assert {"epochs", "optim.lr", "sparsity.target", "sparsity.algorithm", "model.name"} <= set(errs)
    # each message names the bad value and what is allowed
    assert "1.5" in errs["sparsity.target"] and "< 1" in errs["sparsity.target"]
    assert "dsr" in errs["sparsity.algorithm"] and "mest_ems" in errs["sparsity.algorithm"]
    assert "vgg" in errs["model.name"] and "resnet32" in errs["model.name"]
    assert "-1" in errs["optim.lr"]
    text = str(ei.value)
    assert "5 errors" in text and "sparsity.algorithm" in text


def test_unknown_fields_are_errors():
    with pytest.raises(C.ConfigError) as ei:
        C.from_dict({"epoch": 3, "sparsity": {"taget": 0.9}})
    fields = [f for f, _ in ei.value.errors]
    assert "epoch" in fields and "sparsity.taget" in fields
    assert any("epochs" in m for _, m in ei.value.errors)   # the message lists the known names


@pytest.mark.parametrize("text,key,value", [
    ("sparsity.target=0.95", "sparsity.target", 0.95),
    ("sparsity.dense_layers=[stem, head]", "sparsity.dense_layers", ["stem", "head"]),
    ("sparsity.dense_layers=[]", "sparsity.dense_layers", []),
    ("sieve.oneshot_epoch=null", "sieve.oneshot_epoch", None),
    ("data.augment=false", "data.augment", False),
    ("name=my run", "name", "my run"),
    ("optim.weight_decay=5e-4", "optim.weight_decay", 5e-4),
])
def test_set_parsing(text, key, value):
    k, v = C.parse_override(text)
    assert k == key
    cfg = C.from_dict(C.apply_overrides({}, [text]))
    assert cfg.get(key) == value


def test_set_without_equals_is_an_error():
    with pytest.raises(C.ConfigError) as ei:
        C.parse_override("sparsity.target")
    assert "key=value" in str(ei.value)


def test_overrides_apply_over_a_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"epochs": 7, "sieve": {"ratio": 0.1}}))
    cfg = C.load(p, ["sieve.ratio=0.3", "sparsity.dense_layers=[stem, shortcut]"])
    assert cfg.epochs == 7 and cfg.sieve.ratio == 0.3 and cfg.sparsity.dense_layers == ["stem", "shortcut"]


def test_validate_cli_reports_every_error_and_exits_2(tmp_path, capsys):
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump({"epochs": -2, "batch_size": "big", "sparsity": {"distribution": "gauss"}}))
    rc = cli_main(["validate", "--config", str(p)])
    err = capsys.readouterr().err
    assert rc == 2
    for f in ("epochs", "batch_size", "sparsity.distribution"):
        assert f in err
    assert cli_main(["validate", "--preset", "demo"]) == 0
    assert capsys.readouterr().out.strip() == "OK"
    assert cli_main(["validate", "--preset", "demo", "--set", "sieve.ratio=2"]) == 2
    assert "sieve.ratio" in capsys.readouterr().err


def test_validate_cli_reports_plan_errors(capsys):
    assert cli_main(["validate", "--preset", "demo", "--set", "freeze.target=0.9"]) == 2
    assert "freeze.target" in capsys.readouterr().err
    assert cli_main(["validate", "--preset", "demo", "--set", "sparsity.dense_layers=[stem, nosuchlayer]"]) == 2
    assert "nosuchlayer" in capsys.readouterr().err


def test_missing_config_file_exits_2(tmp_path, capsys):
    assert cli_main(["validate", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml" in capsys.readouterr().err


def test_validate_plan_and_data_sources_do_not_import_torch():
    code = ("import sys; from engine.cli import main; "
            "assert main(['validate', '--preset', 'demo']) == 0; "
            "assert main(['plan', '--preset', 'demo', '--json']) == 0; "
            "from engine.data import sources; sources.sample_image({'data': {'train_size': 20, 'test_size': 5}}, 'train', 3); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_every_field_with_a_wrong_type_is_reported_not_crashed():
    """Cross-field checks must not trip over a field that already failed its own check."""
    from engine import config as C
    for spec in C.FIELDS:
        bad = [1, 2] if spec.kind != "list" else 3
        try:
            C.load_preset("demo", [f"{spec.path}={bad}"])
        except C.ConfigError as exc:
            assert any(f == spec.path for f, _ in exc.errors), (spec.path, exc.errors)
        else:
            raise AssertionError(f"{spec.path}={bad} was accepted")
