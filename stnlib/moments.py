"""Orientation from image moments, for a canonical pose without labels.

Used by ``--moment-sched`` (show images in their canonical orientation) and
``--pretrain`` (train the ST to predict it).
"""
from __future__ import annotations

import torch

CANONICAL_DIRECTION = 90.0  # the principal axis points up after canonicalisation


def moment_orientation(images: torch.Tensor) -> torch.Tensor:
    """Direction of each image's principal axis, counter-clockwise degrees in ``(-180, 180]``.

    ``images``: ``(B, C, H, W)``, non-negative intensities (channels are summed).
    The axis is the eigenvector of the second central moments; of its two
    directions, the one along which the third moment (skew) is positive is kept.
    Returns ``(B,)``. An image rotated by ``a`` degrees gives this plus ``a``.
    """
    mass = images.float().sum(1)  # (B, H, W)
    height, width = mass.shape[-2:]
    xs = torch.arange(width, device=mass.device, dtype=mass.dtype) - (width - 1) / 2
    ys = (height - 1) / 2 - torch.arange(height, device=mass.device, dtype=mass.dtype)  # up
    total = mass.sum((1, 2)).clamp_min(1e-8)
    cx = (mass * xs).sum((1, 2)) / total
    cy = (mass * ys[:, None]).sum((1, 2)) / total
    dx = xs.reshape(1, 1, -1) - cx.reshape(-1, 1, 1)  # (B, 1, W)
    dy = ys.reshape(1, -1, 1) - cy.reshape(-1, 1, 1)  # (B, H, 1)
    mu20 = (mass * dx**2).sum((1, 2))
    mu02 = (mass * dy**2).sum((1, 2))
    mu11 = (mass * dx * dy).sum((1, 2))
    axis = 0.5 * torch.atan2(2 * mu11, mu20 - mu02)  # radians, (-pi/2, pi/2]
    along = dx * torch.cos(axis).reshape(-1, 1, 1) + dy * torch.sin(axis).reshape(-1, 1, 1)
    skew = (mass * along**3).sum((1, 2))
    degrees = torch.rad2deg(axis) + 180.0 * (skew < 0)
    return wrap_degrees(degrees)


def canonicalizing_angle(images: torch.Tensor) -> torch.Tensor:
    """Rotation (degrees, counter-clockwise) that turns each image into its canonical pose: ``(B,)``."""
    return wrap_degrees(CANONICAL_DIRECTION - moment_orientation(images))


def wrap_degrees(angle: torch.Tensor) -> torch.Tensor:
    """Map angles to ``(-180, 180]``."""
    return 180.0 - torch.remainder(180.0 - angle, 360.0)


def moment_probability(epoch: int) -> float:
    """Share of training images shown in canonical pose at ``epoch`` (the original's schedule)."""
    schedule = {0: 1.0, 1: 0.5, 11: 0.3, 41: 0.2, 101: 0.1, 201: 0.0}
    return schedule[max(k for k in schedule if k <= epoch)]
