"""Statistics over seeds, drawn with seaborn: every seed's accuracy beside the mean, and the paired
differences between architectures with their bootstrap interval."""
from __future__ import annotations

from ..plotting import color_of, palette
from .paired import PairedComparison


def plot_accuracy_over_seeds(accuracies: dict[str, list[float]], ax=None, transformation: str = "rotated"):
    """One column per architecture: each seed's test accuracy as a dot (swarm plot) and the mean
    with its 95 % interval over seeds (point plot). ``accuracies``: architecture -> one accuracy
    per seed; ``transformation`` names what the test passes do to the images."""
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    ax = ax or plt.subplots(figsize=(1.6 * len(accuracies) + 1.6, 3.4))[1]
    frame = pd.DataFrame([{"architecture": name, "seed": seed, "accuracy": value}
                          for name, values in accuracies.items() for seed, value in enumerate(values)])
    colors = palette(accuracies)
    sns.swarmplot(frame, x="architecture", y="accuracy", hue="architecture", palette=colors, size=7, alpha=0.8,
                  legend=False, ax=ax)  # a swarm, not random jitter: the same figure every time
    sns.pointplot(frame, x="architecture", y="accuracy", color="0.15", errorbar=("ci", 95), seed=0, linestyles="none",
                  markers="_", markersize=22, capsize=0.15, err_kws={"linewidth": 1.2}, ax=ax)
    seeds = max(len(v) for v in accuracies.values())
    ax.set(xlabel="architecture", ylabel=f"test accuracy (10 {transformation} passes)",
           title=f"Test accuracy: each seed (dots), mean and 95 % interval ({seeds} seeds)")
    return ax


def plot_paired_differences(comparisons: list[PairedComparison], ax=None, transformation: str = "rotated"):
    """One row per comparison ``a − b``: each seed's accuracy difference on the very same rotated
    (or otherwise ``transformation``-ed) test images (dots), and the mean with its
    hierarchical-bootstrap 95 % interval (bar). A row whose interval excludes 0 is resolved."""
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns
    from matplotlib.transforms import ScaledTranslation

    ax = ax or plt.subplots(figsize=(7.5, 0.8 * len(comparisons) + 1.8))[1]
    names = [f"{c.a} − {c.b}" for c in comparisons]
    frame = pd.DataFrame([{"comparison": name, "seed": seed, "difference": value}
                          for name, c in zip(names, comparisons) for seed, value in enumerate(c.per_seed)])
    sns.swarmplot(frame, x="difference", y="comparison", hue="comparison",
                  palette={name: color_of(c.b) for name, c in zip(names, comparisons)}, size=7, alpha=0.8,
                  legend=False, ax=ax)
    ax.set_ylim(len(comparisons) - 0.5, -0.5)  # one row per comparison, dots beside their interval
    for row, c in enumerate(comparisons):
        ax.errorbar(c.difference, row, xerr=[[c.difference - c.low], [c.high - c.difference]], fmt="D",
                    color="0.15", ms=5, capsize=4, lw=1.3, zorder=3,
                    label="mean, 95 % bootstrap interval" if row == 0 else None)
        # right of the interval, of every seed's dot and of the zero line, clear of the dots' radius
        ax.annotate(f"p = {c.p_value:.2g}", (max(0.0, c.high, *c.per_seed), row), xytext=(12, 0),
                    textcoords="offset points", va="center", fontsize="small")
    ax.axvline(0, color="0.4", lw=1, ls="--", label="no difference")
    values = [0.0] + [v for c in comparisons for v in (c.low, c.high, *c.per_seed)]
    span = max(values) - min(values) or 0.01
    ax.set_xlim(min(values) - 0.08 * span, max(values) + 0.3 * span)  # room for the p-values
    ax.set(xlabel=f"accuracy difference (same {transformation} test images)", ylabel="comparison (a − b)",
           title="Paired differences: each seed (dots), and over seeds and images")
    below = ax.transAxes + ScaledTranslation(0, -0.6, ax.figure.dpi_scale_trans)  # clear of the x label
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0), bbox_transform=below, ncol=2, frameon=False)
    return ax
