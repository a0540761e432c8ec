"""The house style of every stnlib figure: one seaborn theme, one colour per architecture, shared
colour scales with a colour bar, and the angle convention with the training range marked.

Angles follow ``stnlib.geometry``: degrees, positive turns the image counter-clockwise on screen.
"""
from __future__ import annotations

import zlib

TRAINING_RANGE = 90.0  # the study rotates training and test digits uniformly in +-90 degrees
OUTSIDE_TRAINING_SHADE = "0.92"
IMAGE_CMAP = "gray"  # digits and feature maps
SIGNED_CMAP = "RdBu_r"  # correlations and differences, centred on 0
COUNT_CMAP = "magma"  # 2-D histograms

# The same colour for an architecture in every figure (seaborn's "colorblind" palette).
ARCHITECTURE_COLORS = {
    "STN-C0": "#0173b2",
    "STN-C1": "#de8f05",
    "STN-C2": "#029e73",
    "no ST": "#949494",
    "STN-SL2": "#d55e00",
    "STN-DL2": "#cc78bc",
    "STN-C0x2": "#56b4e9",
    "STN-SL1": "#ca9161",
    "STN-DL1": "#fbafe4",
    "P4CNN": "#7e1e9c",
}
EXTRA_COLORS = ["#8c564b", "#17becf", "#9467bd", "#bcbd22", "#e377c2"]  # for other names: distinct from the above


def use_house_style() -> None:
    """seaborn's ``whitegrid`` theme at notebook scale, with figure defaults for saving."""
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", font_scale=0.85,
                  rc={"figure.dpi": 100, "savefig.dpi": 150, "axes.titleweight": "bold",
                      "axes.titlesize": "medium", "legend.fontsize": "small", "image.cmap": IMAGE_CMAP})


def color_of(label: str) -> str:
    """The colour of an architecture (``"STN-C0"``, ``"no ST"``, ...; text after a space and an
    opening parenthesis is ignored), the same in every figure; other labels get a fixed colour
    derived from their name."""
    key = label.split(" (")[0]
    if key in ARCHITECTURE_COLORS:
        return ARCHITECTURE_COLORS[key]
    return EXTRA_COLORS[zlib.crc32(key.encode()) % len(EXTRA_COLORS)]


def palette(labels) -> dict[str, str]:
    """``{label: colour}`` for seaborn's ``palette=`` argument."""
    return {label: color_of(label) for label in labels}


def series_colors(names) -> dict[str, str]:
    """Colours for series that are not architectures (networks, recipes): architectures keep their
    own colour, the other names take ``EXTRA_COLORS`` in order, so no two of them share one."""
    names = list(names)
    others = iter(EXTRA_COLORS * (1 + len(names) // len(EXTRA_COLORS)))
    return {name: color_of(name) if name.split(" (")[0] in ARCHITECTURE_COLORS else next(others) for name in names}


def shade_outside_training_range(ax, limit: float = 180.0, training_range: float = TRAINING_RANGE,
                                 axis: str = "x") -> None:
    """Grey out the angles beyond +-``training_range`` (never seen in training) on ``axis``."""
    span = ax.axvspan if axis == "x" else ax.axhspan
    label = f"outside the ±{training_range:g}° training range"
    span(-limit, -training_range, color=OUTSIDE_TRAINING_SHADE, zorder=0, label=label)
    span(training_range, limit, color=OUTSIDE_TRAINING_SHADE, zorder=0)


def angle_axis(ax, axis: str = "x", label: str = "rotation (degrees, + = counter-clockwise)",
               limit: float = 180.0) -> None:
    """Ticks every 45 degrees over +-``limit`` and the convention in the label."""
    ticks = [t for t in range(-180, 181, 45) if abs(t) <= limit]
    if axis == "x":
        ax.set_xlim(-limit, limit)
        ax.set_xticks(ticks)
        ax.set_xlabel(label)
    else:
        ax.set_ylim(-limit, limit)
        ax.set_yticks(ticks)
        ax.set_ylabel(label)


def shared_image_scale(images) -> tuple[float, float]:
    """``(vmin, vmax)`` covering every tensor in ``images``: one colour scale for panels compared
    with each other."""
    low = min(float(image.min()) for image in images)
    high = max(float(image.max()) for image in images)
    return low, high if high > low else low + 1e-6


def colorbar(figure, mappable, axes, label: str):
    """A colour bar for the image panels ``axes`` (all drawn on ``mappable``'s scale)."""
    bar = figure.colorbar(mappable, ax=axes, shrink=0.8, pad=0.02)
    bar.set_label(label)
    return bar


def image_panel(ax, image, title: str = "", vmin=None, vmax=None, cmap: str = IMAGE_CMAP):
    """One ``(H, W)`` image without ticks; returns the ``AxesImage`` for a colour bar."""
    shown = ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if title:
        ax.set_title(title, fontsize="small", fontweight="normal")
    return shown


def figure_problems(figure) -> list[str]:
    """What a reader of ``figure`` would miss: a plot axes without an x or y label (image panels,
    colour bars and axes whose neighbour in the same row or column carries the label are exempt),
    a figure without any title, and lines drawn in their axes' background colour."""
    from matplotlib.colors import to_rgba

    problems = []
    plots = [ax for ax in figure.axes if _is_plot(ax)]
    titled = bool(figure.get_suptitle()) or any(ax.get_title() for ax in figure.axes)
    if not titled:
        problems.append("no title on the figure or any of its axes")
    for ax in plots:
        name = ax.get_title() or f"axes {figure.axes.index(ax)}"
        for axis, label in (("x", ax.get_xlabel()), ("y", ax.get_ylabel())):
            if not label and not _labelled_by_neighbour(ax, plots, axis):
                problems.append(f"{name}: the {axis} axis has no label")
        background = to_rgba(ax.get_facecolor())
        for line in ax.get_lines():
            if line.get_visible() and len(line.get_xdata()) and to_rgba(line.get_color()) == background:
                problems.append(f"{name}: a line ({line.get_label()!r}) is drawn in the background colour")
    return problems


def _is_plot(ax) -> bool:
    """A data plot: not a colour bar, not an image panel without ticks, not an empty axes."""
    if ax.get_label() == "<colorbar>" or not ax.axison:
        return False
    if ax.images and not ax.get_xticks().size:
        return False
    return bool(ax.lines or ax.collections or ax.patches or ax.images)


def _labelled_by_neighbour(ax, plots, axis: str) -> bool:
    """Whether another plot sharing ``ax``'s row (for y) or column (for x) carries the label."""
    spec = ax.get_subplotspec()
    if spec is None:
        return False
    for other in plots:
        other_spec = other.get_subplotspec()
        if other is ax or other_spec is None or other_spec.get_gridspec() is not spec.get_gridspec():
            continue
        same = (other_spec.colspan == spec.colspan) if axis == "x" else (other_spec.rowspan == spec.rowspan)
        label = other.get_xlabel() if axis == "x" else other.get_ylabel()
        if same and label:
            return True
    return False
