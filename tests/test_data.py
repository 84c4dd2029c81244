"""Datasets: the synthetic generator, CIFAR and ImageFolder readers, the torch loaders."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from engine.config import RunConfig
from engine.data import sources
from engine.data.loaders import Data, DeviceDataset, epoch_order


def _cfg(**data) -> RunConfig:
    cfg = RunConfig()
    cfg.batch_size = 32
    cfg.data.image_size = 12
    cfg.data.train_size = 200
    cfg.data.test_size = 40
    cfg.data.num_classes = 4
    for k, v in data.items():
        setattr(cfg.data, k, v)
    return cfg


@pytest.fixture(autouse=True)
def _fresh_cache():
    sources.clear_cache()
    yield
    sources.clear_cache()


# ----------------------------------------------------------------------------- synthetic

def test_synthetic_is_deterministic_and_seed_dependent():
    cfg = _cfg()
    a = sources.load_split(cfg, "train")
    sources.clear_cache()
    b = sources.load_split(cfg, "train")
    assert a is not b
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    cfg2 = _cfg()
    cfg2.seed = 1
    c = sources.load_split(cfg2, "train")
    assert not np.array_equal(a.images, c.images)
    assert a.images.shape == (200, 12, 12, 3) and a.images.dtype == np.uint8
    assert sources.load_split(cfg, "test").images.shape == (40, 12, 12, 3)


def test_synthetic_has_all_classes_hard_samples_and_label_noise():
    cfg = _cfg(train_size=400, label_noise=0.1)
    tr = sources.load_split(cfg, "train")
    assert set(np.unique(tr.labels)) == {0, 1, 2, 3}
    kinds = np.bincount(tr.kinds, minlength=3)
    assert kinds[2] == 40                    # exactly label_noise * N mislabelled
    assert kinds[1] > 40                     # a real fraction of hard samples
    te = sources.load_split(cfg, "test")
    assert (te.kinds != 2).all()             # the test split is never mislabelled
    # the classes differ visibly: class means are far apart compared to the pixel noise
    means = np.stack([tr.images[(tr.labels == k) & (tr.kinds == 0)].mean(0) for k in range(4)])
    assert np.abs(means[0] - means[1]).mean() > 5


def test_sample_image_accepts_config_forms_and_is_cached():
    cfg = _cfg()
    img = sources.sample_image(cfg, "train", 5)
    assert img.shape == (12, 12, 3) and img.dtype == np.uint8
    assert np.array_equal(img, sources.sample_image(cfg.to_dict(), "train", 5))
    assert np.array_equal(img, sources.sample_image(cfg.to_dict()["data"], "train", 5, seed=cfg.seed))
    assert sources.load_split(cfg, "train") is sources.load_split(cfg.to_dict(), "train")
    with pytest.raises(IndexError):
        sources.sample_image(cfg, "test", 40)


# ----------------------------------------------------------------------------- errors

def test_missing_dataset_path_names_path_and_layout(tmp_path):
    missing = tmp_path / "nowhere"
    for name, layout_word in (("cifar10", "data_batch_1"), ("cifar100", "cifar-100-python"),
                              ("imagefolder", "train/")):
        cfg = _cfg(name=name, root=str(missing))
        with pytest.raises(sources.DatasetError) as ei:
            sources.load_split(cfg, "train")
        msg = str(ei.value)
        assert str(missing) in msg and layout_word in msg, msg


def _write_fake_cifar10(base, n=6, bad_batch=None):
    d = base / "cifar-10-batches-py"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for f in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        obj = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n))}
        with open(d / f, "wb") as fh:
            if f == bad_batch:
                fh.write(b"not a pickle at all")
            else:
                pickle.dump(obj, fh)
    with open(d / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, fh)
    return d


def test_fake_cifar10_reads_from_folder_or_parent(tmp_path):
    d = _write_fake_cifar10(tmp_path)
    for root in (tmp_path, d):
        sources.clear_cache()
        tr = sources.load_split(_cfg(name="cifar10", root=str(root)), "train")
        assert tr.images.shape == (30, 32, 32, 3) and tr.classes[0] == "c0"
    # rows are channel-major 32x32 planes: pixel (0,0) of image 0 is data[0][0], [1024], [2048]
    with open(d / "data_batch_1", "rb") as fh:
        raw = pickle.load(fh, encoding="bytes")[b"data"]
    assert tuple(tr.images[0, 0, 0]) == (raw[0, 0], raw[0, 1024], raw[0, 2048])


def test_malformed_cifar_folder_is_a_clear_error(tmp_path):
    _write_fake_cifar10(tmp_path, bad_batch="data_batch_3")
    with pytest.raises(sources.DatasetError) as ei:
        sources.load_split(_cfg(name="cifar10", root=str(tmp_path)), "train")
    assert "data_batch_3" in str(ei.value) and "pickle" in str(ei.value)
    # a missing batch file
    other = tmp_path / "other"
    d = _write_fake_cifar10(other)
    (d / "data_batch_5").unlink()
    with pytest.raises(sources.DatasetError) as ei:
        sources.load_split(_cfg(name="cifar10", root=str(other)), "train")
    assert "data_batch_5" in str(ei.value) and "missing" in str(ei.value)
    # wrong array shape
    third = tmp_path / "third" / "cifar-100-python"
    third.mkdir(parents=True)
    for f in ("train", "test"):
        with open(third / f, "wb") as fh:
            pickle.dump({b"data": np.zeros((3, 100), np.uint8), b"fine_labels": [0, 1, 2]}, fh)
    with open(third / "meta", "wb") as fh:
        pickle.dump({b"fine_label_names": []}, fh)
    with pytest.raises(sources.DatasetError) as ei:
        sources.load_split(_cfg(name="cifar100", root=str(third.parent)), "train")
    assert "3072" in str(ei.value)


# ----------------------------------------------------------------------------- imagefolder

def _write_imagefolder(root):
    from PIL import Image
    rng = np.random.default_rng(0)
    sizes = [(13, 7), (20, 31), (9, 9)]
    for split, n in (("train", 3), ("val", 2)):
        for c in ("zebra", "ant"):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                w, h = sizes[i % 3]
                if i % 2 == 0:   # grayscale
                    Image.fromarray(rng.integers(0, 255, (h, w), dtype=np.uint8), mode="L").save(d / f"{i}.png")
                else:
                    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(d / f"{i}.jpg")
    (root / "train" / "ant" / "notes.txt").write_text("not an image")


def test_imagefolder_odd_sized_grayscale_images(tmp_path):
    _write_imagefolder(tmp_path)
    cfg = _cfg(name="imagefolder", root=str(tmp_path), image_size=16, workers=0)
    tr = sources.load_split(cfg, "train")
    assert tr.classes == ["ant", "zebra"]            # sorted, as torchvision
    assert len(tr) == 6 and list(tr.labels) == [0, 0, 0, 1, 1, 1]
    assert len(sources.load_split(cfg, "test")) == 4
    thumb = sources.sample_image(cfg, "train", 0)
    assert thumb.shape == (16, 16, 3) and thumb.dtype == np.uint8
    cfg.batch_size = 4
    data = Data(cfg, torch.device("cpu"))
    order = epoch_order(torch.arange(data.train_size), cfg.seed, 0)
    batches = list(data.train_batches(order, 0))
    assert [b[0].shape[0] for b in batches] == [4, 2]     # no drop_last
    x, y, idx = batches[0]
    assert x.shape == (4, 3, 16, 16) and x.dtype == torch.float32
    assert torch.equal(idx, order[:4]) and torch.equal(y, torch.from_numpy(tr.labels)[order[:4]])
    again = next(iter(data.train_batches(order, 0)))
    assert torch.equal(again[0], x)                       # per-sample randomness is keyed
    xt, _, _ = next(iter(data.test_batches()))
    assert xt.shape[1:] == (3, 16, 16)


def test_imagefolder_missing_val_is_a_clear_error(tmp_path):
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(sources.DatasetError) as ei:
        sources.load_split(_cfg(name="imagefolder", root=str(tmp_path)), "test")
    assert "val" in str(ei.value) and "train/<class>" in str(ei.value)


# ----------------------------------------------------------------------------- loaders

def test_batches_carry_indices_and_augmentation_is_keyed():
    cfg = _cfg()
    data = Data(cfg, torch.device("cpu"))
    active = torch.arange(0, 200, 2)                      # a sieve-like subset
    order = epoch_order(active, cfg.seed, 3)
    assert sorted(order.tolist()) == active.tolist()
    assert not torch.equal(order, epoch_order(active, cfg.seed, 4))
    seen = []
    labels = torch.from_numpy(sources.load_split(cfg, "train").labels)
    for _x, y, idx in data.train_batches(order, 3):
        assert torch.equal(y, labels[idx])
        seen.append(idx)
    assert torch.equal(torch.cat(seen), order)
    first = next(iter(data.train_batches(order, 3)))[0]
    assert torch.equal(first, next(iter(data.train_batches(order, 3)))[0])
    assert not torch.equal(first, next(iter(data.train_batches(order, 4)))[0])
    # resuming at batch 2 yields exactly the batches 2.. of the full pass
    full = list(data.train_batches(order, 3))
    tail = list(data.train_batches(order, 3, start_batch=2))
    assert len(tail) == len(full) - 2 and torch.equal(tail[0][0], full[2][0])


def test_device_augmentation_is_a_crop_and_flip_of_the_image():
    cfg = _cfg(image_size=8)
    tr = sources.load_split(cfg, "train")
    ds = DeviceDataset(tr, torch.device("cpu"), 8, mean=(0, 0, 0), std=(1 / 255, 1 / 255, 1 / 255))
    idx = torch.arange(64)
    x, _ = ds.batch(idx, augment=True, seed=0, epoch=0, b=0)
    plain, _ = ds.batch(idx, augment=False)
    padded = torch.nn.functional.pad(plain, (4, 4, 4, 4))
    for i in range(64):
        found = any(torch.equal(x[i], cand)
                    for dy in range(9) for dx in range(9)
                    for cand in (padded[i, :, dy:dy + 8, dx:dx + 8], padded[i, :, dy:dy + 8, dx:dx + 8].flip(2)))
        assert found, i
    assert not torch.equal(x, plain)
