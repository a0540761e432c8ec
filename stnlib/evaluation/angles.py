"""Predicted versus true transformation: angles (with orthogonal regression), scale and distance."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import geometry
from ..plotting import COUNT_CMAP, angle_axis, series_colors, shade_outside_training_range
from .passes import Predictions


@dataclass
class AngleFit:
    """Orthogonal (total least squares) line ``predicted = slope * true + intercept``."""

    slope: float
    intercept: float
    correlation: float  # Pearson r between true and predicted
    mean_abs_error: float  # mean |predicted - true|, degrees

    def as_dict(self) -> dict:
        return vars(self).copy()


def predicted_angles(predictions: Predictions, st: int = -1) -> torch.Tensor:
    """``(N,)`` input rotation (degrees) undone by ST application ``st`` (default: the last)."""
    return geometry.undone_angle_from_theta(predictions.thetas[:, st])


def orthogonal_fit(true: torch.Tensor, predicted: torch.Tensor) -> AngleFit:
    """Fit a line minimising perpendicular distances (both axes are noisy)."""
    points = torch.stack([true.double(), predicted.double()], 1)
    centre = points.mean(0)
    covariance = (points - centre).T @ (points - centre) / max(len(points) - 1, 1)
    eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
    direction = eigenvectors[:, -1]
    slope = (direction[1] / direction[0]).item() if direction[0].abs() > 1e-12 else float("inf")
    std = covariance.diagonal().sqrt()
    correlation = (covariance[0, 1] / (std[0] * std[1])).item() if std.prod() > 0 else 0.0
    return AngleFit(slope, (centre[1] - slope * centre[0]).item(), correlation,
                    (points[:, 1] - points[:, 0]).abs().mean().item())


def per_label_angle_statistics(predictions: Predictions, st: int = -1, num_classes: int = 10,
                               large_error: float = 60.0) -> list[dict]:
    """For each label: count, mean and std of the angle error (predicted - true), the correlation, and
    ``large_share``, the share of its images whose |error| exceeds ``large_error`` degrees."""
    predicted, rows = predicted_angles(predictions, st), []
    for label in range(num_classes):
        mask = predictions.labels == label
        true, guess = predictions.true_angle[mask], predicted[mask]
        error = guess - true
        rows.append({"label": label, "count": int(mask.sum()),
                     "mean_error": error.mean().item() if mask.any() else float("nan"),
                     "std_error": error.std().item() if mask.sum() > 1 else float("nan"),
                     "correlation": orthogonal_fit(true, guess).correlation if mask.sum() > 1 else float("nan"),
                     "large_share": (error.abs() > large_error).float().mean().item() if mask.any() else float("nan")})
    return rows


# Digits that look alike after a half-turn: near +-90 degrees, a turn by +90 and one by -90 differ by a
# half-turn, which these do not show, so an ST may undo either and err by about 180 degrees.
HALF_TURN_SYMMETRIC_DIGITS = (0, 1, 8)


def correlation_breakdown(predictions: Predictions, st: int = -1, large_error: float = 60.0,
                          symmetric_labels: tuple[int, ...] = HALF_TURN_SYMMETRIC_DIGITS) -> dict:
    """What keeps the undone angle's r below 1: ``r`` over all images; ``r_without_symmetric``, leaving
    out the digits ``symmetric_labels``; ``r_without_large``, leaving out the images whose |error|
    exceeds ``large_error`` degrees; ``large_share``, the share of such images; and
    ``large_symmetric_share``, the share of them that are ``symmetric_labels`` digits."""
    true, predicted = predictions.true_angle, predicted_angles(predictions, st)
    large = (predicted - true).abs() > large_error
    symmetric = torch.isin(predictions.labels, torch.tensor(symmetric_labels, device=predictions.labels.device))
    return {"r": orthogonal_fit(true, predicted).correlation,
            "r_without_symmetric": orthogonal_fit(true[~symmetric], predicted[~symmetric]).correlation,
            "r_without_large": orthogonal_fit(true[~large], predicted[~large]).correlation,
            "large_share": large.float().mean().item(),
            "large_symmetric_share": (large & symmetric).sum().item() / max(int(large.sum()), 1),
            "symmetric_labels": list(symmetric_labels), "large_error": large_error}


def plot_large_errors_by_label(rows: dict[str, list[dict]], large_error: float = 60.0, ax=None):
    """The share of each digit's images whose undone angle errs by more than ``large_error`` degrees
    (the threshold ``rows`` were computed with), one bar per entry of ``rows``
    (``per_label_angle_statistics`` of one run each) and digit, with the digits that look alike after a
    half-turn shaded."""
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.subplots(figsize=(7.0, 3.4))[1]
    colors = series_colors(rows)
    for label in HALF_TURN_SYMMETRIC_DIGITS:
        ax.axvspan(label - 0.45, label + 0.45, color="0.9", lw=0,
                   label="looks alike after a half-turn" if label == HALF_TURN_SYMMETRIC_DIGITS[0] else None)
    width = 0.8 / len(rows)
    for i, (name, table) in enumerate(rows.items()):
        offset = (i - (len(rows) - 1) / 2) * width
        ax.bar([row["label"] + offset for row in table], [100 * row["large_share"] for row in table], width=width,
               color=colors[name], label=name)
    ax.set_xticks(range(len(next(iter(rows.values())))))
    ax.set_xlabel("digit")
    ax.set_ylabel(f"images with |error| > {large_error:g}° (%)")
    ax.set_ylim(bottom=0)
    ax.set_title("large errors of the undone angle, by digit")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return ax


@dataclass
class AngleErrorByTrueAngle:
    """The error of the undone angle (undone - true, degrees; an ST that undoes nothing has error
    -true) in equal bins of the true angle: bin ``centres`` ``(K,)``, ``count`` ``(K,)``, ``mean``
    and ``std`` of the error ``(K,)``, and ``large_share`` ``(K,)``, the share of images whose
    |error| exceeds ``large_error`` degrees."""

    centres: torch.Tensor
    count: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    large_share: torch.Tensor
    large_error: float

    def large_share_where(self, outer_than: float) -> tuple[float, float]:
        """Share of images with a large error among true angles within ``outer_than`` degrees of 0
        and beyond them, from the bins whose centres fall on either side."""
        outer = self.centres.abs() > outer_than
        shares = []
        for mask in (~outer, outer):
            count = self.count[mask].sum()
            shares.append((self.large_share[mask] * self.count[mask]).sum().item() / max(count.item(), 1))
        return shares[0], shares[1]


def angle_error_by_true_angle(true: torch.Tensor, predicted: torch.Tensor, limit: float = 90.0, bins: int = 9,
                              large_error: float = 60.0) -> AngleErrorByTrueAngle:
    """Bin ``(N,)`` true angles in ``[-limit, limit]`` into ``bins`` equal bins and summarise the error
    ``predicted - true`` of each (NaN where a bin is empty)."""
    edges = torch.linspace(-limit, limit, bins + 1, dtype=torch.float64)
    true, error = true.double(), predicted.double() - true.double()
    index = (torch.bucketize(true, edges, right=True) - 1).clamp(0, bins - 1)
    count = torch.bincount(index, minlength=bins)
    nan = torch.full((bins,), float("nan"), dtype=torch.float64)
    mean, std, large = nan.clone(), nan.clone(), nan.clone()
    for k in range(bins):
        in_bin = error[index == k]
        if len(in_bin):
            mean[k], large[k] = in_bin.mean(), (in_bin.abs() > large_error).double().mean()
        if len(in_bin) > 1:
            std[k] = in_bin.std()
    return AngleErrorByTrueAngle((edges[1:] + edges[:-1]) / 2, count, mean, std, large, large_error)


def plot_angle_error_by_true_angle(curves: dict[str, AngleErrorByTrueAngle], axes=None):
    """Left: mean error of the undone angle (band: one std) against the true angle, one line per
    entry of ``curves``, beside the line of an ST that undoes nothing; right: the share of images
    whose error is large, per bin."""
    import matplotlib.pyplot as plt

    axes = axes if axes is not None else plt.subplots(1, 2, figsize=(9.5, 3.6))[1]
    colors = series_colors(curves)
    limit = max((c.centres.abs().max() + (c.centres[1] - c.centres[0]) / 2).item() for c in curves.values())
    xs = torch.tensor([-limit, limit])
    axes[0].plot(xs, -xs, color="0.5", lw=1.0, ls=":", label="an ST that undoes nothing")
    axes[0].axhline(0, color="0.25", lw=1.0, ls="--", label="undoes exactly the true angle")
    for name, curve in curves.items():
        axes[0].plot(curve.centres, curve.mean, marker="o", ms=3, color=colors[name], label=name)
        axes[0].fill_between(curve.centres, curve.mean - curve.std, curve.mean + curve.std, color=colors[name],
                             alpha=0.12, lw=0)
        axes[1].plot(curve.centres, 100 * curve.large_share, marker="o", ms=3, color=colors[name], label=name)
    angle_axis(axes[0], "x", "true rotation (degrees)", limit)
    axes[0].set_ylabel("undone − true (degrees)")
    axes[0].set_title("mean error of the undone angle (band: ± one std)")
    axes[0].legend(loc="lower left", fontsize="small")
    angle_axis(axes[1], "x", "true rotation (degrees)", limit)
    large_error = next(iter(curves.values())).large_error
    axes[1].set_ylabel(f"images with |error| > {large_error:g}° (%)")
    axes[1].set_ylim(bottom=0)
    axes[1].set_title("where the large errors are")
    return axes


def plot_angle_histogram(true: torch.Tensor, predicted: torch.Tensor, title: str = "", ax=None,
                         limit: float = 180.0, bins: int = 60, training_range: float = 90.0):
    """2-D histogram (seaborn, with a colour bar of image counts) of the rotation the ST undoes
    against the true one, the orthogonal regression line and the diagonal of a perfect ST; angles
    outside the training range are shaded."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    ax = ax or plt.subplots(figsize=(4.6, 4))[1]
    edges = torch.linspace(-limit, limit, bins + 1).numpy()
    sns.histplot(x=true.numpy(), y=predicted.clamp(-limit, limit).numpy(), bins=(edges, edges), cmap=COUNT_CMAP,
                 cbar=True, cbar_kws={"label": "test images", "shrink": 0.8}, ax=ax)
    fit = orthogonal_fit(true, predicted)
    xs = torch.tensor([-limit, limit]).numpy()
    ax.plot(xs, xs, color="0.25", lw=1.0, ls="--", label="undoes exactly the true angle")
    ax.plot(xs, fit.slope * xs + fit.intercept, color="#0173b2", lw=1.8,
            label=f"fit: slope {fit.slope:.2f}, r = {fit.correlation:.2f}")
    shade_outside_training_range(ax, limit, training_range)
    angle_axis(ax, "x", "true rotation (degrees, + = counter-clockwise)", limit)
    angle_axis(ax, "y", "rotation undone by the ST (degrees)", limit)
    ax.set_title(title)
    ax.legend(loc="upper left")
    return ax


@dataclass
class TransformationStatistics:
    """Per test image, for one ST: predicted ``scale`` ``(N,)``, ``distance`` ``(N,)`` (how far the
    input's centre moves, normalised units) and, where the data has them, the true values."""

    scale: torch.Tensor
    distance: torch.Tensor
    true_scale: torch.Tensor | None = None
    true_distance: torch.Tensor | None = None


def transformation_statistics(predictions: Predictions, st: int = -1, true_scale=None,
                              true_shift=None) -> TransformationStatistics:
    theta = predictions.thetas[:, st]
    return TransformationStatistics(
        geometry.scale_from_theta(theta), geometry.shift_from_theta(theta).norm(dim=1),
        true_scale, true_shift.norm(dim=1) if true_shift is not None else None)


def plot_transformation_statistics(stats: TransformationStatistics, axes=None):
    """Predicted scale and distance: against the true values when known, else as histograms."""
    import matplotlib.pyplot as plt

    axes = axes if axes is not None else plt.subplots(1, 2, figsize=(8, 3.2))[1]
    for ax, predicted, true, name in ((axes[0], stats.scale, stats.true_scale, "scale"),
                                      (axes[1], stats.distance, stats.true_distance, "distance")):
        if true is None:
            ax.hist(predicted.numpy(), bins=40, color="tab:blue")
            ax.set(xlabel=f"predicted {name}", ylabel="images")
        else:
            ax.scatter(true.numpy(), predicted.numpy(), s=2, alpha=0.3)
            ax.set(xlabel=f"true {name}", ylabel=f"predicted {name}")
        ax.set_title(f"ST {name}")
    return axes
