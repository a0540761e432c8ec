"""Training curves, and accuracy against the number of training examples (trained by
``stnlib.study.accuracy_vs_training_size``)."""
from __future__ import annotations


def plot_history(histories: dict[str, list[dict]], axes=None):
    """Loss and accuracy per epoch; solid: test, dashed: train. ``histories``: name -> history.json entries."""
    import matplotlib.pyplot as plt

    axes = axes if axes is not None else plt.subplots(1, 2, figsize=(10, 3.5))[1]
    for index, (name, history) in enumerate(histories.items()):
        color = f"C{index % 10}"
        epochs = [e["epoch"] for e in history]
        for ax, key in ((axes[0], "loss"), (axes[1], "accuracy")):
            ax.plot(epochs, [e[f"test_{key}"] for e in history], color=color, label=name)
            ax.plot(epochs, [e[f"train_{key}"] for e in history], color=color, ls="--", alpha=0.6)
    axes[0].set(xlabel="epoch", ylabel="cross-entropy", title="Loss (dashed: train)")
    axes[1].set(xlabel="epoch", ylabel="accuracy", title="Accuracy (dashed: train)")
    axes[1].legend(fontsize=7)
    return axes


def plot_accuracy_vs_training_size(curves: dict[str, list[dict]], ax=None):
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(5, 3.5))[1]
    for name, rows in curves.items():
        ax.plot([r["examples"] for r in rows], [r["test_accuracy"] for r in rows], marker="o", label=name)
    ax.set(xscale="log", xlabel="training examples", ylabel="test accuracy", title="Accuracy vs training set size")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def plot_st_learning(curves: dict[str, list[list[dict]]], images_per_epoch: int, axes=None):
    """How fast an ST learns to undo rotations: the undone-angle slope and r on the test split after
    every epoch, against the training images seen. ``curves``: recipe name -> one history per seed
    (entries with ``angle_slope`` and ``angle_r``, see ``stnlib.train``); one thin line per seed."""
    import matplotlib.pyplot as plt

    axes = axes if axes is not None else plt.subplots(1, 2, figsize=(10, 3.6), sharex=True)[1]
    for index, (name, histories) in enumerate(curves.items()):
        for seed, history in enumerate(histories):
            seen = [e["epoch"] * images_per_epoch for e in history]
            for ax, key in ((axes[0], "angle_slope"), (axes[1], "angle_r")):
                ax.plot(seen, [e[key] for e in history], color=f"C{index % 10}", lw=1.2, alpha=0.85,
                        label=name if seed == 0 else None)
    for ax, title, target in ((axes[0], "slope of undone vs true angle", 0.8), (axes[1], "r (undone, true angle)", 0.9)):
        ax.axhline(target, color="0.3", ls=":", lw=1)
        ax.set(xlabel="training images seen", title=title, ylim=(-0.05, 1.05))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("1 = undoes the whole rotation")
    axes[0].legend(fontsize=7, loc="lower right")
    return axes
