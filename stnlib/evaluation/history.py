"""Training curves, and accuracy against the number of training examples (trained by
``stnlib.study.accuracy_vs_training_size``)."""
from __future__ import annotations

from ..plotting import color_of, palette, series_colors


def history_frame(histories: dict[str, list[list[dict]]]):
    """``histories`` (name -> one ``history.json`` list per seed) as a long DataFrame: one row per
    name, seed, epoch and split (``train``/``test``), with ``loss`` and ``accuracy``."""
    import pandas as pd

    return pd.DataFrame([{"name": name, "seed": seed, "epoch": entry["epoch"], "split": split,
                          "loss": entry[f"{split}_loss"], "accuracy": entry[f"{split}_accuracy"]}
                         for name, seeds in histories.items() for seed, history in enumerate(seeds)
                         for entry in history for split in ("train", "test")])


def plot_history(histories: dict[str, list[list[dict]] | list[dict]], axes=None):
    """Loss and accuracy per epoch for every name, on the test split (solid) and the training
    split (dashed). ``histories``: name -> a ``history.json`` list, or one list per seed; with
    several seeds seaborn draws their mean and a 95 % interval."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    histories = {name: value if value and isinstance(value[0], list) else [value]
                 for name, value in histories.items()}
    axes = axes if axes is not None else plt.subplots(1, 2, figsize=(10, 3.6))[1]
    frame = history_frame(histories)
    seeds = max(len(v) for v in histories.values())
    for ax, key, label in ((axes[0], "loss", "cross-entropy"), (axes[1], "accuracy", "accuracy")):
        sns.lineplot(frame, x="epoch", y=key, hue="name", style="split", style_order=["test", "train"],
                     palette=palette(histories), errorbar=("ci", 95) if seeds > 1 else None, seed=0, ax=ax)
        ax.set(xlabel="epoch", ylabel=label)
    axes[0].set_title("Loss" + (f" (mean of {seeds} seeds, 95 % interval)" if seeds > 1 else ""))
    axes[1].set_title("Accuracy" + (f" (mean of {seeds} seeds, 95 % interval)" if seeds > 1 else ""))
    axes[0].get_legend().remove()
    axes[1].legend(loc="lower right")
    return axes


def plot_accuracy_vs_training_size(curves: dict[str, list[dict]], ax=None):
    """Test accuracy against the number of training images (log scale), one line per name."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(5, 3.5))[1]
    for name, rows in curves.items():
        ax.plot([r["examples"] for r in rows], [r["test_accuracy"] for r in rows], marker="o", label=name,
                color=color_of(name))
    ax.set(xscale="log", xlabel="training examples", ylabel="test accuracy", title="Accuracy vs training set size")
    ax.legend()
    return ax


def plot_st_learning(curves: dict[str, list[list[dict]]], images_per_epoch: int, axes=None):
    """How fast an ST learns to undo rotations: the undone-angle slope and r on the test split after
    every epoch, against the training images seen. ``curves``: recipe name -> one history per seed
    (entries with ``angle_slope`` and ``angle_r``, see ``stnlib.train``); one thin line per seed."""
    import matplotlib.pyplot as plt

    axes = axes if axes is not None else plt.subplots(1, 2, figsize=(10, 4.0), sharex=True, layout="constrained")[1]
    colors = series_colors(curves)
    for index, (name, histories) in enumerate(curves.items()):
        for seed, history in enumerate(histories):
            seen = [e["epoch"] * images_per_epoch for e in history]
            for ax, key in ((axes[0], "angle_slope"), (axes[1], "angle_r")):
                ax.plot(seen, [e[key] for e in history], color=color_of("STN-C0") if index == 0 else colors[name],
                        lw=1.2, alpha=0.85,
                        label=name if seed == 0 else None)
    for ax, title, target in ((axes[0], "Slope of undone vs true angle", 0.8), (axes[1], "r (undone, true angle)", 0.9)):
        ax.axhline(target, color="0.3", ls=":", lw=1, label="target: slope 0.8, r 0.9" if ax is axes[0] else None)
        ax.set(xlabel="training images seen", title=title, ylim=(-0.05, 1.05))
    axes[0].set_ylabel("slope (1 = undoes the whole rotation)")
    axes[1].set_ylabel("r")
    # Below both panels: inside, the legend hid the curves of a recipe whose ST stays near 0.
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].figure.legend(handles, labels, loc="outside lower center", ncol=len(labels))
    return axes
