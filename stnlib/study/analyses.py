"""The analyses the notebooks share, as functions of trained runs: accuracy over seeds, two
architectures on the same test images, and how much of each rotation an ST undoes.

``trained`` is what ``Study.trained`` returns: each architecture's label (``STN-C0``) and its runs,
one per seed, in seed order.
"""
from __future__ import annotations

import math
import statistics
from typing import Callable

from ..evaluation import PairedComparison, Predictions, orthogonal_fit, paired_comparison, predicted_angles
from ..runs import Run


def accuracy_table(trained: dict[str, list[Run]]) -> list[dict]:
    """One row per label: its architecture, every seed's test accuracy, their mean and standard deviation
    (NaN for one seed), and the mean accuracy on the last epoch's training batches."""
    rows = []
    for label, seeds in trained.items():
        accuracies = [r.metrics["test_accuracy"] for r in seeds]
        rows.append({"variant": label, "architecture": seeds[0].architecture, "accuracies": accuracies,
                     "mean": statistics.mean(accuracies),
                     "std": statistics.stdev(accuracies) if len(accuracies) > 1 else float("nan"),
                     "final_train_accuracy": statistics.mean(r.metrics["final_train_accuracy"] for r in seeds)})
    return rows


def compare(trained: dict[str, list[Run]], a: str, b: str) -> PairedComparison:
    """``a`` against ``b`` (labels in ``trained``) on the same rotated test images, seed by seed
    (``paired_comparison`` of each run's ``test_correct``, ``(passes, N)`` bool)."""
    return paired_comparison([r.test_correct for r in trained[a]], [r.test_correct for r in trained[b]],
                             names=(a, b))


def angle_fits(seeds: list[Run], predict: Callable[[Run], Predictions]) -> list[dict]:
    """Per run: the undone angle of its last ST against the true angle of ``predict(run)`` (one rotated
    pass of the analysis images, ``Study.predictions``): the orthogonal fit's ``slope``, ``correlation``
    (r) and ``mean_abs_error``, and ``original_std``, the original code's statistic: the std of true
    minus undone angle in degrees (52 for an ST that undoes nothing under +-90 degree rotations)."""
    fits = []
    for run in seeds:
        predictions = predict(run)
        undone = predicted_angles(predictions)
        fit = orthogonal_fit(predictions.true_angle, undone).as_dict()
        fits.append({**fit, "original_std": (predictions.true_angle - undone).std().item()})
    return fits


def accuracy_markdown(rows: list[dict]) -> str:
    """``accuracy_table`` rows as a markdown table."""
    import pandas as pd

    table = pd.DataFrame({
        "variant": [r["variant"] for r in rows],
        "architecture": [r["architecture"] for r in rows],
        "test accuracy (mean ± std over seeds)": [
            f"{r['mean']:.4f}" + ("" if math.isnan(r["std"]) else f" ± {r['std']:.4f}") for r in rows],
        "seeds": [str(len(r["accuracies"])) for r in rows],
        "train accuracy": [f"{r['final_train_accuracy']:.4f}" for r in rows],
    })
    return table.to_markdown(index=False, disable_numparse=True)
