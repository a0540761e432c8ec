"""Random transformations applied to whole batches on the training device."""
from __future__ import annotations

import torch

from .. import geometry
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
        angles = angles.to(batch.images.device)
        if self.max_degrees == 0 and not bool(angles.any()):
            images = batch.images
        else:
            images = geometry.rotate(batch.images, angles, padding_mode=self.padding_mode)
        return Batch(images, batch.labels, batch.index, TrueTransform(angle=angles))


def augmentation_for(rotate: bool, rotation_range: float) -> RandomRotation:
    """The train-and-test transformation a run configuration asks for."""
    return RandomRotation(rotation_range if rotate else 0.0)
