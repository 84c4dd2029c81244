"""Dataset readers in numpy/PIL (no torch): the engine wraps them in torch, the GUI renders
sieve thumbnails from them.

* ``synthetic``: procedurally generated coloured gratings, one (orientation, frequency,
  colours) recipe per class. Most samples are easy; a fraction is hard (low contrast,
  more noise, blended with another class's pattern); a fraction ``data.label_noise`` of the
  training labels is wrong, so forgetting events happen. Deterministic from ``cfg.seed``.
* ``cifar10`` / ``cifar100``: the standard python-pickle folders, read from disk.
* ``imagefolder``: a torchvision ImageFolder tree with ``train/`` and ``val/``.

Nothing is ever downloaded: a missing or malformed dataset raises ``DatasetError`` naming
the path and the expected layout.
"""
from __future__ import annotations

import logging
import os
import pickle
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.sizes import walk_files

log = logging.getLogger("engine.data")

SPLITS = ("train", "test")
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

# Per-channel statistics used for normalisation (RGB, 0..1 scale).
CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
CIFAR100_STATS = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

CIFAR10_LAYOUT = ("cifar-10-batches-py/ holding data_batch_1 ... data_batch_5, test_batch and "
                  "batches.meta (the python version from https://www.cs.toronto.edu/~kriz/cifar.html)")
CIFAR100_LAYOUT = ("cifar-100-python/ holding train, test and meta "
                   "(the python version from https://www.cs.toronto.edu/~kriz/cifar.html)")
IMAGEFOLDER_LAYOUT = ("ROOT/train/<class>/<image> and ROOT/val/<class>/<image> "
                      f"(image files ending in {', '.join(IMG_EXTENSIONS)})")

# Synthetic generator knobs: fraction of hard samples and their difficulty.
SYN_HARD_FRACTION = 0.3
_SYN_CHUNK = 4096


class DatasetError(ValueError):
    """A dataset that is missing or not in the expected layout."""


@dataclass
class InMemoryData:
    """A split held in memory: ``images`` uint8 (N, H, W, 3), ``labels`` int64 (N,)."""
    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    # synthetic only: 0 easy, 1 hard, 2 mislabelled (train), per sample
    kinds: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class FolderData:
    """An ImageFolder split: file paths and labels, decoded on demand."""
    paths: list[str]
    labels: np.ndarray
    classes: list[str]
    mean: tuple[float, float, float] = IMAGENET_STATS[0]
    std: tuple[float, float, float] = IMAGENET_STATS[1]
    kinds: np.ndarray | None = field(default=None)

    def __len__(self) -> int:
        return len(self.labels)


# ----------------------------------------------------------------------------- keys

def _data_key(cfg: Any, seed: int | None = None) -> tuple:
    """A hashable description of the dataset, from a RunConfig, a config dict or a data dict."""
    if hasattr(cfg, "data") and hasattr(cfg, "seed"):          # RunConfig
        d, s = cfg.data.__dict__, cfg.seed
    elif isinstance(cfg, dict) and isinstance(cfg.get("data"), dict):
        d, s = cfg["data"], cfg.get("seed", 0)
    elif isinstance(cfg, dict):                                  # the data section alone
        d, s = cfg, 0
    elif hasattr(cfg, "name") and hasattr(cfg, "image_size"):   # DataConfig
        d, s = cfg.__dict__, 0
    else:
        raise TypeError(f"expected a RunConfig or a configuration dict, got {type(cfg).__name__}")
    if seed is not None:
        s = seed
    name = d.get("name", "synthetic")
    root = d.get("root")
    size = int(d.get("image_size", 32))
    if name == "synthetic":
        return (name, None, size, int(d.get("train_size", 5000)), int(d.get("test_size", 1000)),
                int(d.get("num_classes", 10)), float(d.get("label_noise", 0.04)), int(s))
    return (name, str(root) if root is not None else None, size)


# ----------------------------------------------------------------------------- synthetic

def _rng(seed: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), 0x5F_DE, purpose])


def _class_recipes(num_classes: int, seed: int) -> dict[str, np.ndarray]:
    rng = _rng(seed, 1)
    k = np.arange(num_classes)
    # Orientations spread by the golden ratio so neighbouring classes differ.
    theta = ((k * 0.6180339887) % 1.0) * np.pi + rng.normal(0, 0.05, num_classes)
    freq = 1.5 + 3.0 * rng.random(num_classes)           # cycles per image
    fg = rng.random((num_classes, 3))
    bg = rng.random((num_classes, 3))
    return {"theta": theta, "freq": freq, "fg": fg, "bg": bg}


def _grating(theta, freq, phase, size: int) -> np.ndarray:
    """cos(2π f (u cosθ + v sinθ) + φ) for N samples, separably: (N, H, W) float32."""
    coord = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    w = (2 * np.pi * freq).astype(np.float32)
    ax = w[:, None] * np.cos(theta).astype(np.float32)[:, None] * coord[None, :] + phase.astype(np.float32)[:, None]
    by = w[:, None] * np.sin(theta).astype(np.float32)[:, None] * coord[None, :]
    return (np.cos(by)[:, :, None] * np.cos(ax)[:, None, :]
            - np.sin(by)[:, :, None] * np.sin(ax)[:, None, :])


def _synthetic(split: str, size: int, train_size: int, test_size: int, num_classes: int,
               label_noise: float, seed: int) -> InMemoryData:
    n = train_size if split == "train" else test_size
    rec = _class_recipes(num_classes, seed)
    rng = _rng(seed, 2 if split == "train" else 3)
    labels = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
    hard = rng.random(n) < SYN_HARD_FRACTION
    phase = rng.random(n) * 2 * np.pi
    theta = rec["theta"][labels] + rng.normal(0, 1, n) * np.where(hard, 0.30, 0.12)
    freq = rec["freq"][labels] * (1 + rng.normal(0, 1, n) * np.where(hard, 0.15, 0.06))
    contrast = np.where(hard, rng.uniform(0.2, 0.45, n), rng.uniform(0.5, 1.0, n))
    # Colour jitter large enough that colour alone is a weak cue: the pattern matters.
    cjit = rng.normal(0, 1, (n, 2, 3)) * np.where(hard, 0.3, 0.18)[:, None, None]
    fg = np.clip(rec["fg"][labels] + cjit[:, 0], 0, 1)
    bg = np.clip(rec["bg"][labels] + cjit[:, 1], 0, 1)
    # Hard samples are blended with another class's pattern and colours.
    other = (labels + rng.integers(1, num_classes, n)) % num_classes
    mix = np.where(hard, rng.uniform(0.25, 0.45, n), 0.0)
    noise_sigma = np.where(hard, 0.15, 0.06).astype(np.float32)
    noise_seed = rng.integers(0, 2**63 - 1)

    f32 = np.float32
    fg, bg, contrast, mix = fg.astype(f32), bg.astype(f32), contrast.astype(f32), mix.astype(f32)
    rfg, rbg = rec["fg"].astype(f32), rec["bg"].astype(f32)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    nrng = np.random.default_rng(noise_seed)
    dfg, rdfg = fg - bg, rfg - rbg
    for lo in range(0, n, _SYN_CHUNK):
        hi = min(n, lo + _SYN_CHUNK)
        own = _grating(theta[lo:hi], freq[lo:hi], phase[lo:hi], size)
        own *= 0.5 * contrast[lo:hi, None, None]
        own += 0.5
        h = np.flatnonzero(hard[lo:hi])
        if h.size:
            o, m = other[lo:hi][h], mix[lo:hi][h][:, None, None]
            alt = 0.5 + 0.5 * _grating(rec["theta"][o], rec["freq"][o], phase[lo:hi][h] * 1.7, size)
        noise = nrng.standard_normal((hi - lo, size, size), dtype=f32)
        noise *= noise_sigma[lo:hi, None, None]
        # One colour channel at a time: (chunk, H, W) temporaries stay small.
        for c in range(3):
            v = dfg[lo:hi, c, None, None] * own
            v += bg[lo:hi, c, None, None]
            if h.size:
                alt_c = rbg[o, c, None, None] + rdfg[o, c, None, None] * alt
                v[h] = v[h] * (1 - m) + alt_c * m
            v += noise
            v *= 255.0
            v += 0.5
            np.clip(v, 0, 255, out=v)
            images[lo:hi, :, :, c] = v
    kinds = hard.astype(np.uint8)
    if split == "train" and label_noise > 0:
        flip = rng.choice(n, size=int(round(label_noise * n)), replace=False)
        labels[flip] = (labels[flip] + rng.integers(1, num_classes, len(flip))) % num_classes
        kinds[flip] = 2
    # The loaders normalise both splits with the training split's statistics.
    stats = _stats(images)
    return InMemoryData(images, labels, [f"class {i}" for i in range(num_classes)], stats[0], stats[1], kinds)


def _stats(images: np.ndarray) -> tuple[tuple, tuple]:
    sub = images[: min(len(images), 2000)].reshape(-1, 3).astype(np.float32) / 255.0
    return tuple(float(x) for x in sub.mean(0)), tuple(float(max(x, 1e-3)) for x in sub.std(0))


# ----------------------------------------------------------------------------- CIFAR

def _resolve(root: str | None, folder: str, marker: str, layout: str, name: str) -> Path:
    if not root:
        raise DatasetError(f"data.root is not set for {name}; expected a folder holding {layout}")
    p = Path(root).expanduser()
    if not p.exists():
        raise DatasetError(f"{name} dataset not found: {p} does not exist. Expected {layout} "
                           f"(data.root may point at that folder or at its parent). Nothing is downloaded.")
    for cand in (p, p / folder):
        if (cand / marker).is_file():
            return cand
    raise DatasetError(f"{name} dataset not found in {p}: no {marker} there or in {p / folder}. "
                       f"Expected {layout} (data.root may point at that folder or at its parent).")


# What a CIFAR batch may reference: numpy arrays and builtin containers, never a callable
# that could run code (pickle.load alone would import and call anything a file names).
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
} | {(m, n) for m in ("builtins", "__builtin__")
     for n in ("list", "dict", "tuple", "set", "frozenset", "bytearray", "bytes", "str", "int", "float", "complex")}


class UnsafePickleError(DatasetError):
    """A pickle that names something other than arrays and builtin containers."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _SAFE_GLOBALS:
            raise UnsafePickleError(f"refused {module}.{name}: only numpy arrays, bytes, strings, numbers "
                                    "and builtin containers are allowed")
        return super().find_class(module, name)


def safe_unpickle(fh) -> Any:
    """pickle.load restricted to numpy arrays and builtin containers (CIFAR batches)."""
    return _RestrictedUnpickler(fh, encoding="bytes").load()


def _unpickle(path: Path, layout: str) -> dict:
    if not path.is_file():
        raise DatasetError(f"malformed CIFAR folder: {path} is missing. Expected {layout}")
    try:
        with open(path, "rb") as fh:
            d = safe_unpickle(fh)
    except UnsafePickleError as exc:
        raise DatasetError(f"unsafe CIFAR file {path}: {exc}. Expected {layout}") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise DatasetError(f"malformed CIFAR file {path}: cannot be read as a python pickle ({exc}). "
                           f"Expected {layout}") from None
    if not isinstance(d, dict):
        raise DatasetError(f"malformed CIFAR file {path}: expected a pickled dict, got {type(d).__name__}")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}


def _cifar_arrays(d: dict, path: Path, label_key: str, layout: str) -> tuple[np.ndarray, np.ndarray]:
    if "data" not in d or label_key not in d:
        raise DatasetError(f"malformed CIFAR file {path}: expected keys 'data' and '{label_key}', "
                           f"found {sorted(map(str, d))}. Expected {layout}")
    data = np.asarray(d["data"])
    try:
        labels = np.asarray(d[label_key], dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise DatasetError(f"malformed CIFAR file {path}: '{label_key}' must be a list of integer class "
                           f"indices, got {str(d[label_key])[:60]}") from None
    if labels.ndim != 1:
        raise DatasetError(f"malformed CIFAR file {path}: '{label_key}' must be a flat list, got shape {labels.shape}")
    if data.ndim != 2 or data.shape[1] != 3072 or data.shape[0] != labels.shape[0]:
        raise DatasetError(f"malformed CIFAR file {path}: 'data' has shape {data.shape} for "
                           f"{labels.shape[0]} labels; expected (N, 3072) uint8 rows of 32x32 RGB")
    return data.astype(np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


def _cifar(name: str, root: str | None, split: str) -> InMemoryData:
    if name == "cifar10":
        base = _resolve(root, "cifar-10-batches-py", "batches.meta", CIFAR10_LAYOUT, name)
        files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        parts = [_cifar_arrays(_unpickle(base / f, CIFAR10_LAYOUT), base / f, "labels", CIFAR10_LAYOUT) for f in files]
        meta = _unpickle(base / "batches.meta", CIFAR10_LAYOUT)
        classes, n_cls, stats = meta.get("label_names"), 10, CIFAR10_STATS
    else:
        base = _resolve(root, "cifar-100-python", "meta", CIFAR100_LAYOUT, name)
        f = "train" if split == "train" else "test"
        parts = [_cifar_arrays(_unpickle(base / f, CIFAR100_LAYOUT), base / f, "fine_labels", CIFAR100_LAYOUT)]
        meta = _unpickle(base / "meta", CIFAR100_LAYOUT)
        classes, n_cls, stats = meta.get("fine_label_names"), 100, CIFAR100_STATS
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if labels.size and (labels.min() < 0 or labels.max() >= n_cls):
        raise DatasetError(f"malformed {name} folder {base}: labels outside 0..{n_cls - 1}")
    names = [c.decode() if isinstance(c, bytes) else str(c) for c in (classes or [])]
    if len(names) != n_cls:
        names = [f"class {i}" for i in range(n_cls)]
    return InMemoryData(images, labels, names, stats[0], stats[1])


# ----------------------------------------------------------------------------- ImageFolder

def _scan_classes(d: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(d) if e.is_dir())


def _imagefolder(root: str | None, split: str) -> FolderData:
    if not root:
        raise DatasetError(f"data.root is not set for imagefolder; expected {IMAGEFOLDER_LAYOUT}")
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DatasetError(f"imagefolder dataset not found: {base} does not exist. Expected {IMAGEFOLDER_LAYOUT}")
    train_dir = base / "train"
    sub = base / ("train" if split == "train" else "val")
    for d in (train_dir, sub):
        if not d.is_dir():
            raise DatasetError(f"malformed imagefolder dataset {base}: {d} is missing. Expected {IMAGEFOLDER_LAYOUT}")
    classes = _scan_classes(train_dir)   # class indices always come from train/
    if not classes:
        raise DatasetError(f"malformed imagefolder dataset: {train_dir} has no class subfolders. Expected {IMAGEFOLDER_LAYOUT}")
    if len(classes) < 2:
        raise DatasetError(f"imagefolder dataset {train_dir} has a single class ({classes[0]}); classification "
                           "needs at least 2 (with one, every prediction is right)")
    index = {c: i for i, c in enumerate(classes)}
    extra = [c for c in _scan_classes(sub) if c not in index]
    if extra:
        raise DatasetError(f"malformed imagefolder dataset: {sub} has classes not in {train_dir}: {extra[:5]}")
    paths: list[str] = []
    labels: list[int] = []
    # torchvision's make_dataset order: classes sorted, then a sorted walk of each class folder.
    for c in classes:
        cdir = sub / c
        if not cdir.is_dir():
            continue
        loops: list[str] = []
        for dirpath, fnames in sorted(walk_files(str(cdir), loops)):   # torchvision's order
            for fn in fnames:
                if fn.lower().endswith(IMG_EXTENSIONS):
                    paths.append(os.path.join(dirpath, fn))
                    labels.append(index[c])
        if loops:
            log.warning("imagefolder: symlink loop(s) skipped under %s: %s", cdir, ", ".join(loops[:3]))
    if not paths:
        raise DatasetError(f"malformed imagefolder dataset: no images under {sub}. Expected {IMAGEFOLDER_LAYOUT}")
    return FolderData(paths, np.asarray(labels, dtype=np.int64), classes)


def read_image(path: str, size: int | None, center_crop: bool = True):
    """Decode one image file to RGB (grayscale/palette/alpha converted); optionally resize the
    shorter side to ``size`` and centre-crop a square. Returns a PIL image."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            img = im.convert("RGB")
    except Exception as exc:  # noqa: BLE001
        raise DatasetError(f"cannot read image {path}: {exc}") from None
    if size is None:
        return img
    w, h = img.size
    s = size / min(w, h)
    nw, nh = max(size, round(w * s)), max(size, round(h * s))
    img = img.resize((nw, nh), resample=Image.Resampling.BILINEAR)
    if center_crop:
        left, top = (nw - size) // 2, (nh - size) // 2
        img = img.crop((left, top, left + size, top + size))
    return img


# ----------------------------------------------------------------------------- entry points

_cache: dict[tuple, Any] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 4


def _load(key: tuple, split: str):
    name = key[0]
    if name == "synthetic":
        _, _, size, tr, te, k, noise, seed = key
        return _synthetic(split, size, tr, te, k, noise, seed)
    if name in ("cifar10", "cifar100"):
        return _cifar(name, key[1], split)
    if name == "imagefolder":
        return _imagefolder(key[1], split)
    raise DatasetError(f"unknown dataset {name!r}; expected synthetic, cifar10, cifar100 or imagefolder")


def load_split(cfg: Any, split: str, seed: int | None = None) -> InMemoryData | FolderData:
    """The ``train`` or ``test`` split of the configured dataset (cached: cheap to call again)."""
    if split == "val":
        split = "test"
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    key = _data_key(cfg, seed) + (split,)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    data = _load(key[:-1], split)
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.pop(next(iter(_cache)))
        _cache[key] = data
    return data


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def num_classes(cfg: Any) -> int:
    return len(load_split(cfg, "train").classes)


def sample_image(cfg: Any, split: str, index: int, seed: int | None = None) -> np.ndarray:
    """One sample as uint8 (H, W, 3), un-augmented: for thumbnails. ``cfg`` is a RunConfig, a
    config dict or the data section of one (then ``seed`` gives the synthetic seed)."""
    data = load_split(cfg, split, seed)
    n = len(data)
    if not -n <= index < n:
        raise IndexError(f"sample index {index} out of range for the {split} split of {n} samples")
    if isinstance(data, InMemoryData):
        return data.images[index]
    size = _data_key(cfg, seed)[2]
    return np.asarray(_read_cached(data.paths[index], size))


_thumb_cache: dict[tuple, Any] = {}


def _read_cached(path: str, size: int):
    key = (path, size)
    img = _thumb_cache.get(key)
    if img is None:
        img = read_image(path, size)
        if len(_thumb_cache) > 512:
            _thumb_cache.pop(next(iter(_thumb_cache)))
        _thumb_cache[key] = img
    return img
