"""Models for the explorer: run folders on disk, or a small built-in one trained on demand."""
from __future__ import annotations

import dataclasses
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


def explorable_run(folder) -> Path:
    """``folder`` as a ``Path`` if the explorer can show it (a finished or checkpointed run of a
    1x28x28 model); a ``RunFolderError`` naming it otherwise."""
    folder = Path(folder)
    if not (folder / runs.CONFIG).is_file():
        raise runs.RunFolderError(f"{folder} is not a run folder (no {runs.CONFIG}); "
                                  f"give a folder written by python -m stnlib.learn")
    shape = runs.read_run_config(folder)["data"]["image_shape"]
    if list(shape or []) != MNIST_SHAPE:
        raise runs.RunFolderError(f"{folder} holds a model of {shape} images; the explorer shows 1x28x28 MNIST models")
    return folder


def find_runs(roots, max_depth: int = 6) -> list[Path]:
    """Finished run folders (``config.json`` + ``final.pt``) of 1x28x28 models under ``roots``; a
    folder whose ``config.json`` is damaged or not a run's is passed over."""
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
                spec = runs.read_run_config(folder)["data"]
            except runs.RunFolderError:
                continue
            if list(spec["image_shape"]) == MNIST_SHAPE and folder.resolve() not in {f.resolve() for f in found}:
                found.append(folder)
    return found


def builtin_config(folder: Path, epochs: int | None = None) -> RunConfig:
    """The study's STN-C0 (quick profile, seed 0, on the CPU): an FCN localization on mnist5k rotated
    in +-90 degrees, trained with the quick recipe (``stnlib.study.profiles.QUICK_RECIPE``), so the
    explorer's model is the one the study's figures show. ``epochs`` overrides the profile's."""
    from ..study import C0, Study

    config = Study("quick", epochs=epochs).config(C0, seed=0)
    return dataclasses.replace(config, name=str(folder), device="cpu")


def train_builtin(folder: Path, on_epoch: Callable[[int, int], None] = lambda done, total: None,
                  epochs: int | None = None) -> Path:
    """Train the built-in model into ``folder`` (about 50 s on 2 CPU cores) and return it."""
    from ..train import fit

    config = builtin_config(folder, epochs)
    fit(config, overwrite=Path(folder).exists(), log=lambda _: None, progress=False,
        on_epoch=lambda entry: on_epoch(entry["epoch"], config.epochs))
    return Path(folder)
