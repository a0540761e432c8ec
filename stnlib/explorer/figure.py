"""One matplotlib figure, created once and updated in place for every slider move."""
from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure

from ..plotting import shared_image_scale
from .state import View


class ExplorerFigure:
    """Draws a ``View``: input, ST outputs, a dial of predicted vs true angle, the running scatter,
    class probabilities and, for feature-map STs, feature maps. ``render`` returns PNG bytes.

    Artists are created on the first draw and only their data changes afterwards.
    """

    def __init__(self, num_classes: int = 10, dpi: int = 72):
        self.figure = Figure(figsize=(11, 4.6), dpi=dpi)
        self.num_classes = num_classes
        self._layout: tuple | None = None
        self.artists: dict = {}

    def _build(self, view: View) -> None:
        fig = self.figure
        fig.clear()
        fig.subplots_adjust(bottom=0.17, top=0.88, wspace=0.45, hspace=0.5)  # room for the caption and titles
        panels = 1 + len(view.st_outputs)
        grid = fig.add_gridspec(2, max(panels, 3) + 2)
        self.artists = {"images": []}
        image_axes = []
        for i, (title, image) in enumerate([("input", view.input)] + view.st_outputs):
            ax = fig.add_subplot(grid[0, i])
            self.artists["images"].append(ax.imshow(np.zeros(tuple(image.shape)), cmap="gray", vmin=0, vmax=1))
            ax.set_title(title, fontsize=8)
            ax.axis("off")
            image_axes.append(ax)
        self._colorbar(self.artists["images"][0], image_axes[-1], "intensity (one scale)")
        dial = fig.add_subplot(grid[0, -2], projection="polar")
        dial.set_theta_zero_location("N")
        dial.set_yticks([])
        dial.set_title("rotation: true (blue), undone by ST (red)", fontsize=7)
        self.artists["true_hand"], = dial.plot([0, 0], [0, 1], color="tab:blue", lw=3)
        self.artists["predicted_hand"], = dial.plot([0, 0], [0, 0.8], color="tab:red", lw=3)
        bars_ax = fig.add_subplot(grid[0, -1])
        self.artists["bars"] = bars_ax.bar(range(self.num_classes), np.zeros(self.num_classes), color="tab:gray")
        bars_ax.set(ylim=(0, 1), xticks=range(self.num_classes), title="class probabilities")
        bars_ax.title.set_fontsize(8)
        scatter_ax = fig.add_subplot(grid[1, 0:2])
        self.artists["trail"], = scatter_ax.plot([], [], ".", color="tab:red", ms=3, alpha=0.5)
        self.artists["now"], = scatter_ax.plot([], [], "o", color="black", ms=6)
        scatter_ax.plot([-180, 180], [-180, 180], "--", color="gray", lw=0.8)
        scatter_ax.set(xlim=(-180, 180), ylim=(-180, 180), xlabel="rotation of the input (degrees)",
                       ylabel="undone by the ST (degrees)")
        self.artists["features"] = []
        feature_axes = []
        for i, title in enumerate(view.features):
            ax = fig.add_subplot(grid[1, 2 + i])
            self.artists["features"].append(ax.imshow(np.zeros(tuple(view.features[title].shape)), cmap="viridis"))
            ax.set_title(title, fontsize=7)
            ax.axis("off")
            feature_axes.append(ax)
        if feature_axes:  # the channel before and after the ST and for the upright digit: one scale
            self._colorbar(self.artists["features"][0], feature_axes[-1], "activation (one scale)")
        self.artists["caption"] = fig.text(0.01, 0.01, "", fontsize=9)
        self._layout = self._layout_key(view)

    def _colorbar(self, mappable, beside, label: str) -> None:
        """A thin colour bar just right of the axes ``beside``, as tall as it."""
        box = beside.get_position()
        bar = self.figure.colorbar(mappable, cax=self.figure.add_axes([box.x1 + 0.006, box.y0, 0.007, box.height]))
        bar.set_label(label, fontsize=7)
        bar.ax.tick_params(labelsize=7)

    @staticmethod
    def _layout_key(view: View) -> tuple:
        return (tuple(t for t, _ in view.st_outputs), tuple(view.features), tuple(view.input.shape))

    def draw(self, view: View, trail: list[tuple[float, float]]) -> None:
        if self._layout != self._layout_key(view):
            self._build(view)
        panels = [view.input] + [image for _, image in view.st_outputs]
        low, high = min(0.0, *(float(p.min()) for p in panels)), max(1.0, *(float(p.max()) for p in panels))
        for artist, image in zip(self.artists["images"], panels):  # one intensity scale for every panel
            artist.set_data(image.numpy())
            artist.set_clim(low, high)
        true = np.deg2rad(view.angle)
        self.artists["true_hand"].set_xdata([true, true])
        predicted = np.deg2rad(view.predicted_angle) if view.predicted_angle is not None else true
        self.artists["predicted_hand"].set_xdata([predicted, predicted])
        self.artists["predicted_hand"].set_visible(view.predicted_angle is not None)
        for bar, p in zip(self.artists["bars"], view.probabilities.tolist()):
            bar.set_height(p)
            bar.set_color("tab:green" if bar is self.artists["bars"][view.label] else "tab:gray")
        if trail:
            xs, ys = zip(*trail)
            self.artists["trail"].set_data(xs, ys)
            self.artists["now"].set_data([xs[-1]], [ys[-1]])
        maps = list(view.features.values())
        if maps:
            low, high = shared_image_scale(maps)
            for artist, image in zip(self.artists["features"], maps):
                artist.set_data(image.numpy())
                artist.set_clim(low, high)
        guess = int(view.probabilities.argmax())
        undone = "no ST" if view.predicted_angle is None else f"ST undoes {view.predicted_angle:+.1f}°"
        self.artists["caption"].set_text(f"digit #{view.digit} (label {view.label}) rotated {view.angle:+.0f}°, "
                                         f"scale {view.scale:.2f}; {undone}; predicted class {guess}")

    def render(self, view: View, trail: list[tuple[float, float]]) -> bytes:
        """Update the figure and return it as PNG bytes."""
        self.draw(view, trail)
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        return buffer.getvalue()
