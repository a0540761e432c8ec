"""Loss and accuracy on (randomly transformed) test data; accuracy by angle; confusion matrix."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .. import geometry
from ..data import BatchLoader, RandomRotation
from ..device import autocast
from ..losses import classification_loss
from ..losses import correct as count_correct
from ..models.modes import eval_mode
from ..plotting import angle_axis, color_of, palette, shade_outside_training_range
from .angles import orthogonal_fit
from .passes import EVAL_BATCH_SIZE, Predictions


@dataclass
class Score:
    loss: float  # mean cross-entropy
    accuracy: float  # share of correct predictions, in [0, 1]
    # For models with STs on rotated data: orthogonal-fit slope and Pearson r of the angle the
    # last ST undoes against the true angle (nan otherwise).
    angle_slope: float = float("nan")
    angle_r: float = float("nan")
    correct: torch.Tensor | None = None  # (N,) bool: which images were classified right


@torch.no_grad()
def evaluate(model, images: torch.Tensor, labels: torch.Tensor, augmentation: RandomRotation,
             generator: torch.Generator | None = None, precision: str = "fp32",
             batch_size: int = EVAL_BATCH_SIZE) -> Score:
    """One pass over ``images`` ``(N, C, H, W)`` with fresh random transformations.

    The model runs in eval mode; its training mode is restored afterwards.
    """
    with eval_mode(model):
        loss_sum = torch.zeros((), device=images.device)
        read_angles = getattr(model, "has_st", False)
        true_angles, undone_angles, hits = [], [], []
        for batch in BatchLoader(images, labels, batch_size):
            batch = augmentation(batch, generator)
            with autocast(images.device, precision):
                if read_angles:
                    seen = model.inspect(batch.images)
                    logits = seen.logits
                else:
                    logits = model(batch.images)
            if read_angles and seen.sts and batch.true.angle is not None:
                true_angles.append(batch.true.angle.float().cpu())
                undone_angles.append(geometry.undone_angle_from_theta(seen.sts[-1].theta).cpu())
            loss_sum += classification_loss(logits, batch.labels, reduction="sum")
            hits.append(count_correct(logits, batch.labels))
    correct = torch.cat(hits).bool().cpu()  # one host sync for the whole pass
    score = Score(loss=loss_sum.item() / len(images), accuracy=correct.float().mean().item(), correct=correct)
    if true_angles:
        fit = orthogonal_fit(torch.cat(true_angles), torch.cat(undone_angles))
        score.angle_slope, score.angle_r = fit.slope, fit.correlation
    return score


def test_correctness(model, images: torch.Tensor, labels: torch.Tensor, augmentation: RandomRotation,
                     passes: int = 10, seed: int = 0, precision: str = "fp32", *,
                     done: torch.Tensor | None = None, generator: torch.Generator | None = None,
                     stop: Callable[[], bool] | None = None) -> torch.Tensor:
    """``(passes, N)`` bool: which images each pass classified right, each pass with fresh random
    transformations drawn from ``seed``. Two models scored with the same ``seed`` see the very same
    transformed images, so their rows can be compared image by image (a paired test).

    To score in parts: ``generator`` (seeded with ``seed``, advanced by every pass) and ``done``, the
    ``(k, N)`` rows of the passes already scored with it, continue where they left off; ``stop()``,
    asked before each pass, ends the scoring early, and fewer than ``passes`` rows come back.
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(seed)
    rows = list(done) if done is not None else []
    while len(rows) < passes and not (stop is not None and stop()):
        rows.append(evaluate(model, images, labels, augmentation, generator, precision).correct)
    return torch.stack(rows) if rows else torch.zeros(0, len(images), dtype=torch.bool)


def test_accuracy(model, images: torch.Tensor, labels: torch.Tensor, augmentation: RandomRotation,
                  passes: int = 10, seed: int = 0, precision: str = "fp32") -> list[float]:
    """Accuracy of each of ``passes`` passes, each with fresh random transformations.

    The original's final score is the mean of 10 such passes.
    """
    correctness = test_correctness(model, images, labels, augmentation, passes, seed, precision)
    return correctness.float().mean(1).tolist()


@dataclass
class AngleAccuracy:
    centres: torch.Tensor  # (K,) degrees, the middle of each angle bin
    accuracy: torch.Tensor  # (K,) share correct in the bin (nan when empty)
    count: torch.Tensor  # (K,) images in the bin


def accuracy_by_angle(predictions: Predictions, bins: int = 12, max_degrees: float = 90.0) -> AngleAccuracy:
    """Accuracy as a function of the test rotation angle, in ``bins`` equal bins of ``[-max, max]``."""
    edges = torch.linspace(-max_degrees, max_degrees, bins + 1)
    which = torch.bucketize(predictions.true_angle.clamp(-max_degrees, max_degrees), edges[1:-1])
    count = torch.bincount(which, minlength=bins).float()
    hits = torch.bincount(which, weights=predictions.correct.float(), minlength=bins)
    return AngleAccuracy((edges[:-1] + edges[1:]) / 2, hits / count.clamp_min(1) + torch.where(
        count > 0, 0.0, float("nan")), count)


def plot_accuracy_by_angle(curves: dict[str, AngleAccuracy], ax=None):
    """One line per model: accuracy against the test rotation angle (bins of random rotations)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    for name, curve in curves.items():
        ax.plot(curve.centres.numpy(), curve.accuracy.numpy(), marker="o", ms=3, label=name, color=color_of(name))
    limit = float(curves[next(iter(curves))].centres.abs().max()) if curves else 90.0
    angle_axis(ax, label="test rotation (degrees, + = counter-clockwise)", limit=max(limit, 90.0))
    ax.set(ylabel="accuracy", title="Accuracy by rotation angle")
    ax.legend()
    return ax


def confusion_matrix(predictions: Predictions, num_classes: int) -> torch.Tensor:
    """``(K, K)`` counts: row = true class, column = predicted class."""
    flat = predictions.labels * num_classes + predictions.predicted
    return torch.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def plot_confusion_matrix(matrix: torch.Tensor, class_names=None, ax=None):
    """Row-normalised confusion matrix as a seaborn heatmap, each cell annotated with its count."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    ax = ax or plt.subplots(figsize=(5, 4))[1]
    rates = matrix.float() / matrix.sum(1, keepdim=True).clamp_min(1)
    names = class_names or [str(i) for i in range(len(matrix))]
    sns.heatmap(rates.numpy(), ax=ax, cmap="Blues", vmin=0, vmax=1, annot=matrix.numpy(), fmt="d",
                annot_kws={"fontsize": 6}, xticklabels=names, yticklabels=names, square=True,
                cbar_kws={"label": "share of the true class"})
    ax.set(xlabel="predicted class", ylabel="true class", title="Confusion matrix")
    return ax


@torch.no_grad()
def accuracy_under_rotations(model, images: torch.Tensor, labels: torch.Tensor, count: int = 17,
                             precision: str = "fp32") -> list[dict]:
    """Accuracy with every test image turned by each of ``count`` angles evenly spaced over
    ``[-180, 180]`` (17: steps of 22.5 degrees, as the original's PlanktonSet statistics)."""
    with eval_mode(model):
        rotation, rows = RandomRotation(180.0), []
        for angle in torch.linspace(-180, 180, count).tolist():
            hits = 0
            for batch in BatchLoader(images, labels, EVAL_BATCH_SIZE):
                turned = rotation(batch, angles=torch.full((len(batch.labels),), angle))
                with autocast(images.device, precision):
                    hits += int(count_correct(model(turned.images), turned.labels).sum())
            rows.append({"angle": angle, "accuracy": hits / len(images)})
    return rows


def rotation_curves_frame(curves: dict[str, list[list[dict]]]):
    """``curves`` (architecture -> one ``accuracy_under_rotations`` result per seed) as a long
    DataFrame with columns ``architecture``, ``seed``, ``angle``, ``accuracy``."""
    import pandas as pd

    return pd.DataFrame([{"architecture": name, "seed": seed, **row} for name, seeds in curves.items()
                         for seed, rows in enumerate(seeds) for row in rows])


def plot_accuracy_under_rotations(curves: dict[str, list[list[dict]]], training_range: float = 90.0, ax=None):
    """Invariance curves: accuracy with every test image turned by each fixed angle.

    ``curves``: architecture -> one ``accuracy_under_rotations`` result per seed. Thin lines are
    seeds, the thick line their mean with a 95 % interval over seeds (seaborn); angles outside the
    training range are shaded."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    ax = ax or plt.subplots(figsize=(7, 3.8))[1]
    frame = rotation_curves_frame(curves)
    colors = palette(curves)
    sns.lineplot(frame, x="angle", y="accuracy", hue="architecture", units="seed", estimator=None, palette=colors,
                 lw=0.7, alpha=0.45, legend=False, ax=ax)
    sns.lineplot(frame, x="angle", y="accuracy", hue="architecture", palette=colors, errorbar=("ci", 95), seed=0,
                 lw=2, marker="o", ms=4, ax=ax)
    seeds = {name: len(s) for name, s in curves.items()}
    limit = float(frame["angle"].abs().max())
    shade_outside_training_range(ax, limit, training_range)
    handles, labels = ax.get_legend_handles_labels()
    labels = [f"{label} (mean of {seeds[label]} seeds)" if label in seeds else label for label in labels]
    ax.legend(handles, labels, loc="lower center")
    angle_axis(ax, label="test rotation of every image (degrees, + = counter-clockwise)", limit=limit)
    ax.set(ylim=(0, 1), ylabel="test accuracy", title="Accuracy under fixed test rotations")
    return ax
