"""A convolution on a small canvas, computed in the discrete Fourier domain on the CPU.

MNIST's CNN has a second convolution of 64 -> 64 channels with a 7x7 kernel on a 10x10 canvas
(4x4 valid outputs). Done directly, each output position costs 49 multiplications per pair of
channels. In the Fourier domain of the 10x10 canvas the whole 4x4 output costs 52 complex
products per pair (13 real multiplications per position), and the transforms to and from that
domain are small fixed matrices: about half the multiplications in all, and every part of the
convolution, forward and backward, a dense matrix product (``fourier_conv2d``). Training STN-C0 in
fp32 on 2 cores is 1.15-1.22x faster AVX2-capped and 1.07-1.12x with AVX-512
(``benchmarks/fourier_conv_speed.py``). Results agree with ``F.conv2d`` to fp32 rounding
(relative error about 1e-6), not to the bit.

``FourierConv2d`` is an ``nn.Conv2d`` (same parameters and state dict) that takes this path when
it trains, on the CPU in fp32, for a stride-1, unpadded convolution whose canvas is small enough
for the transforms to pay (``fourier_pays``). Any other case takes ``nn.Conv2d``'s path, and so
does a pass without gradients (evaluation): forward alone, over evaluation's large batches, the
transformed canvases outgrow the caches and oneDNN's direct kernel is faster (STN-C0, 1,000
images, AVX2: 87 ms direct against 102 ms).
"""
from __future__ import annotations

import functools
import math

import torch
from torch import nn

from .image_conv import memory_format_of


# The narrow transform products run below the direct kernels' share of the peak: measured in fp32 on 2 AVX2
# cores, forward and backward, 64 -> 64 channels, 7x7 on 10x10 (0.51 of the direct multiplications) is
# 1.1-1.4x faster over several runs, 32 -> 32, 5x5 on 12x12 (0.79) 1.1x slower.
FOURIER_SHARE = 0.6


@functools.cache
def _bins(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The Fourier bins of a real ``height x width`` canvas that determine it, without the ones that
    are complex conjugates of kept ones: frequencies ``u``, ``v`` (each ``(B, 1)``, float64) and
    how many bins of the full spectrum each stands for (``(B, 1)``: 1 or 2)."""
    u, v = torch.meshgrid(torch.arange(height), torch.arange(width // 2 + 1), indexing="ij")
    self_conjugate_v = (v == 0) | ((width % 2 == 0) & (v == width // 2))
    self_conjugate_u = (u == 0) | ((height % 2 == 0) & (u == height // 2))
    keep = ~self_conjugate_v | (u <= height // 2)
    multiplicity = torch.where(self_conjugate_v & self_conjugate_u, 1.0, 2.0)
    return tuple(t[keep].to(torch.float64).reshape(-1, 1) for t in (u, v, multiplicity))


def _grid(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column index of every position of a ``height x width`` grid (float64, row-major)."""
    return torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                          indexing="ij")


def _cos_sin_rows(phase: torch.Tensor) -> torch.Tensor:
    """``(B, P)`` phases -> ``(2B, P)`` rows ``cos, -sin`` interleaved per bin: the real and imaginary
    parts of ``exp(-i * phase)``."""
    return torch.stack([phase.cos(), -phase.sin()], dim=1).reshape(-1, phase.shape[1])


@functools.cache
def fourier_matrices(height: int, width: int, kernel_height: int, kernel_width: int,
                     dtype: torch.dtype = torch.float32, device: str = "cpu"):
    """The fixed transforms of ``fourier_conv2d`` for a ``height x width`` canvas and a
    ``kernel_height x kernel_width`` kernel, as ``(canvas, kernel, output)``:

    - ``canvas`` ``(2B, H*W)``: a canvas (flattened row-major) to its ``B`` kept Fourier bins, real and
      imaginary part interleaved per bin (``X[u, v] = sum x[h, w] exp(-2 pi i (u h / H + v w / W))``);
    - ``kernel`` ``(2B, kh*kw)``: the same transform of the kernel placed at the canvas's corner;
    - ``output`` ``(H'*W', 2B)``: bins back to the valid outputs (``H' = H - kh + 1``), the inverse
      transform counting each kept bin for its conjugate too.
    """
    u, v, multiplicity = _bins(height, width)

    def phases(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:  # (B, positions)
        return 2 * math.pi * (u * rows.reshape(1, -1) / height + v * cols.reshape(1, -1) / width)

    canvas = _cos_sin_rows(phases(*_grid(height, width)))
    kernel = _cos_sin_rows(phases(*_grid(kernel_height, kernel_width)))
    out_phase = phases(*_grid(height - kernel_height + 1, width - kernel_width + 1))
    weight = multiplicity / (height * width)
    output = torch.stack([weight * out_phase.cos(), -weight * out_phase.sin()], dim=1)
    output = output.reshape(-1, out_phase.shape[1]).t()
    return tuple(m.to(dtype=dtype, device=device).contiguous() for m in (canvas, kernel, output))


def fourier_pays(height: int, width: int, kernel_height: int, kernel_width: int,
                 in_channels: int, out_channels: int) -> bool:
    """Whether ``fourier_conv2d`` is the faster path: its real multiplications per image (the transforms
    in, ``H*W`` by ``2B`` per input channel, and out, ``2B`` by ``H'*W'`` per output channel, and the
    per-bin mixing, 4 real products per complex one) are under ``FOURIER_SHARE`` of a direct
    convolution's (``kh*kw`` per output position and pair of channels)."""
    valid = (height - kernel_height + 1) * (width - kernel_width + 1)
    if valid <= 0:
        return False
    rows = 2 * len(_bins(height, width)[0])
    fourier = rows * (height * width * in_channels + 2 * in_channels * out_channels + valid * out_channels)
    return fourier < FOURIER_SHARE * valid * kernel_height * kernel_width * in_channels * out_channels


class _FourierConv(torch.autograd.Function):
    """``F.conv2d(x, weight, bias)`` (stride 1, no padding, one group) through ``fourier_matrices``.

    With ``x`` as columns ``(H*W, C_in*N)`` (batch innermost): bins ``canvas @ x`` ``(B, 2C_in, N)``;
    per bin the complex product with the kernel's conjugate spectrum (correlation, not convolution)
    as one real ``(2C_out, 2C_in)`` matrix ``[[Wr, Wi], [-Wi, Wr]]``; the outputs ``output @ bins``.
    The backward pass runs the same products transposed.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        n, c_in, height, width = x.shape
        c_out, _, kh, kw = weight.shape
        canvas, kernel, output = fourier_matrices(height, width, kh, kw, x.dtype, str(x.device))
        bins = canvas.shape[0] // 2
        x_bins = (canvas @ x.permute(2, 3, 1, 0).reshape(height * width, c_in * n)).view(bins, 2 * c_in, n)
        w_bins = (kernel @ weight.permute(2, 3, 0, 1).reshape(kh * kw, c_out * c_in)).view(bins, 2, c_out, c_in)
        mixing = x.new_empty(bins, 2 * c_out, 2 * c_in)
        real, imag = w_bins[:, 0], w_bins[:, 1]
        mixing[:, :c_out, :c_in] = real
        mixing[:, :c_out, c_in:] = imag
        mixing[:, c_out:, :c_in] = -imag
        mixing[:, c_out:, c_in:] = real
        y_bins = torch.bmm(mixing, x_bins)                                      # (B, 2C_out, N)
        y = output @ y_bins.view(2 * bins, c_out * n)                            # (H'*W', C_out*N)
        h_out, w_out = height - kh + 1, width - kw + 1
        y = _batch_first(y, (h_out, w_out, c_out, n), memory_format_of(x))
        if bias is not None:
            y = y + bias.view(1, -1, 1, 1)
        ctx.save_for_backward(x_bins, mixing)
        ctx.shapes = (n, c_in, height, width, c_out, kh, kw)
        ctx.formats = tuple(memory_format_of(t) for t in (x, weight))
        ctx.has_bias = bias is not None
        return y.contiguous(memory_format=ctx.formats[0])

    @staticmethod
    def backward(ctx, grad_y):
        x_bins, mixing = ctx.saved_tensors
        n, c_in, height, width, c_out, kh, kw = ctx.shapes
        canvas, kernel, output = fourier_matrices(height, width, kh, kw, grad_y.dtype, str(grad_y.device))
        bins = canvas.shape[0] // 2
        h_out, w_out = height - kh + 1, width - kw + 1
        grad_columns = grad_y.permute(2, 3, 1, 0).reshape(h_out * w_out, c_out * n)
        grad_y_bins = (output.t() @ grad_columns).view(bins, 2 * c_out, n)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x_bins = torch.bmm(mixing.transpose(1, 2), grad_y_bins).view(2 * bins, c_in * n)
            grad_x = _batch_first(canvas.t() @ grad_x_bins, (height, width, c_in, n), ctx.formats[0])
        if ctx.needs_input_grad[1]:
            grad_mixing = torch.bmm(grad_y_bins, x_bins.transpose(1, 2))        # (B, 2C_out, 2C_in)
            top, bottom = grad_mixing[:, :c_out], grad_mixing[:, c_out:]
            grad_real = top[:, :, :c_in] + bottom[:, :, c_in:]
            grad_imag = top[:, :, c_in:] - bottom[:, :, :c_in]
            grad_w_bins = torch.stack([grad_real, grad_imag], dim=1).view(2 * bins, c_out * c_in)
            grad_w = (kernel.t() @ grad_w_bins).view(kh, kw, c_out, c_in).permute(2, 3, 0, 1)
            grad_w = grad_w.contiguous(memory_format=ctx.formats[1])
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_y.sum((0, 2, 3))
        return grad_x, grad_w, grad_b


def _batch_first(t: torch.Tensor, shape: tuple[int, int, int, int], memory_format: torch.memory_format) -> torch.Tensor:
    """``t``, contiguous with its elements in the order of ``shape`` ``(H, W, C, N)`` (batch innermost), as an
    ``(N, C, H, W)`` tensor laid out in ``memory_format``. For channels-last this is one 2-D transpose,
    ``(H*W*C, N)`` to ``(N, H*W*C)``, which ATen copies in cache-sized blocks: on one thread 3-4x faster
    than the same copy as a 4-D permutation (the STN-C0's block-1 gradient, 128 images: 1.7 against 5.2 ms)."""
    height, width, channels, n = shape
    if memory_format == torch.channels_last:
        return t.reshape(-1, n).t().contiguous().view(n, height, width, channels).permute(0, 3, 1, 2)
    return t.view(shape).permute(3, 2, 0, 1).contiguous(memory_format=memory_format)


def fourier_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.conv2d(x, weight, bias)`` for stride 1, no padding, one group, through the Fourier domain of
    ``x``'s canvas. ``x`` ``(N, C_in, H, W)``, ``weight`` ``(C_out, C_in, kh, kw)``; returns
    ``(N, C_out, H - kh + 1, W - kw + 1)`` in ``x``'s memory format."""
    return _FourierConv.apply(x, weight, bias)


class FourierConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose CPU fp32 path in training is ``fourier_conv2d`` where that pays (``fourier_pays``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._fourier_applies(x):
            return fourier_conv2d(x, self.weight, self.bias)
        return super().forward(x)

    def _fourier_applies(self, x: torch.Tensor) -> bool:
        return (torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)
                and x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4
                and not torch.is_autocast_enabled("cpu") and self.weight.dtype == torch.float32
                and self.stride == (1, 1) and self.dilation == (1, 1) and self.groups == 1
                and self.padding == (0, 0) and fourier_pays(*x.shape[-2:], *self.kernel_size,
                                                           self.in_channels, self.out_channels))
