"""The theory's control: translation and scale instead of rotation (notebook 07, claim C6).

Convolutions commute with shifts, so the feature maps of a shifted image are the original's maps
shifted (up to the border and the pooling grid), and a feature-map ST can undo a translation. A
zoom, like a rotation, changes which filters respond and how much of the digit a receptive field
sees, so no spatial transformation of the maps undoes it. ``spatial_misalignment`` measures both
the way ``features.feature_misalignment`` measures rotations: the distance left after the best
spatial shift or zoom of the transformed image's feature maps.

Conventions: shifts in pixels of the input, ``+x`` right and ``+y`` down; zooms as factors (2: the
content twice as large) or their log2. The theta of an ST that undoes a shift ``s`` (normalised
units) reads the output's centre from ``s``: its translation column is ``s``. One that undoes a zoom
``z`` reads ``z`` times farther from the centre: ``sqrt|det|`` of its 2x2 part is ``z``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .. import geometry
from ..plotting import COUNT_CMAP
from .angles import orthogonal_fit
from .features import disk_mask, features_at, relative_distance

KINDS = ("translate", "scale")


def transform_images(images: torch.Tensor, kind: str, amount: float | torch.Tensor) -> torch.Tensor:
    """``images`` ``(B, C, H, W)`` shifted by ``amount`` pixels right and down (``translate``) or
    zoomed by the factor ``amount`` about the centre (``scale``); zeros outside. ``amount`` is a
    number, or for ``translate`` also ``(2,)`` or ``(B, 2)`` (x, y)."""
    n, side = len(images), images.shape[-1]
    amount = torch.as_tensor(amount, dtype=torch.float32)
    zeros = torch.zeros(n)
    if kind == "translate":
        theta = geometry.theta_from_angle(zeros, 1.0, amount.expand(n, 2) * 2 / side)
    elif kind == "scale":
        theta = geometry.theta_from_angle(zeros, amount.expand(n))
    else:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    return geometry.warp(images, theta.to(images.device))


def undone_shift(thetas: torch.Tensor) -> torch.Tensor:
    """``(B, 2)``: the shift (normalised units of the map the ST resamples) that ``thetas`` ``(B, 2, 3)`` undoes."""
    return thetas[:, :, 2]


def undone_log2_zoom(thetas: torch.Tensor) -> torch.Tensor:
    """``(B,)``: log2 of the zoom that ``thetas`` ``(B, 2, 3)`` undoes (``-log2 scale_from_theta``)."""
    return -torch.log2(geometry.scale_from_theta(thetas))


# Axis labels of ``plot_true_vs_undone``: (true, undone) for each kind.
QUANTITY = {"translate": ("true shift in x (normalised units of the canvas)",
                          "shift in x undone (normalised units of the ST's map)"),
            "scale": ("true zoom (log2)", "zoom undone by the ST (log2)")}


def true_and_undone(predictions, kind: str, st: int = -1) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N,)`` true and undone values of ST application ``st`` (``Predictions`` with a true shift or
    scale): the x shift in normalised units for ``translate`` (those of the map the ST resamples: a
    feature map that spans a smaller part of the canvas than the input gives a steeper slope), log2
    of the zoom for ``scale``."""
    thetas = predictions.thetas[:, st]
    if kind == "translate":
        return predictions.true_shift[:, 0], undone_shift(thetas)[:, 0]
    return torch.log2(predictions.true_scale), undone_log2_zoom(thetas)


@dataclass
class SpatialResidual:
    """How far the features of a shifted or zoomed image stay from the original's at one layer.

    ``unaligned``: relative distance without alignment; ``residual``: after the best spatial shift
    (or zoom) of the transformed image's maps, searched per image, mean over images; ``best``: the
    median best correction (pixels of that layer's map along x, or the zoom factor); ``floor``: the
    distance left when the *input* is transformed back exactly before the layer (what resampling
    alone loses: the best any correction of the maps could do). Index 0 is the input. Distances are taken inside the disk the transformation keeps in view (``scale``) or away
    from the border the shift uncovers (``translate``).
    """

    kind: str
    amount: float
    index: int
    unaligned: float
    residual: float
    best: float
    floor: float

    def as_dict(self) -> dict:
        return vars(self).copy()


def _inner_mask(height: int, width: int, border: int) -> torch.Tensor:
    """``(H, W)`` bool: pixels at least ``border`` pixels from every edge."""
    mask = torch.zeros(height, width, dtype=torch.bool)
    mask[border:height - border, border:width - border] = True
    return mask


def _candidates(kind: str, amount: float, input_side: int, map_side: int) -> torch.Tensor:
    """Corrections to search: ``(K, 2)`` pixel shifts of the map, or ``(K,)`` zoom factors."""
    if kind == "translate":
        reach = math.ceil(2 * abs(amount) * map_side / input_side + 3) / 2  # in half pixels, past the expected
        steps = torch.arange(-reach, reach + 1e-6, 0.5)
        return torch.cartesian_prod(steps, steps)
    return 2 ** torch.linspace(-1.5, 1.5, 61)


def spatial_misalignment(model, images: torch.Tensor, kind: str, amount: float, indices) -> list[SpatialResidual]:
    """For each placement index, shift (``translate``, ``amount`` pixels in x and y) or zoom
    (``scale``, factor ``amount``) ``images`` ``(B, C, H, W)`` and search the spatial shift or zoom
    of the feature maps that best undoes it."""
    moved = transform_images(images, kind, amount)
    undone = transform_images(moved, kind, -amount if kind == "translate" else 1 / amount)
    rows = []
    for index in indices:
        original, transformed = features_at(model, images, index), features_at(model, moved, index)
        transformed_back = features_at(model, undone, index)
        height, width = original.shape[-2:]
        candidates = _candidates(kind, amount, images.shape[-1], width)
        if kind == "translate":
            border = int(abs(amount) * width / images.shape[-1]) + 2
            mask = _inner_mask(height, width, min(border, (min(height, width) - 1) // 2))
        else:
            mask = disk_mask(height, width)
        corrections = -candidates if kind == "translate" else candidates
        # one corrected copy at a time (a list of all K would hold K times the maps)
        distances = torch.stack([relative_distance(transform_images(transformed, kind, c), original, mask)
                                 for c in corrections])  # (K, B)
        best, where = distances.min(0)
        chosen = candidates[where]
        best_value = chosen[:, 0].median().item() if kind == "translate" else chosen.median().item()
        rows.append(SpatialResidual(kind, float(amount), index, relative_distance(transformed, original, mask).mean().item(),
                                    best.mean().item(), best_value,
                                    relative_distance(transformed_back, original, mask).mean().item()))
    return rows


def plot_spatial_misalignment(rows: dict[str, list[SpatialResidual]], layer_names: dict[int, str] | None = None,
                              axes=None):
    """One panel per transformation: distance before and after the best spatial correction, per layer, and
    the floor that resampling alone leaves (dashed, its value written beside it: a floor of 0 lies on the
    axis)."""
    import matplotlib.pyplot as plt

    axes = axes if axes is not None else plt.subplots(1, len(rows), figsize=(4.4 * len(rows), 3.6), sharey=True)[1]
    axes = list(axes) if hasattr(axes, "__len__") else [axes]
    correction = {"translate": "best spatial shift", "scale": "best spatial zoom"}
    what = {"translate": lambda r: f"shifted by {r.amount:g} px right and down",
            "scale": lambda r: f"zoomed by {r.amount:g}"}
    top = max(r.unaligned for kind_rows in rows.values() for r in kind_rows)
    for ax, (kind, kind_rows) in zip(axes, rows.items()):
        names = [(layer_names or {}).get(r.index, f"layer {r.index}") for r in kind_rows]
        positions = torch.arange(len(kind_rows)).float().numpy()
        ax.bar(positions - 0.2, [r.unaligned for r in kind_rows], 0.4, label="no alignment", color="0.6")
        ax.bar(positions + 0.2, [r.residual for r in kind_rows], 0.4, label=correction[kind], color="#d55e00")
        for bars in ax.containers:
            ax.bar_label(bars, labels=[f"{b.get_height():.2f}" for b in bars], fontsize="small", padding=1)
        for position, row in zip(positions.tolist(), kind_rows):
            ax.hlines(row.floor, position - 0.45, position + 0.45, color="0.15", ls="--", lw=1.4, zorder=4,
                      clip_on=False, label="floor: the input transformed back" if position == 0 else None)
            ax.annotate(f"floor {row.floor:.2f}", (position + 0.45, row.floor), xytext=(2, 3),
                        textcoords="offset points", fontsize="x-small", color="0.15")
        ax.set_xticks(positions.tolist(), names)
        ax.set_ylim(0, 1.75 * top)  # room for the legend above the bars
        ax.set(xlabel="where the features are compared", ylabel="relative distance to the original",
               title=what[kind](kind_rows[0]))
        ax.legend(loc="upper right")
    return axes


def plot_true_vs_undone(true: torch.Tensor, undone: torch.Tensor, labels: tuple[str, str], title: str = "", ax=None,
                        bins: int = 40):
    """2-D histogram (seaborn, colour bar of image counts) of what the ST undoes against the true
    transformation, with the orthogonal regression line and the diagonal of a perfect ST; ``labels``:
    the x and y axis labels (``QUANTITY[kind]``)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    ax = ax or plt.subplots(figsize=(4.6, 4))[1]
    low, high = float(true.min()), float(true.max())
    pad = 0.15 * (high - low)
    edges = torch.linspace(low - pad, high + pad, bins + 1).numpy()
    sns.histplot(x=true.numpy(), y=undone.clamp(low - pad, high + pad).numpy(), bins=(edges, edges), cmap=COUNT_CMAP,
                 cbar=True, cbar_kws={"label": "test images", "shrink": 0.8}, ax=ax)
    fit = orthogonal_fit(true, undone)
    xs = torch.tensor([low - pad, high + pad]).numpy()
    ax.plot(xs, xs, color="0.25", lw=1.0, ls="--", label="undoes exactly the true value")
    ax.plot(xs, fit.slope * xs + fit.intercept, color="#0173b2", lw=1.8,
            label=f"fit: slope {fit.slope:.2f}, r = {fit.correlation:.2f}")
    ax.set(xlabel=labels[0], ylabel=labels[1], title=title)
    ax.legend(loc="upper left", fontsize="small")
    return ax
