"""A convolution for image inputs whose input gradient is cheap on the CPU.

Behind an input ST, the classifier's first convolution must pass its gradient back to the
image (the ST's theta learns through it). For an image with 1 to 3 channels and a large
kernel (MNIST's CNN: 1 -> 64 channels, 9x9), oneDNN's backward-data kernel is slow on the
CPU: in fp32 it costs more than the rest of the training step. The same gradient is a
transposed convolution: a matrix product per output position and a col2im, which
``input_gradient`` computes from a channels-last gradient in place, with no copy to NCHW and no
zero-filled column buffer (the flagship's training in fp32 on 2 cores: +44 % images/s with AVX2,
+83 % with AVX-512 for ATen's ``slow_conv_transpose2d`` against plain ``nn.Conv2d``, and
``input_gradient`` a few percent faster again, to the same bits for one-channel images;
interleaved measurements in one process). ``ImageConv2d`` computes it that way and leaves
everything else (forward, weight and bias gradients, CUDA, autocast) to PyTorch's own kernels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _ConvWithTransposedInputGrad(torch.autograd.Function):
    """``F.conv2d(x, weight, bias, padding=padding)`` (stride 1, dilation 1, one group)."""

    @staticmethod
    def forward(ctx, x, weight, bias, padding):
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.has_bias = padding, bias is not None
        return F.conv2d(x, weight, bias, padding=padding)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = grad_w = grad_b = None
        if need_w or need_b:
            _, grad_w, grad_b = torch.ops.aten.convolution_backward(
                grad_out, x, weight, [weight.shape[0]] if ctx.has_bias else None, [1, 1], list(ctx.padding),
                [1, 1], False, [0, 0], 1, [False, need_w, need_b and ctx.has_bias])
        if need_x:
            grad_x = input_gradient(grad_out, weight, ctx.padding, x.shape[-2:]).contiguous(
                memory_format=memory_format_of(x))
        return grad_x, grad_w, grad_b, None


def input_gradient(grad_out: torch.Tensor, weight: torch.Tensor, padding: tuple[int, int],
                   input_size: tuple[int, int]) -> torch.Tensor:
    """The gradient of a stride-1 convolution with respect to its input: a transposed convolution.

    ``grad_out`` ``(N, C_out, H', W')``, ``weight`` ``(C_out, C_in, kh, kw)``; returns a view
    ``(N, C_in, H, W)`` with ``H = H' + kh - 1 - 2 * padding[0]`` (and likewise ``W``). One batched
    product per output position, ``(C_in*kh*kw, C_out) @ (C_out, N)``, reads a channels-last
    ``grad_out`` where it lies, and gives every kernel tap's contribution with the batch innermost, so
    that the ``kh*kw`` shifted sums that place them (the col2im) run over long contiguous rows.
    """
    n, c_out, h_out, w_out = grad_out.shape
    c_in, kh, kw = weight.shape[1:]
    by_position = grad_out.permute(2, 3, 1, 0).reshape(h_out * w_out, c_out, n)
    filters = weight.detach().reshape(c_out, -1).t().expand(h_out * w_out, -1, -1)  # (H'*W', C_in*kh*kw, C_out)
    taps = torch.bmm(filters, by_position).view(h_out, w_out, c_in, kh, kw, n)
    full = grad_out.new_zeros(h_out + kh - 1, w_out + kw - 1, c_in, n)
    for i in range(kh):
        for j in range(kw):
            full[i:i + h_out, j:j + w_out].add_(taps[:, :, :, i, j])
    (top, left), (height, width) = padding, input_size
    return full[top:top + height, left:left + width].permute(3, 2, 0, 1)


def memory_format_of(t: torch.Tensor) -> torch.memory_format:
    """``torch.channels_last`` for a channels-last tensor, else ``torch.contiguous_format``: the layout a
    gradient should come back in."""
    return torch.channels_last if t.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format


class ImageConv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters and state dict) whose input gradient is computed by
    ``input_gradient`` on the CPU in fp32; any other case takes ``nn.Conv2d``'s path."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._transposed_input_grad_applies(x):
            return _ConvWithTransposedInputGrad.apply(x, self.weight, self.bias, self.padding)
        return super().forward(x)

    def _transposed_input_grad_applies(self, x: torch.Tensor) -> bool:
        return (x.requires_grad and torch.is_grad_enabled() and x.device.type == "cpu"
                and x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
                and self.stride == (1, 1) and self.dilation == (1, 1) and self.groups == 1
                and self.padding_mode == "zeros" and isinstance(self.padding, tuple))
