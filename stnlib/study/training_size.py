"""Accuracy against the number of training examples: one run per size, finished runs reused."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ..runs import METRICS, read_json
from ..train import fit


def accuracy_vs_training_size(config, data, sizes, log=lambda _: None) -> list[dict]:
    """Train ``config`` on the first ``n`` training images for each ``n`` in ``sizes``.

    ``config.name`` is a folder under which each size gets its own run folder
    (``n<size>``); finished runs are reused. Returns ``[{"examples", "test_accuracy"}]``.
    """
    rows = []
    for n in sizes:
        folder = Path(config.name) / f"n{n}"
        if (folder / METRICS).is_file():
            accuracy = read_json(folder / METRICS)["test_accuracy"]
        else:
            result = fit(dataclasses.replace(config, name=str(folder)), overwrite=True, data=data.head(train=n),
                         log=log, progress=False)[0]
            accuracy = result.metrics["test_accuracy"]
        rows.append({"examples": n, "test_accuracy": accuracy})
    return rows
