"""Random transformations applied to whole batches on the training device."""
from __future__ import annotations

import torch

from .. import geometry
from ..device import to_device
from .images import Batch, TrueTransform


class RandomRotation:
    """Rotates every image by its own angle, uniform in ``[-max_degrees, max_degrees]``.

    Bilinear, zero fill outside the image (as ``torchvision``'s ``RandomRotation``);
    counter-clockwise for positive angles. Angles are drawn on the CPU from
    ``generator`` so that a seed fixes them whatever the device. With
    ``max_degrees == 0`` images pass through untouched (true angle 0).
    """

    def __init__(self, max_degrees: float = 90.0, padding_mode: str = "zeros"):
        self.max_degrees, self.padding_mode = float(max_degrees), padding_mode

    def sample_angles(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n,)`` CPU float32 degrees."""
        if self.max_degrees == 0:
            return torch.zeros(n)
        return (torch.rand(n, generator=generator) * 2 - 1) * self.max_degrees

    def __call__(self, batch: Batch, generator: torch.Generator | None = None,
                 angles: torch.Tensor | None = None) -> Batch:
        """Rotate ``batch.images`` ``(B, C, H, W)``; ``angles`` ``(B,)`` overrides the random draw."""
        if angles is None:
            angles = self.sample_angles(len(batch.images), generator)
        upright = self.max_degrees == 0 and angles.device.type == "cpu" and not bool(angles.any())  # no GPU read
        angles = to_device(angles, batch.images.device)
        images = batch.images if upright else geometry.rotate(batch.images, angles, padding_mode=self.padding_mode)
        return Batch(images, batch.labels, batch.index, TrueTransform(angle=angles))


class RandomAffine:
    """The PlanktonSet training augmentation, as one affine warp per image: rotation uniform in
    ``+-degrees``, shift up to ``+-translate`` pixels, shear up to ``+-shear`` degrees, zoom
    ``2**u`` within ``[1/zoom, zoom]`` and a horizontal flip with probability 1/2."""

    def __init__(self, degrees=180.0, translate=10.0, shear=20.0, zoom=1.3, padding_mode="border"):
        self.max_degrees, self.translate, self.shear, self.zoom = degrees, translate, shear, zoom
        self.padding_mode = padding_mode

    def sample_angles(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return (torch.rand(n, generator=generator) * 2 - 1) * self.max_degrees

    def __call__(self, batch: Batch, generator: torch.Generator | None = None, angles=None) -> Batch:
        n, side = len(batch.images), batch.images.shape[-1]
        angles = self.sample_angles(n, generator) if angles is None else angles.cpu()
        uniform = lambda: torch.rand(n, generator=generator) * 2 - 1  # noqa: E731
        shift = torch.stack([uniform(), uniform()], 1) * self.translate * 2 / side
        shear = torch.deg2rad(uniform() * self.shear)
        scale = 2 ** (uniform() * torch.log2(torch.tensor(self.zoom)))
        flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
        rotation = geometry.theta_from_angle(-angles)[:, :, :2]  # content rotation matrix (y down)
        shearing = torch.stack([torch.stack([torch.ones(n), torch.tan(shear)], -1),
                                torch.stack([torch.zeros(n), torch.ones(n)], -1)], 1)
        forward = rotation @ shearing @ torch.diag_embed(torch.stack([scale * flip, scale], -1))
        inverse = torch.linalg.inv(forward)
        theta = torch.cat([inverse, -inverse @ shift.reshape(-1, 2, 1)], -1).to(batch.images.device)
        images = geometry.warp(batch.images, theta, padding_mode=self.padding_mode)
        device = batch.images.device
        return Batch(images, batch.labels, batch.index,
                     TrueTransform(angle=angles.to(device), scale=scale.to(device), shift=shift.to(device)))


def augmentation_for(config, data, train: bool = True):
    """The batch transformation a run configuration asks for on a dataset (``ImageData``)."""
    from ..errors import ConfigError
    from .placement import RandomPlacement

    if data.kind in ("translate", "scale"):
        if config.rotate or config.moment_sched:
            raise ConfigError(f"--rotate and --moment-sched are not available for {data.name} (placed digits)")
        if data.kind == "translate":
            return RandomPlacement(data.canvas, translate=True, max_shift=data.max_shift, clutter=data.clutter)
        return RandomPlacement(data.canvas, translate=False, log2_scale=data.log2_scale, clutter_sizes=(2, 18),
                               clutter=data.clutter)
    degrees = config.training_rotation_range() if train else config.rotation_range
    if data.kind == "plankton" and train:
        return RandomAffine(degrees if config.rotate else 180.0)
    return RandomRotation(degrees if config.rotate else 0.0)
