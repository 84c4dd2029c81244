"""``validate``'s dataset check: presence and layout by a directory scan, no decoding.

Errors (ConfigError naming ``data.root``) are what would make ``run`` fail: a missing
CIFAR file, an ImageFolder without ``train/`` or ``val/``, a split without images, a single
class. Warnings are returned: empty (0-byte) image files, which training skips or refuses
per ``data.on_bad_sample``, and symlink loops, which are walked once.
"""
from __future__ import annotations

import os
from pathlib import Path

from engine.config import ConfigError, RunConfig
from engine.data.sizes import IMAGE_EXTENSIONS, walk_files

CIFAR_FILES = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]),
    "cifar100": ("cifar-100-python", ["train", "test", "meta"]),
}


def _err(msg: str) -> ConfigError:
    return ConfigError([("data.root", msg)])


def check_dataset(cfg: RunConfig) -> list[str]:
    """Raise ConfigError for a dataset ``run`` could not read; return warnings."""
    d = cfg.data
    if d.name == "synthetic":
        return []
    root = Path(d.root or "").expanduser()   # validate() requires data.root here
    if not root.exists():
        raise _err(f"{root} does not exist (nothing is downloaded)")
    if d.name in CIFAR_FILES:
        sub, files = CIFAR_FILES[d.name]
        base = root / sub if (root / sub).is_dir() else root
        missing = [f for f in files if not (base / f).is_file()]
        if missing:
            raise _err(f"{d.name} files missing in {base}: {', '.join(missing)}")
        empty = [f for f in files if (base / f).stat().st_size == 0]
        if empty:
            raise _err(f"{d.name} files empty in {base}: {', '.join(empty)}")
        return []
    return _check_imagefolder(root)


def _check_imagefolder(root: Path) -> list[str]:
    warnings: list[str] = []
    train_classes: list[str] = []
    for split in ("train", "val"):
        sd = root / split
        if not sd.is_dir():
            raise _err(f"imagefolder {root} has no {split}/ folder (expected ROOT/train/<class>/<image> "
                       "and ROOT/val/<class>/<image>)")
        classes = sorted(e.name for e in os.scandir(sd) if e.is_dir())
        if split == "train":
            train_classes = classes
            if len(classes) < 2:
                raise _err(f"imagefolder {sd} has {len(classes)} class folder(s); classification needs at least 2 "
                           "(with one, every prediction is right)")
        else:
            extra = sorted(set(classes) - set(train_classes))
            if extra:
                raise _err(f"imagefolder {sd} has classes not in train/: {', '.join(extra[:5])}")
        images = empty = 0
        loops: list[str] = []
        for c in classes:
            for dirpath, files in walk_files(str(sd / c), loops):
                for f in files:
                    if f.lower().endswith(IMAGE_EXTENSIONS):
                        images += 1
                        try:
                            if os.path.getsize(os.path.join(dirpath, f)) == 0:
                                empty += 1
                        except OSError:
                            empty += 1
        if images == 0:
            raise _err(f"imagefolder {sd} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        if empty:
            warnings.append(f"{sd}: {empty} empty or unreadable image file(s); training skips or refuses them "
                            "per data.on_bad_sample")
        if loops:
            warnings.append(f"{sd}: symlink loop(s) at {', '.join(loops[:3])}; each folder is read once")
    return warnings
