"""Shared fixtures: small datasets built in memory, and a CLI runner."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest
import torch

from stnlib.data import ImageData, load_dataset

ROOT = Path(__file__).resolve().parents[1]


def tiny_data(n_train: int = 64, n_test: int = 32, shape=(1, 28, 28), classes: int = 10, seed: int = 0) -> ImageData:
    """Random images with a bright square whose position encodes the label."""
    g = torch.Generator().manual_seed(seed)

    def split(n):
        labels = torch.randint(classes, (n,), generator=g)
        images = torch.rand(n, *shape, generator=g) * 0.1
        for i, label in enumerate(labels.tolist()):
            row = 2 + (label * 3) % (shape[1] - 8)
            images[i, :, row:row + 6, 4:10] = 1.0
        return images, labels

    (train_x, train_y), (test_x, test_y) = split(n_train), split(n_test)
    return ImageData("tiny", train_x, train_y, test_x, test_y, classes, mean=(0.5,) * shape[0],
                     std=(0.3,) * shape[0], padding_mode="border")


@pytest.fixture
def tiny():
    return tiny_data()


@pytest.fixture(scope="session")
def mnist5k() -> ImageData:
    return load_dataset("mnist5k")


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m stnlib.learn ARGS`` in a subprocess; returns the completed process."""
    return subprocess.run([sys.executable, "-m", "stnlib.learn", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
