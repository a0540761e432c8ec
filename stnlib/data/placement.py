"""Translated and scaled MNIST: digits placed on a larger canvas, with clutter, per batch.

``translate``: the 28x28 digit at a random position of a 60x60 canvas, plus six 6x6 crops of
other digits at random places (clamped to 1). ``scale``: the digit at the centre of a 112x112
canvas, zoomed by ``2**u`` with ``u`` uniform in ``[-1, 2]``, plus six crops of other digits at
random sizes. The true shift (normalised canvas units, +x right, +y down) and scale of every
image are kept. ``max_shift`` and ``log2_scale`` narrow the ranges and ``clutter=False`` leaves the
crops out, for the study's compact controls on MNIST's own 28x28 canvas.
"""
from __future__ import annotations

import torch

from .. import geometry
from .images import Batch, TrueTransform

CLUTTER_PATCHES, CLUTTER_CROP = 6, 6


class RandomPlacement:
    """Draws each digit ``(B, C, h, w)`` on a ``canvas`` x ``canvas`` image, zoomed by ``2**u`` (``u``
    uniform in ``log2_scale``) and, with ``translate``, shifted uniformly by up to ``max_shift`` pixels
    in x and y (``None``: as far as the canvas lets the unzoomed digit go)."""

    def __init__(self, canvas: int, translate: bool, log2_scale: tuple[float, float] = (0.0, 0.0),
                 clutter_sizes: tuple[int, int] = (CLUTTER_CROP, CLUTTER_CROP), max_shift: float | None = None,
                 clutter: bool = True):
        self.canvas, self.translate, self.log2_scale, self.clutter_sizes = canvas, translate, log2_scale, clutter_sizes
        self.max_shift, self.clutter = max_shift, clutter
        self.max_degrees = 0.0

    def sample_angles(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.zeros(n)

    def __call__(self, batch: Batch, generator: torch.Generator | None = None, angles=None) -> Batch:
        digits = batch.images  # (B, C, h, w)
        n, side = len(digits), digits.shape[-1]
        low, high = self.log2_scale
        scale = 2 ** (low + (high - low) * torch.rand(n, generator=generator))
        pixels = (self.canvas - side) / 2 if self.max_shift is None else self.max_shift
        room = pixels * 2 / self.canvas if self.translate else 0.0  # normalised half-range
        shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * room
        canvas = self._place(digits, scale, shift)
        if self.clutter:
            canvas = (canvas + self._clutter(digits, generator)).clamp(max=1.0)
        device = digits.device
        return Batch(canvas, batch.labels, batch.index,
                     TrueTransform(angle=torch.zeros(n, device=device), scale=scale.to(device), shift=shift.to(device)))

    def _place(self, images, scale, shift) -> torch.Tensor:
        """Draw ``images`` on the canvas at their native pixel size times ``scale``, moved by ``shift``."""
        ratio = self.canvas / images.shape[-1]
        linear = torch.eye(2).expand(len(images), 2, 2) * (ratio / scale).reshape(-1, 1, 1)
        theta = torch.cat([linear, -linear @ shift.reshape(-1, 2, 1)], -1).to(images.device)
        return geometry.warp(images, theta, size=(self.canvas, self.canvas))

    def _clutter(self, digits, generator) -> torch.Tensor:
        """Crops of other digits of the batch at random places and sizes: ``(B, C, canvas, canvas)``."""
        n, side, total = len(digits), digits.shape[-1], 0
        coords = (torch.arange(self.canvas, device=digits.device) + 0.5) / self.canvas * 2 - 1  # pixel centres
        for _ in range(CLUTTER_PATCHES):
            others = digits[torch.randint(n, (n,), generator=generator).to(digits.device)]
            size = torch.randint(self.clutter_sizes[0], self.clutter_sizes[1] + 1, (n,), generator=generator).float()
            crop_centre = (torch.rand(n, 2, generator=generator) * (side - CLUTTER_CROP) + CLUTTER_CROP / 2) / side * 2 - 1
            place = (torch.rand(n, 2, generator=generator) * 2 - 1) * (1 - size[:, None] / self.canvas)
            zoom = size / CLUTTER_CROP  # drawn size over crop size
            ratio = self.canvas / side / zoom
            linear = torch.eye(2).expand(n, 2, 2) * ratio.reshape(-1, 1, 1)
            offset = crop_centre.reshape(-1, 2, 1) - linear @ place.reshape(-1, 2, 1)
            drawn = geometry.warp(others, torch.cat([linear, offset], -1).to(digits.device),
                                  size=(self.canvas, self.canvas))
            half = (size / self.canvas).to(digits.device).reshape(-1, 1)
            inside_x = (coords[None] - place[:, :1].to(digits.device)).abs() <= half  # (B, W)
            inside_y = (coords[None] - place[:, 1:].to(digits.device)).abs() <= half  # (B, H)
            total = total + drawn * (inside_y[:, None, :, None] & inside_x[:, None, None, :])
        return total
