"""The explorer without widgets: a sweep of angles (for batch runs), and the redraw timing."""
from __future__ import annotations

import statistics
import time

import torch

from .figure import ExplorerFigure
from .state import ExplorerState, View


def sweep(state: ExplorerState, angles, digit: int = 0) -> list[View]:
    """The view at each angle, for one digit."""
    return [state.set(angle=float(a), digit=digit) for a in angles]


def plot_sweep(views: list[View]):
    """Top row: the rotated digit; middle row: after the last ST; bottom: undone vs true angle."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(1.2 * len(views), 5.2))
    grid = fig.add_gridspec(3, len(views), height_ratios=[1, 1, 1.6])
    for i, view in enumerate(views):
        for row, image in ((0, view.input), (1, view.st_outputs[-1][1] if view.st_outputs else view.input)):
            ax = fig.add_subplot(grid[row, i])
            ax.imshow(image.numpy(), cmap="gray")
            ax.axis("off")
        fig.axes[-2].set_title(f"{view.angle:+.0f}°\nclass {int(view.probabilities.argmax())}", fontsize=7)
    ax = fig.add_subplot(grid[2, :])
    ax.plot([v.angle for v in views], [v.predicted_angle for v in views], "o-", color="tab:red", label="undone by ST")
    ax.plot([-180, 180], [-180, 180], "--", color="gray", label="perfect")
    ax.set(xlabel="rotation of the input (degrees)", ylabel="undone by the ST", xlim=(-185, 185), ylim=(-185, 185))
    ax.legend(fontsize=7)
    return fig


def redraw_milliseconds(state: ExplorerState, figure: ExplorerFigure | None = None, moves: int = 40) -> float:
    """Median time of one slider move: recompute the view and render the PNG, in milliseconds."""
    figure = figure or ExplorerFigure()
    figure.render(state.view, state.trail)  # the first draw builds the figure
    times = []
    for angle in torch.linspace(-180, 180, moves).tolist():
        start = time.perf_counter()
        figure.render(state.set(angle=angle), state.trail)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)
