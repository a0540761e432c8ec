"""Datasets by name.

A dataset is registered with a loader ``load(root: Path) -> ImageData``. Loaders
read what is on disk under ``root`` (downloading where that is possible) and
raise ``DataError`` with a one-line remedy when the data is not there.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import UnknownNameError
from .images import ImageData

ENV_DATA_ROOT = "STNLIB_DATA"


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    load: Callable[[Path], ImageData]
    description: str
    kind: str = "rotation"  # ImageData.kind of what it loads, known without loading it


DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(name: str, description: str, kind: str = "rotation"):
    def decorator(load: Callable[[Path], ImageData]):
        DATASETS[name] = DatasetEntry(name, load, description, kind)
        return load
    return decorator


def dataset_kind(name: str) -> str:
    """The batch transformation of dataset ``name`` (``ImageData.kind``) without loading it;
    ``"rotation"`` for names that are not registered (precomputed folders)."""
    return DATASETS[name].kind if name in DATASETS else "rotation"


def default_data_root() -> Path:
    """``$STNLIB_DATA``, else ``$XDG_CACHE_HOME/stnlib`` (``~/.cache/stnlib``)."""
    if os.environ.get(ENV_DATA_ROOT):
        return Path(os.environ[ENV_DATA_ROOT]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "stnlib"


def load_dataset(name: str, root: str | os.PathLike | None = None) -> ImageData:
    """Load a registered dataset, or a precomputed folder prefix, into memory (CPU tensors)."""
    from .precomputed import load_precomputed, looks_like_prefix

    if name not in DATASETS:
        if looks_like_prefix(name):
            return load_precomputed(name)
        raise UnknownNameError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}, "
                               f"or a precomputed folder prefix such as data/svhn/")
    return DATASETS[name].load(Path(root).expanduser() if root else default_data_root())
