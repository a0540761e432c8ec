"""Accuracy and ST slope against the depth k of STN-SLk and STN-DLk (claim C4 as a trend)."""
from __future__ import annotations

from ..plotting import color_of

FAMILY_COLORS = {"SL": color_of("STN-SL2"), "DL": color_of("STN-DL2")}


def plot_depth_trend(frame, axes=None):
    """One row per recipe: test accuracy (left) and the ST's orthogonal-fit slope against the true
    angle (right) for depth k = 0, 1, 2, STN-SLk and STN-DLk as two lines (their mean over seeds),
    every seed a dot. ``frame``: a DataFrame with columns ``recipe``, ``family`` (``"SL"``/``"DL"``),
    ``depth``, ``seed``, ``accuracy`` and ``slope``; depth 0 (STN-C0) belongs to both families."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    recipes = list(dict.fromkeys(frame["recipe"]))
    if axes is None:
        axes = plt.subplots(len(recipes), 2, figsize=(9.6, 3.3 * len(recipes)), squeeze=False)[1]
    for row, recipe in zip(axes, recipes):
        part = frame[frame["recipe"] == recipe]
        for ax, column, label in ((row[0], "accuracy", "test accuracy (10 rotated passes)"),
                                  (row[1], "slope", "ST slope (undone vs true angle)")):
            sns.lineplot(part, x="depth", y=column, hue="family", palette=FAMILY_COLORS, errorbar=None, marker="D",
                         ax=ax, legend=ax is row[0])
            for offset, (family, seeds) in zip((-0.05, 0.05), part.groupby("family", sort=False)):
                ax.scatter(seeds["depth"] + offset, seeds[column], color=FAMILY_COLORS[family], alpha=0.55, s=22,
                           zorder=3)  # every seed, SL left of DL: the same figure every time
            ax.set(xticks=[0, 1, 2], xlabel="localization depth k (0: STN-C0)", ylabel=label,
                   title=f"{'Accuracy' if column == 'accuracy' else 'ST slope'} against depth: {recipe} recipe")
        row[0].legend(title="family", loc="best")
    return axes
