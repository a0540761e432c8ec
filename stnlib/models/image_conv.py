"""A convolution for image inputs whose input gradient is cheap on the CPU.

Behind an input ST, the classifier's first convolution must pass its gradient back to the
image (the ST's theta learns through it). For an image with 1 to 3 channels and a large
kernel (MNIST's CNN: 1 -> 64 channels, 9x9), oneDNN's backward-data kernel is slow on the
CPU: in fp32 it costs more than the rest of the training step. The same gradient is a
transposed convolution, which ATen's own kernel (``slow_conv_transpose2d``: per image, one
``(C_in*kh*kw, C_out) @ (C_out, H'*W')`` product and a col2im) computes several times faster
for these shapes (the flagship's training in fp32 on 2 cores: +44 % images/s with AVX2, +83 % with
AVX-512, against plain ``nn.Conv2d``; interleaved epochs in one process). ``ImageConv2d`` computes
it that way and leaves everything else (forward, weight and bias gradients, CUDA, autocast) to
PyTorch's own kernels.
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
        if need_x:  # the transposed convolution, by ATen's kernel (oneDNN's is the slow one here)
            grad_x = torch.ops.aten.slow_conv_transpose2d(
                grad_out.contiguous(), _with_standard_strides(weight), list(weight.shape[-2:]), None, [1, 1],
                list(ctx.padding), [0, 0], [1, 1])
        return grad_x, grad_w, grad_b, None


def _with_standard_strides(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` with NCHW strides. A model in channels-last memory holds a one-channel filter bank
    ``(C_out, 1, kh, kw)`` with strides ``(kh*kw, 1, kw, 1)``: contiguous in both formats, so
    ``contiguous()`` keeps it, and ``slow_conv_transpose2d`` then takes its channels-last path, copying
    the NCHW ``grad_out`` back to channels-last and zero-filling a column buffer first (in fp32 on
    2 cores, a sixth of the flagship's training step). The copy is a few kilobytes."""
    return weight.clone(memory_format=torch.contiguous_format)


class ImageConv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters and state dict) whose input gradient is computed by ATen's
    transposed convolution on the CPU in fp32; any other case takes ``nn.Conv2d``'s path."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._transposed_input_grad_applies(x):
            return _ConvWithTransposedInputGrad.apply(x, self.weight, self.bias, self.padding)
        return super().forward(x)

    def _transposed_input_grad_applies(self, x: torch.Tensor) -> bool:
        return (x.requires_grad and torch.is_grad_enabled() and x.device.type == "cpu"
                and x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
                and self.stride == (1, 1) and self.dilation == (1, 1) and self.groups == 1
                and self.padding_mode == "zeros" and isinstance(self.padding, tuple))
