"""Feature maps, what each ST does to them, and why a spatial transformation cannot align them (C3)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import geometry
from ..losses import classification_loss
from ..models.modes import mode
from ..plotting import SIGNED_CMAP, colorbar, image_panel, series_colors, shared_image_scale


def features_at(model, images: torch.Tensor, index: int) -> torch.Tensor:
    """Output of the classifier's ``layers[:index]`` (no STs) for ``images`` ``(B, C, H, W)``."""
    with torch.no_grad():
        return model.features(images, upto=index)


def disk_mask(height: int, width: int) -> torch.Tensor:
    """``(H, W)`` bool: pixels whose centre lies in the inscribed disk (rotations keep it in view)."""
    ys = torch.arange(height) - (height - 1) / 2
    xs = torch.arange(width) - (width - 1) / 2
    radius = max(min(height, width) / 2, 1.0)
    return (ys[:, None] ** 2 + xs[None, :] ** 2) <= radius**2 + 1e-6


def relative_distance(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``||a - b|| / ||b||`` over the masked pixels, per image: ``(B,)``."""
    diff = ((a - b) * mask).flatten(1).norm(dim=1)
    return diff / (b * mask).flatten(1).norm(dim=1).clamp_min(1e-8)


@dataclass
class Misalignment:
    """How far the features of a rotated image stay from the original's, at one layer.

    ``unaligned``: relative distance without any alignment; ``residual``: after the best
    spatial rotation of the rotated image's feature maps (searched), averaged over images;
    ``best_angle``: the search's most frequent best rotation. Index 0 is input space.
    """

    index: int
    angle: float
    unaligned: float
    residual: float
    best_angle: float


def feature_misalignment(model, images: torch.Tensor, angle: float, indices, search_step: float = 5.0
                         ) -> list[Misalignment]:
    """For each placement index, rotate ``images`` by ``angle`` and search the spatial rotation of the
    feature maps that best undoes it (``-180..180`` in ``search_step`` degrees)."""
    rotated = geometry.rotate(images, angle)
    candidates = torch.arange(-180.0, 180.0 + 1e-6, search_step)
    rows = []
    for index in indices:
        original, turned = features_at(model, images, index), features_at(model, rotated, index)
        mask = disk_mask(*original.shape[-2:])
        distances = torch.stack([relative_distance(geometry.rotate(turned, float(b)), original, mask)
                                 for b in candidates])  # (K, B)
        best, where = distances.min(0)
        rows.append(Misalignment(index, angle, relative_distance(turned, original, mask).mean().item(),
                                 best.mean().item(), candidates[where.mode().values].item()))
    return rows


def same_class_distance(model, images: torch.Tensor, labels: torch.Tensor, indices) -> dict[int, float]:
    """A yardstick for ``Misalignment``: at each placement index, the mean relative distance between
    the features of two *different* upright digits of the same class (each image against the next
    one with its label). A misalignment near this value is as large as a change of digit."""
    partner = torch.full((len(labels),), -1)
    for label in labels.unique():
        members = torch.nonzero(labels == label).flatten()
        partner[members] = members.roll(-1)
    keep = partner != torch.arange(len(labels))
    distances = {}
    for index in indices:
        features = features_at(model, images, index)
        mask = disk_mask(*features.shape[-2:])
        distances[index] = relative_distance(features[partner[keep]], features[keep], mask).mean().item()
    return distances


def plot_misalignment(rows: list[Misalignment], layer_names: dict[int, str] | None = None, ax=None,
                      reference: dict[int, float] | None = None):
    """Bars: distance before and after the best spatial alignment, per layer, each with its value;
    ``reference`` (placement index -> distance, e.g. ``same_class_distance``) adds a yardstick line."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    names = [(layer_names or {}).get(r.index, f"layer {r.index}") for r in rows]
    positions = torch.arange(len(rows)).float().numpy()
    ax.bar(positions - 0.2, [r.unaligned for r in rows], 0.4, label="no alignment", color="0.6")
    ax.bar(positions + 0.2, [r.residual for r in rows], 0.4, label="best spatial rotation", color="#d55e00")
    for bars in ax.containers:
        ax.bar_label(bars, labels=[f"{b.get_height():.2f}" + (" (exact)" if b.get_height() < 5e-3 else "")
                                   for b in bars], fontsize="small", padding=1)
    if reference:
        for position, row in zip(positions, rows):
            ax.hlines(reference[row.index], position - 0.45, position + 0.45, color="0.15", ls="--", lw=1.2,
                      label="two different digits of the same class" if position == 0 else None)
    ax.set_xticks(positions.tolist(), names)
    top = max([r.unaligned for r in rows] + list((reference or {}).values()))
    ax.set_ylim(0, max(ax.get_ylim()[1], 1.45 * top))  # room for the legend above the bars
    ax.set(xlabel="where the features are compared", ylabel="relative distance to the original",
           title=f"Rotated by {rows[0].angle:g}°")
    ax.legend(loc="upper right")
    return ax


@dataclass
class ChannelAlignment:
    """At one layer, for images rotated by ``angle``: the pooled relative distance between the
    original's feature maps and the rotated image's maps rotated back by ``-angle``
    (``spatial``), and the same after the best one-to-one matching of channels (``with_channels``).
    ``spatial - with_channels`` is the part of the misalignment that only a change of channels
    removes: the paper's mechanism, as a number."""

    index: int
    angle: float
    spatial: float
    with_channels: float

    @property
    def channel_part(self) -> float:
        return self.spatial - self.with_channels


def channel_alignment(model, images: torch.Tensor, angle: float, index: int) -> ChannelAlignment:
    """``ChannelAlignment`` of ``model``'s layer ``index`` for ``images`` ``(B, C, H, W)``.

    At multiples of 90 degrees rotating back is exact on the pixel grid, so ``spatial`` is the
    best any spatial transformation can do there."""
    from scipy.optimize import linear_sum_assignment

    a, b = (m.double() for m in channels_rotated_back(model, images, angle, index))  # (C, B * pixels)
    norm = a.norm().clamp_min(1e-12)
    # cost[i, j]: squared distance between channel i of the original and channel j rotated back
    cost = (a.pow(2).sum(1)[:, None] + b.pow(2).sum(1)[None, :] - 2 * a @ b.T).clamp_min(0)
    rows, columns = linear_sum_assignment(cost.numpy())
    matched = cost[torch.as_tensor(rows), torch.as_tensor(columns)].sum().sqrt()
    return ChannelAlignment(index, angle, ((a - b).norm() / norm).item(), (matched / norm).item())


def rotation_symmetric_copy(model):
    """A copy of ``model`` whose convolution filters are averaged over their four quarter turns.

    Such filters answer alike to an edge and to its 90-degree turn, so the feature maps of an
    image turned by 90 degrees are the original's maps turned by 90 degrees (pooling windows of
    even-sized maps map onto each other): a control network for which spatial alignment succeeds.
    """
    import copy

    twin = copy.deepcopy(model)
    with torch.no_grad():
        for module in twin.modules():
            if isinstance(module, torch.nn.Conv2d):
                w = module.weight
                module.weight.copy_(sum(torch.rot90(w, k, dims=(-2, -1)) for k in range(4)) / 4)
    return twin


def channels_rotated_back(model, images: torch.Tensor, angle: float, index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Layer ``index``'s channels for ``images`` and for the images turned by ``angle`` with their
    maps turned back, inside the inscribed disk: two ``(C, B * pixels)`` matrices."""
    original = features_at(model, images, index)
    back = geometry.rotate(features_at(model, geometry.rotate(images, angle), index), -angle)
    mask = disk_mask(*original.shape[-2:])
    return original.transpose(0, 1)[:, :, mask].flatten(1), back.transpose(0, 1)[:, :, mask].flatten(1)


def channel_correspondence(model, images: torch.Tensor, index: int, angle: float = 90.0) -> torch.Tensor:
    """``(C, C)`` correlation of channel i of F(x) with channel j of R(-angle) F(R(angle) x).

    If a spatial transformation could align feature maps, this would be the identity: each
    channel would answer the same way after rotating back. Off-diagonal mass is the channel effect.
    """
    a, b = channels_rotated_back(model, images, angle, index)  # (C, B * pixels) each
    a = (a - a.mean(1, keepdim=True)) / a.std(1, keepdim=True).clamp_min(1e-8)
    b = (b - b.mean(1, keepdim=True)) / b.std(1, keepdim=True).clamp_min(1e-8)
    return a @ b.T / a.shape[1]


def self_match_rate(correspondence: torch.Tensor) -> float:
    """Share of active channels whose best-correlated channel after rotating back is themselves."""
    active = correspondence.diagonal().isfinite() & (correspondence.abs().sum(1) > 0)
    best = correspondence.argmax(1)
    return (best == torch.arange(len(best)))[active].float().mean().item()


def plot_channel_correspondence(correspondence: torch.Tensor, title: str = "", ax=None):
    """The correlation matrix as a seaborn heatmap, its columns reordered by the best one-to-one
    matching so the permutation a rotation induces shows as the diagonal; the original column of
    each is marked where it differs from the row (the channel changed)."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from scipy.optimize import linear_sum_assignment

    ax = ax or plt.subplots(figsize=(5, 4.2))[1]
    _, order = linear_sum_assignment(-correspondence.nan_to_num().numpy())
    sns.heatmap(correspondence[:, order].numpy(), ax=ax, cmap=SIGNED_CMAP, vmin=-1, vmax=1, center=0, square=True,
                xticklabels=16, yticklabels=16, cbar_kws={"label": "correlation of the two channels"})
    moved = [i + 0.5 for i, j in enumerate(order) if i != j]
    ax.scatter(moved, moved, s=5, marker="x", color="k", lw=0.6,
               label=f"matched to another channel ({len(moved)} of {len(order)})")
    ax.legend(fontsize="x-small", loc="lower left", framealpha=0.9)
    ax.set(xlabel="channel of the rotated image, rotated back\n(ordered by best one-to-one match)",
           ylabel="channel of the original image",
           title=title or f"self-match {self_match_rate(correspondence):.0%}")
    return ax


def edge_filters() -> torch.Tensor:
    """``(2, 1, 3, 3)`` Sobel filters: channel 0 answers to vertical edges, channel 1 to horizontal ones."""
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    return torch.stack([sobel, sobel.T]).unsqueeze(1)


def edge_responses(image: torch.Tensor, angle: float = 90.0) -> dict[str, torch.Tensor]:
    """Edge-channel responses ``(2, H, W)`` of an image ``(1, H, W)``, of its rotated copy, and of the
    rotated copy's responses rotated back: after 90 degrees the *other* channel answers."""
    filters = edge_filters()
    original = F.conv2d(image[None], filters, padding=1)[0].abs()
    rotated_image = geometry.rotate(image[None], angle)
    rotated = F.conv2d(rotated_image, filters, padding=1)[0].abs()
    return {"image": image[0], "rotated image": rotated_image[0, 0], "original": original, "rotated": rotated,
            "rotated back": geometry.rotate(rotated[None], -angle)[0]}


def most_oriented_image(images: torch.Tensor) -> int:
    """Index of the image ``(N, 1, H, W)`` whose vertical- and horizontal-edge responses differ the
    most (relative to their sum): the clearest example of the channel swap after 90 degrees."""
    responses = F.conv2d(images, edge_filters(), padding=1).abs().flatten(2).sum(2)  # (N, 2)
    contrast = (responses[:, 0] - responses[:, 1]).abs() / responses.sum(1).clamp_min(1e-8)
    return int(contrast.argmax())


def plot_edge_responses(responses: dict[str, torch.Tensor], axes=None):
    """Image, and the vertical/horizontal edge channels before and after rotating back, the four
    channel panels on one colour scale with a colour bar."""
    import matplotlib.pyplot as plt

    if axes is None:
        axes = plt.subplots(1, 6, figsize=(14, 2.9), layout="constrained")[1]
    images = [("image", responses["image"]), ("rotated image", responses["rotated image"])]
    channels = [("vertical-edge channel\n(original)", responses["original"][0]),
                ("vertical-edge channel\n(rotated, back)", responses["rotated back"][0]),
                ("horizontal-edge channel\n(original)", responses["original"][1]),
                ("horizontal-edge channel\n(rotated, back)", responses["rotated back"][1])]
    for ax, (title, panel) in zip(axes[:2], images):
        image_panel(ax, panel.numpy(), title, vmin=0, vmax=1)
    low, high = shared_image_scale([panel for _, panel in channels])
    for ax, (title, panel) in zip(axes[2:], channels):
        shown = image_panel(ax, panel.numpy(), title, vmin=low, vmax=high, cmap="magma")
    colorbar(axes[0].figure, shown, list(axes[2:]), "edge response (one scale)")
    axes[0].figure.suptitle("After a 90° turn the other edge channel answers", fontsize="medium")
    return axes


def first_layer_filters(model) -> torch.Tensor:
    """Weights of the classifier's first convolution, ``(C_out, C_in, k, k)``."""
    for module in model.layers.modules():
        if isinstance(module, torch.nn.Conv2d):
            return module.weight.detach().float().cpu()
    raise ValueError(f"{model.model_name} has no convolution")


def plot_filters(filters: torch.Tensor, columns: int = 16, axes=None):
    """Each filter's first input channel as a small image."""
    import matplotlib.pyplot as plt

    rows = -(-len(filters) // columns)
    if axes is None:
        axes = plt.subplots(rows, columns, figsize=(columns * 0.6, rows * 0.6))[1]
    for ax, weights in zip(axes.flat, list(filters[:, 0]) + [None] * (axes.size - len(filters))):
        if weights is not None:
            limit = weights.abs().max().item()
            ax.imshow(weights.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.axis("off")
    return axes


def gradient_magnitudes(model, images: torch.Tensor, labels: torch.Tensor) -> list[tuple[str, float]]:
    """Gradient norm of every parameter tensor for one batch, in network order (no optimizer step)."""
    with mode(model, training=True):
        model.zero_grad(set_to_none=True)
        classification_loss(model(images), labels).backward()
        norms = [(name, p.grad.norm().item()) for name, p in model.named_parameters() if p.grad is not None]
        model.zero_grad(set_to_none=True)
    return norms


def plot_gradient_magnitudes(norms: list[tuple[str, float]], ax=None):
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 0.22 * len(norms) + 1))[1]
    ax.barh(range(len(norms)), [n for _, n in norms], color="tab:purple")
    ax.set_yticks(range(len(norms)), [name for name, _ in norms], fontsize=7)
    ax.invert_yaxis()
    ax.set(xscale="log", xlabel="gradient norm", title="Gradient magnitudes")
    return ax


def rotated_feature_maps(model, image: torch.Tensor, angle: float, index: int) -> dict[str, torch.Tensor]:
    """For one image ``(C, H, W)``: the feature maps of the rotated image, and the original's feature
    maps rotated by the same angle (``(C', H', W')`` each). Equal only if features were equivariant."""
    of_rotated = features_at(model, geometry.rotate(image[None], angle), index)[0]
    rotated = geometry.rotate(features_at(model, image[None], index), angle)[0]
    return {"features of the rotated image": of_rotated, "rotated features of the image": rotated}


def plot_rotated_feature_maps(maps: dict[str, torch.Tensor], channels: int = 6, axes=None):
    """Rows: the two tensors of ``rotated_feature_maps``; columns: the most active channels."""
    import matplotlib.pyplot as plt

    first, second = maps.values()
    strongest = second.abs().flatten(1).mean(1).argsort(descending=True)[:channels].tolist()
    if axes is None:
        axes = plt.subplots(2, len(strongest), figsize=(1.6 * len(strongest) + 0.8, 3.6), squeeze=False,
                            layout="constrained")[1]
    limit = max(first[strongest].abs().max().item(), second[strongest].abs().max().item(), 1e-8)
    for row, (name, tensor) in enumerate(maps.items()):
        for column, channel in enumerate(strongest):
            shown = axes[row, column].imshow(tensor[channel].numpy(), cmap="viridis", vmin=0, vmax=limit)
            axes[row, column].axis("off")
            axes[row, column].set_title(f"ch {channel}", fontsize=7)
        axes[row, 0].text(-0.15, 0.5, name, transform=axes[row, 0].transAxes, rotation=90, va="center",
                          ha="right", fontsize=7)
    axes[0, 0].figure.colorbar(shown, ax=axes, fraction=0.02, label="activation (one scale for all panels)")
    return axes


def plot_channel_alignment(alignment: dict[str, list[ChannelAlignment]], layer_names: dict[int, str] | None = None,
                           ax=None):
    """Grouped bars per layer, one colour per network: the distance left after rotating back (solid)
    and after matching channels too (hatched). Every bar carries its value, so a zero reads as zero."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(8, 3.8))[1]
    networks = list(alignment)
    colors = series_colors(networks)
    width = 0.8 / (2 * len(networks))
    indices = [row.index for row in next(iter(alignment.values()))]
    for n, network in enumerate(networks):
        offsets = [k - 0.4 + (2 * n + 0.5) * width for k in range(len(indices))]
        rows = alignment[network]
        color = colors[network]
        solid = ax.bar(offsets, [r.spatial for r in rows], width, color=color, label=f"{network}: rotated back")
        hatched = ax.bar([o + width for o in offsets], [r.with_channels for r in rows], width, color=color,
                         alpha=0.4, hatch="//", label=f"{network}: rotated back, channels matched")
        for bars in (solid, hatched):  # a zero reads "0", not a missing bar
            ax.bar_label(bars, labels=[f"{b.get_height():.2f}" if b.get_height() >= 5e-3 else "0" for b in bars],
                         fontsize="x-small", padding=1)
    ax.set_xticks(range(len(indices)), [(layer_names or {}).get(i, f"layer {i}") for i in indices])
    ax.set(xlabel="where the features are compared", ylabel="relative distance to the original",
           title=f"Rotated by {alignment[networks[0]][0].angle:g}° and back (0 = aligned)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax
