"""Torch batch iterators. Every batch is ``(images, targets, indices)``: float images on the
training device (normalised, augmented), int64 targets and the samples' dataset indices.

In-memory datasets (synthetic, CIFAR) live on the training device as one uint8 tensor;
crop, flip and normalisation run vectorised on the device per batch, which is far faster
than a per-sample DataLoader. ImageFolder uses a DataLoader with workers. All randomness is
keyed by (seed, epoch, batch or sample), so a resumed run sees the same batches.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from engine.training.seeding import gen, key_seed

from .sources import DatasetError, FolderData, InMemoryData, load_split, read_image

CROP_PAD = 4


def epoch_order(active: torch.Tensor, seed: int, epoch: int) -> torch.Tensor:
    """The epoch's sample order: the active indices permuted by gen(seed, "order", epoch)."""
    active = active.to("cpu", torch.long)
    perm = torch.randperm(len(active), generator=gen(seed, "order", epoch))
    return active[perm]


def num_batches(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)   # no drop_last


class DeviceDataset:
    """An in-memory split on the training device."""

    def __init__(self, data: InMemoryData, device: torch.device, image_size: int,
                 mean=None, std=None):
        # The split stays N,H,W,3 as loaded, sharing the loader's array on the CPU (no second
        # copy of the dataset: the memory preflight counts one); each batch is made N,3,H,W.
        imgs = torch.from_numpy(data.images)                                  # N,H,W,3 uint8
        if imgs.shape[1] != image_size or imgs.shape[2] != image_size:
            # Resize once (e.g. CIFAR at another resolution), in chunks to bound memory.
            parts = [F.interpolate(imgs[i:i + 4096].permute(0, 3, 1, 2).float(), size=(image_size, image_size),
                                   mode="bilinear", antialias=True, align_corners=False)
                     .round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
                     for i in range(0, len(imgs), 4096)]
            imgs = torch.cat(parts)
        self.images = imgs.to(device)
        self.targets = torch.from_numpy(data.labels).to(device)
        self.device = device
        mean = data.mean if mean is None else mean
        std = data.std if std is None else std
        # uint8 -> normalised float in one fused multiply-add: x * scale + shift
        self.scale = (1.0 / (255.0 * torch.tensor(std, dtype=torch.float32))).view(1, 3, 1, 1).to(device)
        shift = -torch.tensor(mean, dtype=torch.float32) / torch.tensor(std, dtype=torch.float32)
        self.shift = shift.view(1, 3, 1, 1).to(device)
        self.mean, self.std = tuple(mean), tuple(std)

    def __len__(self) -> int:
        return self.targets.shape[0]

    def batch(self, idx: torch.Tensor, augment: bool, seed: int = 0, epoch: int = 0, b: int = 0,
              part: tuple[int, int] | None = None):
        """Images and targets for dataset indices ``idx`` (a device tensor). ``part`` = (offset,
        global size) when ``idx`` is one rank's slice of a global batch: the augmentation is
        drawn for the global batch, so it does not depend on the number of processes."""
        x = self.images.index_select(0, idx).permute(0, 3, 1, 2).contiguous()   # N,3,H,W
        y = self.targets.index_select(0, idx)
        if augment:
            x = self._augment(x, gen(seed, "aug", epoch, b), part)
        x = torch.addcmul(self.shift, x.float(), self.scale)
        return x, y

    def _augment(self, x: torch.Tensor, g: torch.Generator, part: tuple[int, int] | None = None) -> torch.Tensor:
        n, _, h, w = x.shape
        lo, total = part if part is not None else (0, n)
        shifts = torch.randint(0, 2 * CROP_PAD + 1, (2, total), generator=g)[:, lo:lo + n]
        flips = (torch.rand(total, generator=g) < 0.5)[lo:lo + n]
        shifts, flips = shifts.to(self.device, non_blocking=True), flips.to(self.device, non_blocking=True)
        xp = F.pad(x, (CROP_PAD, CROP_PAD, CROP_PAD, CROP_PAD))   # zero (black) padding, as torchvision
        rows = shifts[0][:, None] + torch.arange(h, device=self.device)[None, :]        # n,h
        cols = shifts[1][:, None] + torch.arange(w, device=self.device)[None, :]        # n,w
        cols = torch.where(flips[:, None], cols.flip(1), cols)
        bi = torch.arange(n, device=self.device)[:, None, None]
        # advanced indexing on dims 0,2,3 -> (n, h, w, c)
        out = xp.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]]
        # Back to plain NCHW: a channels-last batch crashes the CPU conv backward of
        # torch 2.14 (heap corruption in oneDNN, reproduced with a bare training loop).
        return out.permute(0, 3, 1, 2).contiguous()


def rank_slice(n: int, shard: tuple[int, int]) -> tuple[int, int, int]:
    """(lo, hi, n_real): this rank's part [lo, hi) of a global batch of ``n``. An empty part
    becomes one padding sample (the batch's first) with n_real = 0, so that every rank runs
    the forward and backward DDP synchronises (its loss weight is 0)."""
    rank, world = shard
    lo, hi = (rank * n) // world, ((rank + 1) * n) // world
    if hi > lo:
        return lo, hi, hi - lo
    return 0, 1, 0


class InMemoryLoader:
    """Batches of one in-memory split in a given order (this rank's slice of each global batch
    under distributed training: ``shard`` = (rank, world size))."""

    def __init__(self, ds: DeviceDataset, batch_size: int, augment: bool, seed: int,
                 shard: tuple[int, int] = (0, 1)):
        self.ds, self.batch_size, self.augment, self.seed = ds, batch_size, augment, seed
        self.shard = shard

    def batches(self, order: torch.Tensor, epoch: int, start_batch: int = 0):
        order_dev = order.to(self.ds.device, non_blocking=True)
        bs = self.batch_size
        sharded = self.shard[1] > 1
        for b in range(start_batch, num_batches(len(order), bs)):
            idx = order_dev[b * bs:(b + 1) * bs]
            if not sharded:
                x, y = self.ds.batch(idx, self.augment, self.seed, epoch, b)
                yield x, y, idx
                continue
            lo, hi, n_real = rank_slice(idx.shape[0], self.shard)
            x, y = self.ds.batch(idx[lo:hi], self.augment, self.seed, epoch, b, part=(lo, idx.shape[0]))
            yield x, y, idx[lo:lo + n_real]


# ----------------------------------------------------------------------------- ImageFolder

class _FolderTorchDataset(torch.utils.data.Dataset):
    """Items are requested as (epoch, index) so per-sample randomness is keyed by both."""

    def __init__(self, data: FolderData, image_size: int, augment: bool, seed: int):
        self.data, self.size, self.augment, self.seed = data, image_size, augment, seed

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key):
        # A corrupt image comes back as a flagged blank (with its one-line reason) instead of an
        # exception, which a worker would wrap in a traceback; the main process decides.
        epoch, index = key
        try:
            return self._load(epoch, index) + ("",)
        except DatasetError as exc:
            blank = torch.zeros(3, self.size, self.size, dtype=torch.uint8)
            return blank, int(self.data.labels[index]), index, str(exc) or "unreadable"

    def _load(self, epoch: int, index: int):
        path = self.data.paths[index]
        if self.augment:
            img = _random_resized_crop(read_image(path, None), self.size, key_seed(self.seed, "aug", epoch, index))
        else:
            # resize the shorter side to size/0.875, then centre crop (the ImageNet eval recipe)
            img = read_image(path, int(round(self.size / 0.875)))
            w, h = img.size
            left, top = (w - self.size) // 2, (h - self.size) // 2
            img = img.crop((left, top, left + self.size, top + self.size))
        arr = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).contiguous()   # NCHW (see _augment)
        return arr, int(self.data.labels[index]), index


def _random_resized_crop(img, size: int, seed: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision's RandomResizedCrop + horizontal flip, drawing from a private RNG."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    w, h = img.size
    area = w * h
    box = None
    for _ in range(10):
        target = area * rng.uniform(*scale)
        ar = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = int(round(math.sqrt(target * ar))), int(round(math.sqrt(target / ar)))
        if 0 < cw <= w and 0 < ch <= h:
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            box = (left, top, left + cw, top + ch)
            break
    if box is None:   # fall back to a centre crop at the clamped aspect ratio
        in_ratio = w / h
        if in_ratio < ratio[0]:
            cw, ch = w, int(round(w / ratio[0]))
        elif in_ratio > ratio[1]:
            ch, cw = h, int(round(h * ratio[1]))
        else:
            cw, ch = w, h
        left, top = (w - cw) // 2, (h - ch) // 2
        box = (left, top, left + cw, top + ch)
    out = img.resize((size, size), resample=Image.BILINEAR, box=box)
    if rng.random() < 0.5:
        out = out.transpose(Image.FLIP_LEFT_RIGHT)
    return out


def _worker_init(_worker_id: int) -> None:
    # Ctrl-C reaches the whole process group: the main process turns it into a graceful
    # stop, so the decoding workers must not die of it.
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _OrderSampler:
    """A batch sampler whose content the loader swaps each epoch (works with persistent workers)."""

    def __init__(self):
        self.batches: list[list[tuple[int, int]]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class FolderLoader:
    def __init__(self, data: FolderData, device: torch.device, image_size: int, batch_size: int,
                 augment: bool, seed: int, workers: int, on_bad_sample: str = "skip",
                 shard: tuple[int, int] = (0, 1)):
        self.device, self.batch_size, self.shard = device, batch_size, shard
        self.on_bad_sample = on_bad_sample
        self.bad: dict[int, str] = {}          # dataset index -> reason, not yet reported
        self.sampler = _OrderSampler()
        self.dataset = _FolderTorchDataset(data, image_size, augment, seed)
        self.loader = torch.utils.data.DataLoader(
            self.dataset, batch_sampler=self.sampler, num_workers=workers,
            pin_memory=device.type == "cuda", persistent_workers=workers > 0,
            worker_init_fn=_worker_init if workers > 0 else None,
            prefetch_factor=4 if workers > 0 else None)
        std = torch.tensor(data.std, dtype=torch.float32)
        self.scale = (1.0 / (255.0 * std)).view(1, 3, 1, 1).to(device)
        self.shift = (-torch.tensor(data.mean, dtype=torch.float32) / std).view(1, 3, 1, 1).to(device)

    def __len__(self) -> int:
        return len(self.dataset)

    def batches(self, order: torch.Tensor, epoch: int, start_batch: int = 0):
        order = order.tolist()
        bs = self.batch_size
        parts = []
        for b in range(start_batch, num_batches(len(order), bs)):
            g = order[b * bs:(b + 1) * bs]
            lo, hi, n_real = rank_slice(len(g), self.shard)
            parts.append(([(epoch, i) for i in g[lo:hi]], n_real))
        self.sampler.batches = [p for p, _ in parts]
        for (x, y, idx, err), (_, n_real) in zip(self.loader, parts):
            if any(err):
                ok = torch.tensor([not e for e in err])
                bad = [(int(i), e) for i, e in zip(idx.tolist(), err) if e]
                if self.on_bad_sample == "error":
                    raise DatasetError(f"{bad[0][1]} (data.on_bad_sample: error; use skip to train without it)")
                self.bad.update(bad)
                if not ok.any():
                    raise DatasetError(f"every image of a batch is unreadable, e.g. {bad[0][1]}")
                n_real -= int((~ok[:n_real]).sum())      # a skipped sample of this rank's own slice
                x, y, idx = x[ok], y[ok], idx[ok]
            x = x.to(self.device, non_blocking=True)    # pinned by the loader on CUDA
            x = torch.addcmul(self.shift, x.float(), self.scale)
            yield x, y.to(self.device, non_blocking=True), idx[:n_real].to(self.device, non_blocking=True)


# ----------------------------------------------------------------------------- factory

class Data:
    """Train and test loaders of a configuration, plus the sizes the trainer reports."""

    def __init__(self, cfg, device: torch.device, shard: tuple[int, int] = (0, 1)):
        d = cfg.data
        train = load_split(cfg, "train")
        test = load_split(cfg, "test")
        self.classes = train.classes
        self.num_classes = len(train.classes)
        self.train_size, self.test_size = len(train), len(test)
        self.kind = "memory" if isinstance(train, InMemoryData) else "folder"
        eval_bs = max(cfg.batch_size, 256) if self.kind == "memory" else cfg.batch_size
        if isinstance(train, InMemoryData):
            tr = DeviceDataset(train, device, d.image_size)
            te = DeviceDataset(test, device, d.image_size, mean=train.mean, std=train.std)
            self.train = InMemoryLoader(tr, cfg.batch_size, d.augment, cfg.seed, shard)
            self.test = InMemoryLoader(te, eval_bs, False, cfg.seed, shard)
        else:
            policy = getattr(d, "on_bad_sample", "skip")
            self.train = FolderLoader(train, device, d.image_size, cfg.batch_size, d.augment, cfg.seed, d.workers,
                                      policy, shard)
            self.test = FolderLoader(test, device, d.image_size, eval_bs, False, cfg.seed, d.workers, policy, shard)
        self._train_data, self._test_data = train, test

    def take_bad_samples(self) -> dict[str, list]:
        """Corrupt images skipped since the last call, by split: {split: [(path, reason)]}."""
        out: dict[str, list] = {}
        for split, loader, data in (("train", self.train, self._train_data), ("test", self.test, self._test_data)):
            bad = getattr(loader, "bad", None)
            if bad:
                out[split] = [(data.paths[i], reason) for i, reason in sorted(bad.items())]
                bad.clear()
        return out

    def train_labels(self) -> torch.Tensor:
        """The training labels (int64, CPU), e.g. for class-balanced scoring samples."""
        return torch.as_tensor(self._train_data.labels, dtype=torch.long)

    def train_batches(self, order: torch.Tensor, epoch: int, start_batch: int = 0):
        return self.train.batches(order, epoch, start_batch)

    def test_batches(self):
        return self.test.batches(torch.arange(self.test_size), 0)

    def probe_batches(self, indices: torch.Tensor, batch_size: int):
        """Training samples ``indices`` without augmentation, as normalised device batches
        (the analyses' fixed probe set: the same images at every measurement)."""
        idx = indices.to("cpu", torch.long)
        if isinstance(self.train, InMemoryLoader):
            ds = self.train.ds
            for i in range(0, len(idx), batch_size):
                x, _ = ds.batch(idx[i:i + batch_size].to(ds.device), augment=False)
                yield x
            return
        loader = self.train
        plain = _FolderTorchDataset(loader.dataset.data, loader.dataset.size, False, loader.dataset.seed)
        for i in range(0, len(idx), batch_size):
            x = torch.stack([plain[(0, int(j))][0] for j in idx[i:i + batch_size]]).to(loader.device)
            yield torch.addcmul(loader.shift, x.float(), loader.scale)
