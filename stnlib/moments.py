"""Orientation from image moments, for a canonical pose without labels, as the original defines it.

Used by ``--moment-sched`` (show training images in their moment-canonical pose, less often as
training goes on) and ``--pretrain`` (train the ST to predict the canonical transformation).

The original measures the principal axis in pixel-index coordinates (row ``r`` down, column
``c`` right) as ``theta = atan(2 mu_rc / (mu_rr - mu_cc)) / 2 + pi/2 * (mu_rr < mu_cc)``, the
angle from the row axis toward the column axis, and adds ``pi/4``, so the canonical pose has its
principal axis on a diagonal. ``--moment-sched`` uses that angle as it is; ``--pretrain`` first
turns it by ``pi`` when the third moment along it is positive, and by a further ``pi/2`` with a
reflection when the third moment along the perpendicular is positive.
"""
from __future__ import annotations

import math

import torch


def _central_moments(images: torch.Tensor):
    """Mass ``(B, H, W)``, row and column offsets from the centroid, and mu_rr, mu_cc, mu_rc ``(B,)``."""
    mass = images.float().sum(1)  # (B, H, W), channels summed
    height, width = mass.shape[-2:]
    rows = torch.arange(height, device=mass.device, dtype=mass.dtype).reshape(1, -1, 1)
    cols = torch.arange(width, device=mass.device, dtype=mass.dtype).reshape(1, 1, -1)
    total = mass.sum((1, 2)).clamp_min(1e-8)
    r0 = (mass * rows).sum((1, 2)) / total
    c0 = (mass * cols).sum((1, 2)) / total
    dr = rows - r0.reshape(-1, 1, 1)  # (B, H, 1)
    dc = cols - c0.reshape(-1, 1, 1)  # (B, 1, W)
    mu_rr = (mass * dr**2).sum((1, 2)) / total
    mu_cc = (mass * dc**2).sum((1, 2)) / total
    mu_rc = (mass * dr * dc).sum((1, 2)) / total
    return mass, dr, dc, mu_rr, mu_cc, mu_rc


def _positive_skew(mass, dr, dc, angle: torch.Tensor) -> torch.Tensor:
    """``(B,)`` bool: the third moment along ``angle`` (radians from the row axis) is positive."""
    along = dr * torch.cos(angle).reshape(-1, 1, 1) + dc * torch.sin(angle).reshape(-1, 1, 1)
    return (mass * along**3).sum((1, 2)) > 0


def _axis_angle(mu_rr, mu_cc, mu_rc) -> torch.Tensor:
    return torch.atan(2 * mu_rc / (mu_rr - mu_cc)) / 2 + (mu_rr < mu_cc).float() * (math.pi / 2)


def principal_axis(images: torch.Tensor) -> torch.Tensor:
    """The original's principal-axis angle ``theta`` (radians, row axis toward column axis), ``(B,)``."""
    return _axis_angle(*_central_moments(images)[3:])


def canonicalizing_angle(images: torch.Tensor) -> torch.Tensor:
    """``--moment-sched``: the counter-clockwise rotation (degrees, ``(B,)``) that the original applies
    to show each image ``(B, C, H, W)`` in its canonical pose, ``-(theta + pi/4)``."""
    return -torch.rad2deg(principal_axis(images) + math.pi / 4)


def pretrain_target(images: torch.Tensor) -> torch.Tensor:
    """``--pretrain``: the linear part ``(B, 2, 2)`` of the theta the ST learns to predict for each image.

    ``theta`` gets ``pi`` when the skew along it is positive, then ``pi/2`` and a reflection when the
    skew along its perpendicular is positive, then ``pi/4``. With ``a = -theta`` and ``s = -1`` for
    a reflection (else 1), the target is ``[[cos a, -s sin a], [sin a, s cos a]]``.
    """
    mass, dr, dc, *second = _central_moments(images)
    angle = _axis_angle(*second)
    angle = angle + math.pi * _positive_skew(mass, dr, dc, angle).float()
    flip = _positive_skew(mass, dr, dc, angle + math.pi / 2)
    angle = angle + (math.pi / 2) * flip.float() + math.pi / 4
    a, sign = -angle, 1.0 - 2.0 * flip.float()
    row0 = torch.stack([torch.cos(a), -sign * torch.sin(a)], -1)
    row1 = torch.stack([torch.sin(a), sign * torch.cos(a)], -1)
    return torch.stack([row0, row1], -2)


def moment_probability(epoch: int) -> float:
    """Share of training images shown in canonical pose at ``epoch`` (the original's schedule)."""
    schedule = {0: 1.0, 1: 0.5, 11: 0.3, 41: 0.2, 101: 0.1, 201: 0.0}
    return schedule[max(k for k in schedule if k <= epoch)]
