"""Bad input gets a clear error before training (issue 15, items 10-14): size bounds, the
memory and disk estimate, validate's device and dataset scan, corrupt images skipped and
counted, one-line messages, nonsense refused, run names sanitised."""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from engine import cli
from engine import config as C
from engine.config import ConfigError
from engine.cost import preflight as resources
from engine.run import folder as run_dir_mod


def _errs(**over) -> dict:
    d = {}
    for k, v in over.items():
        C._set_dotted(d, k, v)
    with pytest.raises(ConfigError) as ei:
        C.from_dict(d)
    return dict(ei.value.errors)


# ----------------------------------------------------------------------------- 10. bounds, memory

@pytest.mark.parametrize("field,value", [("epochs", 10_000_000), ("data.train_size", 1_000_000_000),
                                         ("seed", 10**22), ("batch_size", 10**9), ("checkpoint.keep", 10**6)])
def test_size_fields_are_bounded(field, value):
    assert "must be" in _errs(**{field: value})[field]


def test_every_size_field_has_an_upper_bound():
    for f in C.FIELDS:
        if f.kind == "int":
            assert f.max is not None, f.path


def test_a_run_that_cannot_fit_in_memory_is_refused_with_the_numbers():
    cfg = C.from_dict({"data": {"train_size": 40_000_000, "image_size": 64}})
    from engine.cost import arch as arch_mod
    from engine.data.sizes import dataset_sizes
    sizes = dataset_sizes(cfg)
    arch = arch_mod.describe(cfg.model, sizes["num_classes"], sizes["image_size"])
    est = resources.estimate(cfg, sizes, arch.params, 0)
    assert est["dataset"] > 40_000_000 * 3 * 64 * 64
    with pytest.raises(ConfigError, match=r"data.train_size.*needs about .* GiB.*this machine has 8.00 GiB"):
        resources.check_memory(est, available=8 * 2**30)
    small = C.from_dict({"data": {"train_size": 100}})
    resources.check_memory(resources.estimate(small, dataset_sizes(small), arch.params, 0), available=8 * 2**30)


def test_validate_refuses_what_does_not_fit(tmp_path, capsys):
    p = tmp_path / "c.yaml"
    p.write_text("data: {train_size: 49000000, image_size: 1024}\n")
    assert cli.main(["validate", "--config", str(p)]) == cli.EXIT_CONFIG
    assert "of memory" in capsys.readouterr().err


# ----------------------------------------------------------------------------- 11. validate scans

def _imagefolder(root: Path, classes=("a", "b"), per_class=3, val=True, corrupt: int = 0) -> Path:
    from PIL import Image
    rng = np.random.default_rng(0)
    for split in ("train", "val") if val else ("train",):
        for c in classes:
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 255, (10, 10, 3), dtype=np.uint8)).save(d / f"{i}.png")
    for i in range(corrupt):
        (root / "train" / classes[0] / f"bad{i}.png").write_bytes(b"not a png" if i % 2 else b"")
    return root


def _validate(capsys, tmp_path, **over) -> tuple[int, str]:
    d = {"device": "cpu"}
    for k, v in over.items():
        C._set_dotted(d, k, v)
    p = tmp_path / "v.json"
    p.write_text(json.dumps(d))
    rc = cli.main(["validate", "--config", str(p)])
    return rc, capsys.readouterr().err


def test_validate_checks_the_dataset_layout(tmp_path, capsys):
    rc, err = _validate(capsys, tmp_path, **{"data.name": "cifar10", "data.root": str(tmp_path / "nope")})
    assert rc == 2 and "data.root" in err and "does not exist" in err
    _imagefolder(tmp_path / "nov", val=False)
    rc, err = _validate(capsys, tmp_path, **{"data.name": "imagefolder", "data.root": str(tmp_path / "nov")})
    assert rc == 2 and "no val/" in err
    _imagefolder(tmp_path / "one", classes=("only",))
    rc, err = _validate(capsys, tmp_path, **{"data.name": "imagefolder", "data.root": str(tmp_path / "one")})
    assert rc == 2 and "at least 2" in err
    _imagefolder(tmp_path / "ok", corrupt=1)
    rc, err = _validate(capsys, tmp_path, **{"data.name": "imagefolder", "data.root": str(tmp_path / "ok")})
    assert rc == 0 and "empty" in err


def test_run_refuses_missing_cifar_files_before_making_a_run_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    runs = tmp_path / "runs"
    rc = cli.main(["run", "--preset", "demo", "--set", "data.name=cifar10", "--set", f"data.root={tmp_path / 'empty'}",
                   "--set", f"run_dir={runs}"])
    err = capsys.readouterr().err
    assert rc == cli.EXIT_CONFIG and "data.root" in err and "batches.meta" in err
    assert not runs.exists() or not any(runs.iterdir())
    # a bad --set value is not blamed on the file alone
    assert cli.main(["validate", "--preset", "demo", "--set", "epochs=abc"]) == cli.EXIT_CONFIG
    assert "with the --set overrides" in capsys.readouterr().err


def test_validate_checks_the_device(tmp_path, capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    rc, err = _validate(capsys, tmp_path, device="cuda")
    assert rc == 2 and "device" in err and "0 CUDA device" in err


def test_a_symlink_loop_is_walked_once(tmp_path):
    root = _imagefolder(tmp_path / "loop", per_class=4)
    os.symlink(root / "train" / "a", root / "train" / "a" / "again")
    from engine.data import sources
    from engine.data.sizes import dataset_sizes
    sources.clear_cache()
    cfg = C.from_dict({"data": {"name": "imagefolder", "root": str(root)}})
    assert len(sources.load_split(cfg, "train")) == 8
    assert dataset_sizes(cfg)["train_size"] == 8


@pytest.mark.parametrize("policy", ["skip", "error"])
def test_corrupt_images_are_skipped_and_counted_or_one_line_errors(tmp_path, policy):
    from engine.data import sources
    from engine.run.telemetry import Emitter
    from engine.training.trainer import Trainer
    root = _imagefolder(tmp_path / "imgs", per_class=4, corrupt=2)
    sources.clear_cache()
    cfg = C.from_dict({"device": "cpu", "epochs": 1, "batch_size": 4, "interval": 1,
                       "model": {"width": 0.25}, "sparsity": {"target": 0.5},
                       "data": {"name": "imagefolder", "root": str(root), "image_size": 8, "workers": 1,
                                "on_bad_sample": policy}})
    out = io.StringIO()
    tr = Trainer(cfg, tmp_path / "run", Emitter(tmp_path / "run", stream=out, progress_bar=False))
    if policy == "error":
        with pytest.raises(sources.DatasetError) as ei:
            tr.fit()
        msg = str(ei.value)
        assert "\n" not in msg and "bad" in msg and "Traceback" not in msg and "on_bad_sample" in msg
        return
    assert tr.fit() == "completed"
    evs = [json.loads(l) for l in out.getvalue().splitlines()]
    bad = [e for e in evs if e["event"] == "bad_samples"]
    assert len(bad) == 1 and bad[0]["count"] == 2 and bad[0]["split"] == "train"
    assert sorted(Path(s["path"]).name for s in bad[0]["samples"]) == ["bad0.png", "bad1.png"]
    assert [e for e in evs if e["event"] == "epoch_end"][0]["samples"] == 10


# ----------------------------------------------------------------------------- 12-13. messages, nonsense

def test_one_line_errors_for_unreadable_or_odd_config_files(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"not UTF-8.*0xe9"):
        C.load(p)
    p.write_text("epochs: 3\nepochs: 5\n")
    with pytest.raises(ConfigError, match="duplicate key 'epochs'"):
        C.load(p)
    p.write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        C.load(p)
    p.write_text("# only a comment\n")
    with pytest.raises(ConfigError, match="is empty"):
        C.load(p)


@pytest.mark.parametrize("field,value", [("device", "cpu\n"), ("run_dir", ""), ("sieve.ratio", 0.999),
                                         ("model.width", 0.0001), ("data.root", "  ")])
def test_nonsense_values_are_refused(field, value):
    assert field in _errs(**{field: value})


# ----------------------------------------------------------------------------- 14. run names

@pytest.mark.parametrize("name", ["a/b", "../../etc", "x" * 500, "..", "ça va?"])
def test_run_names_are_sanitised_in_one_place(tmp_path, name):
    s = run_dir_mod.safe_name(name)
    assert s and "/" not in s and not s.startswith(".") and len(s) <= run_dir_mod.NAME_MAX
    cfg = C.from_dict({"name": name, "run_dir": str(tmp_path)})
    d = run_dir_mod.create(cfg)
    assert d.parent == tmp_path and d.name.startswith(s)
    import tempfile
    fd, path = tempfile.mkstemp(prefix=f"spfde-{s}-", suffix=".yaml", dir=tmp_path)   # as the studio does
    os.close(fd)
    assert Path(path).parent == tmp_path


def test_memory_refusal_names_the_field_that_drives_the_excess():
    from engine.cost import arch as arch_mod
    from engine.data.sizes import dataset_sizes
    cfg = C.from_dict({"data": {"train_size": 1000, "test_size": 9_000_000, "image_size": 64}})
    sizes = dataset_sizes(cfg)
    arch = arch_mod.describe(cfg.model, sizes["num_classes"], sizes["image_size"])
    est = resources.estimate(cfg, sizes, arch.params, 0)
    # one in-memory copy: DeviceDataset shares the N,H,W,3 array (test below)
    assert est["dataset_test"] >= 9_000_000 * 3 * 64 * 64
    with pytest.raises(ConfigError, match=r"data.test_size"):
        resources.check_memory(est, available=8 * 2**30)
    with pytest.raises(ConfigError, match=r"batch_size"):
        resources.check_memory(dict(est, dataset_train=0, dataset_test=0, batch=2**40), available=8 * 2**30)


def test_the_in_memory_dataset_is_one_copy_shared_with_the_loaded_array():
    """The preflight counts one copy of an in-memory split; on the CPU DeviceDataset must
    therefore share the loaded N,H,W,3 array, and its batches are still N,3,H,W."""
    import numpy as np
    import torch

    from engine.data.loaders import DeviceDataset
    from engine.data.sources import InMemoryData
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(10, 8, 8, 3), dtype=np.uint8)
    data = InMemoryData(images=imgs, labels=np.arange(10) % 2, classes=["a", "b"], mean=(0.5,) * 3, std=(0.25,) * 3)
    ds = DeviceDataset(data, torch.device("cpu"), 8)
    assert ds.images.data_ptr() == imgs.ctypes.data                    # no second copy
    x, y = ds.batch(torch.tensor([3, 7]), augment=False)
    want = (torch.from_numpy(imgs[[3, 7]]).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    assert x.shape == (2, 3, 8, 8) and x.is_contiguous() and torch.allclose(x, want, atol=1e-5)
    assert y.tolist() == [1, 1]


def test_gpu_memory_preflight_refuses_what_the_gpus_free_memory_cannot_hold():
    """The CUDA check (engine.cli._check_gpu_memory feeds it torch.cuda.mem_get_info)."""
    from engine.cost import arch as arch_mod
    from engine.data.sizes import dataset_sizes
    cfg = C.from_dict({"data": {"train_size": 2_000_000, "test_size": 1000, "image_size": 64}})
    sizes = dataset_sizes(cfg)
    arch = arch_mod.describe(cfg.model, sizes["num_classes"], sizes["image_size"])
    est = resources.estimate(cfg, sizes, arch.params, 2**28)
    need = est["dataset"] + est["model"] + est["batch"] + resources.CUDA_CONTEXT_BYTES
    resources.check_gpu_memory(est, "cuda:0", need, 80 * 2**30)          # exactly enough: accepted
    with pytest.raises(ConfigError, match=r"data.train_size.*GPU memory on cuda:0.*of its 80.00 GiB are free"):
        resources.check_gpu_memory(est, "cuda:0", need - 1, 80 * 2**30)
