"""What the STs do: images before and after each ST, feature maps, several models side by side."""
from __future__ import annotations

import torch

from .. import geometry
from ..models.modes import eval_mode
from ..plotting import IMAGE_CMAP, colorbar, image_panel, shared_image_scale


def _display(tensor: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, H, W)``: the image itself, or the mean absolute feature map."""
    tensor = tensor.detach().float().cpu()
    return tensor[:, 0] if tensor.shape[1] == 1 else tensor.abs().mean(1)


@torch.no_grad()
def st_views(model, images: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """``[("input", x), ("ST at 0, iteration 1", out), ...]``: the tensor after every ST application."""
    with eval_mode(model):
        seen = model.inspect(images)
    views = [("input", images)]
    for record in seen.sts:
        where = "input" if record.index == 0 or model.st_mode != "feature" else f"layer {record.index}"
        views.append((f"ST on {where}, it. {record.iteration + 1}", record.output))
    return views


def plot_st_views(views: list[tuple[str, torch.Tensor]], count: int = 6, axes=None, title: str = ""):
    """Rows: images; columns: the input and the tensor after each ST. Image columns share the
    intensity scale [0, 1]; feature-map columns (mean |activation| over channels) share one scale
    of their own; each scale has a colour bar."""
    import matplotlib.pyplot as plt

    count = min(count, len(views[0][1]))
    if axes is None:
        fig, axes = plt.subplots(count, len(views), figsize=(1.5 * len(views) + 1.6, 1.5 * count + 0.6),
                                 squeeze=False, layout="constrained")
        fig.suptitle(title or "Before and after the ST", fontsize="medium")
    channels = views[0][1].shape[1]
    is_image = [tensor.shape[1] == channels for _, tensor in views]
    shown = [_display(tensor[:count]) for _, tensor in views]
    maps = [panel for panel, image in zip(shown, is_image) if not image]
    low, high = shared_image_scale(maps) if maps else (0.0, 1.0)
    drawn = {}
    for column, ((name, _), panels, image) in enumerate(zip(views, shown, is_image)):
        scale = (0.0, 1.0) if image else (low, high)
        for row in range(count):
            drawn[image] = image_panel(axes[row, column], panels[row].numpy(), name if row == 0 else "", *scale,
                                       cmap=IMAGE_CMAP if image else "viridis")
    figure, every = axes[0, 0].figure, list(axes.flat)
    if True in drawn:
        colorbar(figure, drawn[True], every, "intensity (images)")
    if False in drawn:
        colorbar(figure, drawn[False], every, "mean |activation| (feature maps, one scale)")
    return axes


@torch.no_grad()
def feature_maps_around_st(model, images: torch.Tensor, st: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The tensor ST application ``st`` reads (``source``) and what it outputs, each ``(B, C, H, W)``."""
    with eval_mode(model):
        record = model.inspect(images).sts[st]
    return record.source.float().cpu(), record.output.float().cpu()


def plot_feature_maps(before: torch.Tensor, after: torch.Tensor, image: int = 0, channels: int = 6, axes=None,
                      title: str = "The most active channels before and after the ST"):
    """The most active ``channels`` of one image, before (top row) and after (bottom row) the ST,
    on one colour scale with a colour bar."""
    import matplotlib.pyplot as plt

    strongest = before[image].abs().flatten(1).mean(1).argsort(descending=True)[:channels]
    if axes is None:
        axes = plt.subplots(2, len(strongest), figsize=(1.5 * len(strongest) + 0.8, 3.2), squeeze=False,
                            layout="constrained")[1]
    low, high = shared_image_scale([before[image, strongest], after[image, strongest]])
    for column, channel in enumerate(strongest.tolist()):
        for row, (name, tensor) in enumerate((("before", before), ("after", after))):
            shown = axes[row, column].imshow(tensor[image, channel].numpy(), cmap="viridis", vmin=low, vmax=high)
            axes[row, column].axis("off")
            axes[row, column].set_title(f"ch {channel} {name}", fontsize=7)
    axes[0, 0].figure.colorbar(shown, ax=axes, fraction=0.02, label="activation (one scale for all panels)")
    axes[0, 0].figure.suptitle(title, fontsize="medium")
    return axes


@torch.no_grad()
def compare_transformations(models: dict, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """For each model, the tensor after its last ST (``(B, C, H, W)``), for side-by-side plots."""
    return {name: st_views(model, images)[-1][1] for name, model in models.items()}


@torch.no_grad()
def upright_targets(models: dict, images: torch.Tensor, true_angles: torch.Tensor) -> dict[str, torch.Tensor]:
    """What a perfect last ST of each model would output for ``images`` rotated by ``true_angles``
    ``(B,)``: the upright digit for an ST on the input, the upright digit's feature maps at the
    ST's layer for an ST on feature maps (``(B, C, H, W)`` each, keyed by model name)."""
    upright = geometry.rotate(images, -true_angles)
    targets = {}
    for name, model in models.items():
        index = model.slots[-1].index if model.st_mode == "feature" else 0
        with eval_mode(model):
            targets[name] = model.features(upright, upto=index) if index else upright
    return targets


def plot_compare_transformations(images: torch.Tensor, outputs: dict[str, torch.Tensor], count: int = 6,
                                 axes=None, targets: dict[str, torch.Tensor] | None = None, title: str = ""):
    """Rows: images; columns: the input, then each model's ST output, each followed by its target
    (``upright_targets``) when given."""
    views = [("input", images)]
    for name, output in outputs.items():
        views.append((name, output))
        if targets is not None and name in targets:
            views.append((f"{name} target:\nupright digit", targets[name]))
    return plot_st_views(views, count=count, axes=axes, title=title or "What each ST outputs")


def plot_digits(images: torch.Tensor, titles=None, columns: int = 6, axes=None):
    """A grid of images ``(B, C, H, W)`` with optional titles (e.g. true angles)."""
    import matplotlib.pyplot as plt

    rows = -(-len(images) // columns)
    if axes is None:
        axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.8 * rows), squeeze=False)[1]
    shown = _display(images)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            image_panel(ax, shown[i].numpy(), titles[i] if titles is not None else "", vmin=0, vmax=1)
    return axes
