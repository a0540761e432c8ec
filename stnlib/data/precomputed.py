"""The original's "precomputed" datasets, read as they are.

A dataset argument that is a folder prefix ``DIR/PREFIX`` means: images under ``DIR/images/``, and
``DIR/PREFIXtrain.csv`` / ``DIR/PREFIXtest.csv``. The first CSV row holds the per-channel mean
then the per-channel std (0-255 scale); every other row is ``path,label[,label...]`` with the path
relative to ``images/``. Several labels per row (SVHN's five digit positions) make a multi-label
dataset. A prefix whose path contains a ``plankton`` folder gets the PlanktonSet augmentation.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .images import ImageData


def looks_like_prefix(name: str) -> bool:
    return "/" in name or Path(f"{name}train.csv").is_file()


def read_split(csv_path: Path, images: Path) -> tuple[list[float], torch.Tensor, torch.Tensor]:
    """``(mean and std row, images (N, C, H, W) in [0, 1], labels (N,) or (N, K))``."""
    from PIL import Image

    try:
        with open(csv_path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError:
        raise DataError(f"{csv_path} does not exist; prepare the data with python -m stnlib.prepare") from None
    except UnicodeDecodeError as error:
        raise DataError(f"{csv_path} is not UTF-8 text (byte {error.start} cannot be read); a precomputed "
                        f"dataset's CSV holds the mean and std, then image paths and labels") from None
    except (OSError, csv.Error) as error:
        raise DataError(f"cannot read {csv_path}: {getattr(error, 'strerror', None) or error}") from None
    if len(rows) < 2:
        raise DataError(f"{csv_path} holds no images (its first row is the mean and std)")
    try:
        stats = [float(v) for v in rows[0]]
    except ValueError:
        raise DataError(f"{csv_path} line 1 must hold the per-channel mean and std, got {rows[0][:6]}") from None
    channels = len(stats) // 2
    if channels not in (1, 3) or len(stats) != 2 * channels:
        raise DataError(f"{csv_path} line 1 must hold 2 or 6 numbers (mean and std per channel), got {len(stats)}")
    if not all(math.isfinite(v) for v in stats) or min(stats[channels:]) <= 0:
        raise DataError(f"{csv_path} line 1: every std must be a number > 0 (the inputs are divided by it), "
                        f"got {stats[channels:]}")
    pixels, labels, shape = [], [], None
    for line, row in enumerate(rows[1:], start=2):
        if len(row) < 2 or len(row) != len(rows[1]):
            raise DataError(f"{csv_path} line {line}: expected path and {len(rows[1]) - 1} label(s), got {row}")
        try:
            labels.append([int(v) for v in row[1:]])
        except ValueError:
            raise DataError(f"{csv_path} line {line}: labels must be integers, got {row[1:]}") from None
        if min(labels[-1]) < 0:
            raise DataError(f"{csv_path} line {line}: labels must be class indices >= 0, got {row[1:]}")
        try:
            with Image.open(images / row[0]) as image:
                array = np.asarray(image.convert("L" if channels == 1 else "RGB"))
        except Image.DecompressionBombError:
            raise DataError(f"{csv_path} line {line}: image {images / row[0]} is too large to be a training "
                            f"image (over {2 * Image.MAX_IMAGE_PIXELS:,} pixels)") from None
        except (OSError, ValueError):
            raise DataError(f"{csv_path} line {line}: cannot read image {images / row[0]}") from None
        if shape is None:
            shape = array.shape
        elif array.shape != shape:
            raise DataError(f"{csv_path} line {line}: image {row[0]} is {array.shape[1::-1]} pixels, "
                            f"the others {shape[1::-1]}")
        pixels.append(array)
    stacked = torch.from_numpy(np.stack(pixels)).float() / 255
    stacked = stacked.unsqueeze(1) if channels == 1 else stacked.permute(0, 3, 1, 2)
    labels = torch.tensor(labels)
    return stats, stacked.contiguous(), labels[:, 0] if labels.shape[1] == 1 else labels


def load_precomputed(prefix: str) -> ImageData:
    directory, stem = Path(prefix).parent, Path(prefix).name if not prefix.endswith("/") else ""
    directory = Path(prefix) if prefix.endswith("/") else directory
    images = directory / "images"
    stats, train_x, train_y = read_split(directory / f"{stem}train.csv", images)
    _, test_x, test_y = read_split(directory / f"{stem}test.csv", images)
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(f"train images are {tuple(train_x.shape[1:])} but test images {tuple(test_x.shape[1:])}")
    channels = train_x.shape[1]
    multi = train_y.dim() == 2
    num_classes = 11 if multi else int(max(train_y.max(), test_y.max())) + 1
    plankton = "plankton" in Path(prefix).parts
    return ImageData(prefix, train_x, train_y, test_x, test_y, num_classes,
                     mean=tuple(v / 255 for v in stats[:channels]), std=tuple(v / 255 for v in stats[channels:]),
                     padding_mode="border" if plankton else "zeros", kind="plankton" if plankton else "rotation")
