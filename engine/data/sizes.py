"""Dataset sizes the planner needs, known without loading (or even having) the data.

CIFAR sizes are fixed. An ImageFolder tree is counted by a fast directory scan (cached by
the folders' modification times); when the tree is not there, a root whose name says
ImageNet gets the ILSVRC-2012 sizes, anything else is an error: the plan does not guess.
"""
from __future__ import annotations

import os
from functools import lru_cache

from engine.config import ConfigError, RunConfig

# name -> (train, test, classes, native image size)
KNOWN = {
    "cifar10": (50000, 10000, 10, 32),
    "cifar100": (50000, 10000, 100, 32),
    "imagenet": (1281167, 50000, 1000, 224),
}
# torchvision's ImageFolder extensions, so the count matches what the loader will find.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
_IMAGENET_HINTS = ("imagenet", "ilsvrc")


def walk_files(top: str, loops: list | None = None):
    """os.walk(top, followlinks=True) that enters each real directory once: a symlink loop
    (a link to a parent) is skipped and its path appended to ``loops`` instead of being
    walked again and again. Yields (dirpath, sorted file names), in sorted order."""
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError:
            dirnames[:] = []
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            dirnames[:] = []
            if loops is not None:
                loops.append(dirpath)
            continue
        seen.add(key)
        dirnames.sort()
        yield dirpath, sorted(filenames)


def _count_images(split_dir: str) -> tuple[int, int]:
    """(images, classes) of an ImageFolder split: one sub-folder per class (an empty one
    still counts as a class, as in engine.data.sources and torchvision)."""
    with os.scandir(split_dir) as it:
        class_dirs = [e.path for e in it if e.is_dir()]
    images = 0
    for d in class_dirs:
        for _root, files in walk_files(d):
            images += sum(1 for f in files if f.lower().endswith(IMAGE_EXTENSIONS))
    return images, len(class_dirs)


@lru_cache(maxsize=16)
def _scan(root: str, train_mtime: float, val_mtime: float | None) -> tuple[int, int, int]:
    train, classes = _count_images(os.path.join(root, "train"))
    test = 0
    if val_mtime is not None:
        test, _ = _count_images(os.path.join(root, "val"))
    return train, test, classes


def _imagefolder_sizes(root: str | None) -> tuple[int, int, int]:
    if not root:
        raise ConfigError([("data.root", "cannot cost: dataset of unknown size (imagefolder needs data.root)")])
    train_dir = os.path.join(root, "train")
    if os.path.isdir(train_dir):
        val_dir = os.path.join(root, "val")
        val_mtime = os.stat(val_dir).st_mtime if os.path.isdir(val_dir) else None
        train, test, classes = _scan(os.path.abspath(root), os.stat(train_dir).st_mtime, val_mtime)
        if train == 0 or classes == 0:
            raise ConfigError([("data.root", f"cannot cost: no images found under {train_dir} "
                                             "(expected one sub-folder of images per class)")])
        return train, test, classes
    if any(h in os.path.basename(os.path.normpath(root)).lower() for h in _IMAGENET_HINTS):
        train, test, classes, _ = KNOWN["imagenet"]
        return train, test, classes
    raise ConfigError([("data.root", f"cannot cost: dataset of unknown size ({train_dir} not found, "
                                     "and the folder name does not say imagenet)")])


def dataset_sizes(cfg: RunConfig) -> dict:
    """{train_size, test_size, num_classes, image_size} of the configured dataset."""
    d = cfg.data
    if d.name == "synthetic":
        train, test, classes = d.train_size, d.test_size, d.num_classes
    elif d.name in KNOWN:
        train, test, classes, _ = KNOWN[d.name]
    elif d.name == "imagefolder":
        train, test, classes = _imagefolder_sizes(d.root)
    else:
        raise ConfigError([("data.name", f"cannot cost: dataset {d.name!r} of unknown size")])
    return {"name": d.name, "train_size": int(train), "test_size": int(test),
            "num_classes": int(classes), "image_size": int(d.image_size)}
