"""Shared fixtures: small datasets built in memory, and a CLI runner."""
from __future__ import annotations

import csv
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np
import pytest
import torch

from stnlib.data import ImageData, load_dataset

ROOT = Path(__file__).resolve().parents[1]

# What some tests need beyond the core install, and how to get it. Outside CI a test whose need is
# missing skips (and -ra reports it); with STNLIB_REQUIRE_ALL_TESTS=1 (.ci/run sets it) the session
# stops before any test, with one line naming what is missing.
REQUIRE_ALL = os.environ.get("STNLIB_REQUIRE_ALL_TESTS") == "1"
NEEDS = {
    "Chromium": ("a Chromium browser for the browser test (Debian: apt-get install chromium)",
                 lambda: bool(shutil.which("chromium") or shutil.which("chromium-browser"))),
    "Playwright": ("the playwright package for the browser test (pip install stnlib[test])",
                   lambda: importlib.util.find_spec("playwright") is not None),
    "Ray": ("the ray package for the sweep tests (pip install stnlib[sweep])",
            lambda: importlib.util.find_spec("ray") is not None),
    "h5py": ("the h5py package for the SVHN preparation tests (pip install stnlib[prepare])",
             lambda: importlib.util.find_spec("h5py") is not None),
}


def missing_needs() -> list[str]:
    return [name for name, (_, present) in NEEDS.items() if not present()]


def require(name: str) -> None:
    """Skip the calling test when ``name`` (a key of ``NEEDS``) is missing; under CI, fail."""
    if name in missing_needs():
        what = NEEDS[name][0]
        if REQUIRE_ALL:
            pytest.fail(f"{name} is missing: {what}", pytrace=False)
        pytest.skip(f"{name} is missing: {what}")


def pytest_sessionstart(session):
    missing = missing_needs() if REQUIRE_ALL else []
    if missing:
        pytest.exit("missing for CI: " + "; ".join(f"{name} ({NEEDS[name][0]})" for name in missing), returncode=1)


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


def write_precomputed(folder: Path, prefix="", size=(16, 16), labels_per_row=1, rows=6, channels=1):
    """A dataset in the precomputed format (mean/std row, then image path and labels) of random
    images, ``rows`` per split, under ``folder``."""
    from PIL import Image

    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        with open(folder / f"{prefix}{split}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow([30.0] * channels + [60.0] * channels)
            for i in range(rows):
                name = f"{split}{i}.png"
                mode = "L" if channels == 1 else "RGB"
                shape = size[::-1] if channels == 1 else (*size[::-1], 3)
                Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / "images" / name)
                writer.writerow([name, *rng.integers(0, 3, labels_per_row)])


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


def interrupt_once_checkpointed(args, folder: Path, cwd: Path | None = None, timeout: float = 120):
    """Start ``python -m stnlib.learn ARGS``, press Ctrl-C (SIGINT) once ``folder`` holds its first
    checkpoint, and return the completed process's ``(returncode, stdout, stderr)``."""
    import signal
    import time

    process = subprocess.Popen([sys.executable, "-m", "stnlib.learn", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=cwd)
    deadline = time.time() + timeout
    while not (folder / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")
