"""Models for the explorer: run folders on disk, or a small built-in one trained on demand."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from .. import runs
from ..config import RunConfig

ENV_RUNS = "STNLIB_RUNS"
DEFAULT_ROOTS = ("runs", "../runs", "results/runs", "../results/runs")
BUILTIN_NAME = "explorer-stn-c0"
MNIST_SHAPE = [1, 28, 28]


def search_roots(extra=()) -> list[Path]:
    """``$STNLIB_RUNS`` (``os.pathsep``-separated), then ``extra``, then the usual places."""
    env = [p for p in os.environ.get(ENV_RUNS, "").split(os.pathsep) if p]
    return [Path(p) for p in (*env, *extra, *DEFAULT_ROOTS)]


def find_runs(roots, max_depth: int = 6) -> list[Path]:
    """Finished run folders (``config.json`` + ``final.pt``) of 1x28x28 models under ``roots``."""
    found = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for config in sorted(root.rglob(runs.CONFIG)):
            folder = config.parent
            if len(folder.relative_to(root).parts) > max_depth or not (folder / runs.FINAL).is_file():
                continue
            try:
                spec = runs.read_json(config)["data"]
            except (runs.RunFolderError, KeyError):
                continue
            if list(spec["image_shape"]) == MNIST_SHAPE and folder.resolve() not in {f.resolve() for f in found}:
                found.append(folder)
    return found


def builtin_config(folder: Path, epochs: int = 40) -> RunConfig:
    """STN-C0 with an FCN localization on mnist5k rotated in +-90 degrees, its localization learning
    ten times faster: about 30 s on 2 CPU cores, 0.96 accuracy, and an ST that visibly turns digits
    back (on +-180 degrees no ST learned to undo rotations in that time)."""
    return RunConfig(dataset="mnist5k", model="CNN", localization="FCN", stn_placement=[0], rotate=True,
                     rotation_range=90.0, optimizer="adam", lr=0.001, loc_lr_multiplier=10.0, epochs=epochs,
                     seed=0, name=str(folder), device="cpu")


def train_builtin(folder: Path, on_epoch: Callable[[int, int], None] = lambda done, total: None,
                  epochs: int = 40) -> Path:
    """Train the built-in model into ``folder`` (about a minute on 2 CPU cores) and return it."""
    from ..train import fit

    done = {"epochs": 0}

    def log(line: str) -> None:
        if line.startswith("epoch "):
            done["epochs"] += 1
            on_epoch(done["epochs"], epochs)
    fit(builtin_config(folder, epochs), overwrite=Path(folder).exists(), log=log, progress=False)
    return Path(folder)
