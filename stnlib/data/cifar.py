"""CIFAR-10 from its "python version" archive (``cifar-10-batches-py``), downloaded when reachable."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .images import ImageData
from .registry import register_dataset

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


def read_batches(folder: Path, names) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(N, 3, 32, 32)`` in [0, 1] and labels ``(N,)`` from CIFAR pickle batch files."""
    images, labels = [], []
    for name in names:
        try:
            with open(folder / name, "rb") as handle:
                batch = pickle.load(handle, encoding="latin1")
            images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch["labels"], dtype=np.int64))
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise DataError(f"{folder / name} is not a CIFAR-10 batch file ({type(exc).__name__})") from None
    return torch.from_numpy(np.concatenate(images)).float() / 255, torch.from_numpy(np.concatenate(labels))


@register_dataset("cifar10", "CIFAR-10 (50,000 / 10,000) through torchvision; optionally rotated with --rotate")
def load_cifar10(root: Path) -> ImageData:
    folder = root / FOLDER
    if not all((folder / n).is_file() for n in TRAIN_BATCHES + ["test_batch"]):
        try:
            from torchvision.datasets import CIFAR10

            CIFAR10(str(root), train=True, download=True)
        except Exception as exc:
            raise DataError(f"CIFAR-10 is not in {folder} and could not be downloaded ({type(exc).__name__}); "
                            f"put the extracted cifar-10-batches-py folder there or pass --data-root") from None
    train_x, train_y = read_batches(folder, TRAIN_BATCHES)
    test_x, test_y = read_batches(folder, ["test_batch"])
    mean = tuple(train_x.mean((0, 2, 3)).tolist())
    std = tuple(train_x.std((0, 2, 3)).tolist())
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    return ImageData("cifar10", train_x, train_y, test_x, test_y, 10, mean, std, "zeros", classes=classes)
