"""A rotation-equivariant CNN: group convolutions over the four quarter turns (the group p4).

The field's other answer to rotations: instead of learning to undo them (an ST), build every layer
so that turning the input by 90 degrees turns each feature map by 90 degrees and shifts it one step
along its orientation axis, and pool over orientations and space at the end, so the logits do not
change at all (Cohen & Welling, "Group equivariant convolutional networks", ICML 2016).

Feature maps of the group layers are ``(B, C * 4, H, W)``: channel ``c`` at orientation ``r`` is
index ``c * 4 + r``. Orientation ``r`` answers to the pattern its filter sees after ``r``
counter-clockwise quarter turns (``torch.rot90`` with ``k = r`` on the last two dimensions).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .registry import ClassifierLayers, register_classifier

ORIENTATIONS = 4


class LiftingConv2d(nn.Module):
    """Image ``(B, C_in, H, W)`` -> group maps ``(B, C_out * 4, H', W')``: each filter applied at the
    four quarter turns (no padding, like the CNN's convolutions)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def expanded_weight(self) -> torch.Tensor:
        """``(C_out * 4, C_in, k, k)``: row ``c * 4 + r`` is filter ``c`` turned ``r`` quarter turns."""
        turned = torch.stack([torch.rot90(self.weight, r, dims=(-2, -1)) for r in range(ORIENTATIONS)], 1)
        return turned.flatten(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, _in_memory_format_of(self.weight, self.expanded_weight()),
                        self.bias.repeat_interleave(ORIENTATIONS))


class GroupConv2d(nn.Module):
    """Group maps ``(B, C_in * 4, H, W)`` -> ``(B, C_out * 4, H', W')``, equivariant to quarter turns:
    the filter of output orientation ``r`` is the base filter turned ``r`` times, with its input
    orientations cyclically shifted by ``r``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        # (C_out, C_in * 4, k, k): input orientation s of input channel i at column i * 4 + s (4-D, so the
        # model can move to channels-last memory like the others)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels * ORIENTATIONS, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def expanded_weight(self) -> torch.Tensor:
        """``(C_out * 4, C_in * 4, k, k)`` with rows ordered ``c * 4 + r``."""
        base = self.weight.unflatten(1, (-1, ORIENTATIONS))  # (C_out, C_in, 4, k, k)
        turned = [torch.rot90(torch.roll(base, r, dims=2), r, dims=(-2, -1)) for r in range(ORIENTATIONS)]
        return torch.stack(turned, 1).flatten(0, 1).flatten(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, _in_memory_format_of(self.weight, self.expanded_weight()),
                        self.bias.repeat_interleave(ORIENTATIONS))


def _in_memory_format_of(parameter: torch.Tensor, expanded: torch.Tensor) -> torch.Tensor:
    """``expanded`` in channels-last memory when the model was moved there (``parameter`` is), so that
    the convolution runs, and emits its maps, channels-last like the other models' (NCHW maps make
    oneDNN's convolutions and max pooling several times slower). ``clone`` writes the strides out even
    for one input channel, where ``contiguous`` would keep the NCHW strides of an ambiguous layout."""
    if parameter.dim() == 4 and parameter.stride(1) == 1:  # channels-last strides, one channel included
        return expanded.clone(memory_format=torch.channels_last)
    return expanded


class InvariantPool(nn.Module):
    """Group maps ``(B, C * 4, H, W)`` -> ``(B, C)``: the maximum over orientations and positions,
    unchanged when the input turns by quarter turns."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=(-2, -1)).unflatten(1, (-1, ORIENTATIONS)).amax(2)


@register_classifier("P4CNN", [32, 32], "the CNN with p4 group convolutions (quarter turns), max over orientations "
                                        "and positions: logits invariant to 90-degree turns (ST at 0, 3 or 6)")
def p4cnn(in_shape, params, num_classes):
    channels = in_shape[0]
    layers = [
        LiftingConv2d(channels, params[0], kernel_size=9), nn.MaxPool2d(2), nn.ReLU(),
        GroupConv2d(params[0], params[1], kernel_size=7), nn.MaxPool2d(2), nn.ReLU(),
        InvariantPool(),
    ]
    return ClassifierLayers(layers, lambda features: nn.Linear(features, num_classes), blocks=(0, 3, 6))
