"""The explorer without widgets: one digit's views at a series of angles (for batch runs), and the redraw timing."""
from __future__ import annotations

import statistics
import time

import torch

from ..plotting import angle_axis, color_of, colorbar, image_panel, shade_outside_training_range
from .figure import ExplorerFigure
from .state import ExplorerState, View


def views_at_angles(state: ExplorerState, angles, digit: int = 0) -> list[View]:
    """The view at each angle, for one digit."""
    return [state.set(angle=float(a), digit=digit) for a in angles]


def plot_views_at_angles(views: list[View]):
    """Top row: the rotated digit and the class the model predicts; middle row: what the classifier
    sees after the last ST (both rows on the intensity scale [0, 1], one colour bar); bottom: the
    rotation the ST undoes against the input's, with the training range shaded."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(1.2 * len(views) + 1.0, 5.6), layout="constrained")
    grid = fig.add_gridspec(3, len(views), height_ratios=[1, 1, 1.7])
    panels = []
    for i, view in enumerate(views):
        for row, image in ((0, view.input), (1, view.st_outputs[-1][1] if view.st_outputs else view.input)):
            ax = fig.add_subplot(grid[row, i])
            shown = image_panel(ax, image.numpy(), vmin=0, vmax=1)
            panels.append(ax)
            if row == 0:
                ax.set_title(f"{view.angle:+.0f}°\npredicted {int(view.probabilities.argmax())}", fontsize="x-small")
            if i == 0:
                ax.set_ylabel("input" if row == 0 else "after the ST", fontsize="small")
    colorbar(fig, shown, panels, "intensity")
    ax = fig.add_subplot(grid[2, :])
    ax.plot([-180, 180], [-180, 180], "--", color="0.3", lw=1, label="undoes exactly the input's rotation")
    ax.plot([v.angle for v in views], [v.predicted_angle for v in views], "o-", color=color_of("STN-C0"),
            label="undone by the ST")
    shade_outside_training_range(ax, 180.0)
    angle_axis(ax, "x", "rotation of the input (degrees, + = counter-clockwise)")
    angle_axis(ax, "y", "undone by the ST (degrees)")
    ax.legend(loc="upper left")
    fig.suptitle(f"A test digit (true class {views[0].label}) turned through a full circle", fontsize="medium")
    return fig


def redraw_milliseconds(state: ExplorerState, figure: ExplorerFigure | None = None, moves: int = 20) -> float:
    """Median time of one slider move: recompute the view and render the PNG, in milliseconds."""
    figure = figure or ExplorerFigure()
    figure.render(state.view, state.trail)  # the first draw builds the figure
    times = []
    for angle in torch.linspace(-180, 180, moves).tolist():
        start = time.perf_counter()
        figure.render(state.set(angle=angle), state.trail)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)
