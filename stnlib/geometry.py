"""Affine transformations in the normalised coordinates of ``F.affine_grid``.

Conventions used throughout stnlib:

* Images are ``(B, C, H, W)`` tensors. Pixel coordinates are normalised to
  ``[-1, 1]`` with ``align_corners=False``; ``x`` points right and ``y`` points
  *down*, as on screen.
* ``theta`` is a ``(B, 2, 3)`` sampling matrix: the output pixel at ``(x, y)``
  takes the input value at ``theta @ (x, y, 1)``. The identity is
  ``[[1, 0, 0], [0, 1, 0]]``.
* Angles are in degrees and positive angles turn an image *counter-clockwise*
  on screen, as ``torchvision.transforms.functional.rotate`` does.
* ``angle_from_theta`` reads the rotation a theta applies to its input as the
  *nearest rotation* of theta's 2x2 part, ``atan2(t10 - t01, t00 + t11)``, as the
  original code's angle statistics do (``-atan2(t01 - t10, t00 + t11)``): shear,
  uneven scale and reflection-free zoom do not distort it. For a pure rotation it
  equals ``-atan(t01 / t00)`` within +-90 degrees and covers +-180 degrees.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

import torch
import torch.nn.functional as F

ALIGN_CORNERS = False

# Inside ``vmap`` (run groups) a tensor cannot be read on the host, so ``warp`` cannot stop a
# non-finite theta before sampling; ``nonfinite_theta_propagates`` makes it carry the NaN to its output instead.
_NONFINITE_PROPAGATES = contextvars.ContextVar("nonfinite_theta_propagates", default=False)


@contextlib.contextmanager
def nonfinite_theta_propagates() -> Iterator[None]:
    """Within the block ``warp`` never reads ``theta`` on the host (as ``torch.func.vmap`` requires): a
    non-finite theta samples outside the image and makes its image's output NaN, so the loss shows it."""
    token = _NONFINITE_PROPAGATES.set(True)
    try:
        yield
    finally:
        _NONFINITE_PROPAGATES.reset(token)


def identity_theta(batch_size: int = 1, device=None, dtype=torch.float32) -> torch.Tensor:
    """Identity sampling matrices, ``(batch_size, 2, 3)``."""
    eye = torch.eye(2, 3, device=device, dtype=dtype)
    return eye.expand(batch_size, 2, 3).clone()


def theta_from_angle(angle: torch.Tensor, scale: torch.Tensor | float = 1.0,
                     shift: torch.Tensor | None = None) -> torch.Tensor:
    """Theta that rotates an image counter-clockwise by ``angle`` degrees.

    Args:
        angle: ``(B,)`` degrees.
        scale: zoom factor, scalar or ``(B,)``; ``2`` makes content twice as large.
        shift: ``(B, 2)`` displacement of the content in normalised units
            (``+x`` right, ``+y`` down), or ``None``.
    Returns:
        ``(B, 2, 3)`` sampling matrices (the inverse of the content's motion).
    """
    rad = torch.deg2rad(angle.float())
    cos, sin = torch.cos(rad), torch.sin(rad)
    scale = torch.as_tensor(scale, dtype=cos.dtype, device=cos.device)
    row0 = torch.stack([cos, -sin], dim=-1)
    row1 = torch.stack([sin, cos], dim=-1)
    linear = torch.stack([row0, row1], dim=-2) / scale.reshape(-1, 1, 1)  # (B, 2, 2)
    if shift is None:
        offset = torch.zeros(linear.shape[0], 2, 1, dtype=linear.dtype, device=linear.device)
    else:
        offset = -linear @ shift.float().reshape(-1, 2, 1)  # sample where content came from
    return torch.cat([linear, offset], dim=-1)


def angle_from_theta(theta: torch.Tensor) -> torch.Tensor:
    """Counter-clockwise rotation, in degrees, that ``theta`` applies: ``(B, 2, 3)`` -> ``(B,)``.

    The angle of the rotation nearest (in the Frobenius norm) to theta's linear part
    ``[[t00, t01], [t10, t11]]``: ``atan2(t10 - t01, t00 + t11)``. For theta of
    ``theta_from_angle(a)`` (``t00 = t11 = cos a``, ``t10 = -t01 = sin a``) it gives ``a``.
    """
    theta = theta.reshape(-1, 2, 3).float()
    return torch.rad2deg(torch.atan2(theta[:, 1, 0] - theta[:, 0, 1], theta[:, 0, 0] + theta[:, 1, 1]))


def undone_angle_from_theta(theta: torch.Tensor) -> torch.Tensor:
    """The input rotation (degrees) that ``theta`` undoes: ``-angle_from_theta``.

    An ST that perfectly aligns an input rotated by ``a`` degrees gives ``a`` here,
    so this is the quantity to plot against the true angle.
    """
    return -angle_from_theta(theta)


def scale_from_theta(theta: torch.Tensor) -> torch.Tensor:
    """Zoom factor that ``theta`` applies (``1 / sqrt|det|``): ``(B, 2, 3)`` -> ``(B,)``."""
    theta = theta.reshape(-1, 2, 3).float()
    return torch.linalg.det(theta[:, :, :2]).abs().clamp_min(1e-12).rsqrt()


def shift_from_theta(theta: torch.Tensor) -> torch.Tensor:
    """Where ``theta`` moves the input's centre, normalised units: ``(B, 2, 3)`` -> ``(B, 2)``."""
    homogeneous = to_homogeneous(theta.reshape(-1, 2, 3).float())
    return torch.linalg.inv(homogeneous)[:, :2, 2]


def to_homogeneous(theta: torch.Tensor) -> torch.Tensor:
    """``(B, 2, 3)`` -> ``(B, 3, 3)`` with a last row ``(0, 0, 1)``."""
    last_row = torch.zeros_like(theta[:, :1, :])
    last_row[:, :, 2] = 1
    return torch.cat([theta, last_row], dim=1)


def compose(outer: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
    """Theta equal to warping with ``outer`` and then with ``inner``: ``(B, 2, 3)`` each.

    Sampling with the result reads the input where ``warp(warp(x, outer), inner)``
    would, without resampling twice.
    """
    return (to_homogeneous(outer) @ to_homogeneous(inner))[:, :2, :]


def invert(theta: torch.Tensor) -> torch.Tensor:
    """Theta of the inverse warp: ``(B, 2, 3)`` -> ``(B, 2, 3)``."""
    return torch.linalg.inv(to_homogeneous(theta.float()))[:, :2, :]


def warp(x: torch.Tensor, theta: torch.Tensor, size: tuple[int, int] | None = None,
         padding_mode: str = "zeros") -> torch.Tensor:
    """Bilinearly resample ``x`` with ``theta``.

    Args:
        x: ``(B, C, H, W)``.
        theta: ``(B, 2, 3)`` sampling matrices (see the module docstring).
        size: output ``(H', W')``; defaults to ``(H, W)``.
        padding_mode: ``"zeros"``, ``"border"`` or ``"reflection"``.
    Returns:
        ``(B, C, H', W')`` in ``x``'s dtype. The grid is built in float32 (float64 for float64 ``x``).
    Raises:
        FloatingPointError: on the CPU, when ``theta`` holds NaN or infinity.
    """
    batch, channels, height, width = x.shape
    out_h, out_w = size if size is not None else (height, width)
    propagate = _NONFINITE_PROPAGATES.get()
    if x.device.type == "cpu" and not propagate and not bool(torch.isfinite(theta).all()):
        # grid_sample's CPU kernels read out of bounds on NaN coordinates: stop here instead.
        raise FloatingPointError("theta is not finite (the localization network diverged)")
    precision = torch.float64 if x.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=x.device.type, enabled=False):
        theta = theta.to(precision)
        grid = sampling_grid(theta, out_h, out_w)
        if propagate:
            grid = torch.where(torch.isfinite(grid), grid, 2.0)  # outside the image: safe to sample
        out = F.grid_sample(x.to(precision), grid, mode="bilinear", padding_mode=padding_mode,
                            align_corners=ALIGN_CORNERS)
        if propagate:
            out = out + 0.0 * theta.sum(dim=(1, 2)).reshape(-1, 1, 1, 1)  # NaN where theta is not finite
    return out.to(x.dtype)


def sampling_grid(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Where each output pixel samples: ``(B, 2, 3)`` -> ``(B, height, width, 2)`` of normalised ``(x, y)``.

    Bit for bit ``F.affine_grid(theta, (B, C, height, width), align_corners=False)``, built as one
    batched product, which ``torch.func.vmap`` batches (``affine_grid`` has no batching rule).
    """
    def coordinates(n: int) -> torch.Tensor:  # pixel centres, as affine_grid computes them
        return torch.linspace(-1, 1, n, device=theta.device, dtype=theta.dtype) * (n - 1) / n

    ys, xs = torch.meshgrid(coordinates(height), coordinates(width), indexing="ij")
    base = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).reshape(1, height * width, 3)
    grid = base.expand(theta.shape[0], -1, -1).bmm(theta.transpose(1, 2))
    return grid.reshape(theta.shape[0], height, width, 2)


def rotate(x: torch.Tensor, angle: torch.Tensor | float, padding_mode: str = "zeros") -> torch.Tensor:
    """Rotate each image of ``x`` ``(B, C, H, W)`` counter-clockwise by ``angle`` degrees (``(B,)`` or scalar)."""
    angle = torch.as_tensor(angle, dtype=torch.float32, device=x.device).expand(x.shape[0])
    return warp(x, theta_from_angle(angle).to(x.device), padding_mode=padding_mode)
