"""Classifiers for SVHN (five digit heads), PlanktonSet and CIFAR-10."""
from __future__ import annotations

import torch
from torch import nn

from .registry import ClassifierLayers, register_classifier

SVHN_DIGITS, SVHN_CLASSES = 5, 11  # five positions, each a digit or "no digit"


class MultiHead(nn.Module):
    """``heads`` Linear layers on the same features: ``(B, F)`` -> ``(B, heads, classes)``."""

    def __init__(self, features: int, heads: int, classes: int):
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(features, classes) for _ in range(heads))

    def forward(self, x):
        return torch.stack([head(x) for head in self.heads], 1)


def dense_head(widths, num_classes: int, dropout: float, heads: int = 1, activation=nn.ReLU,
               dropout_first: bool = True):
    """Flat features -> dense layers, each after a dropout -> dropout -> one or several output layers.

    ``dropout_first=False`` leaves out the dropout before the first dense layer (for classifiers
    whose last block already ends in one)."""
    def build(features: int) -> nn.Module:
        layers, size = [], features
        for index, width in enumerate(widths):
            if dropout_first or index > 0:
                layers.append(nn.Dropout(dropout))
            layers += [nn.Linear(size, width), activation()]
            size = width
        layers.append(nn.Dropout(dropout))
        layers.append(MultiHead(size, heads, num_classes) if heads > 1 else nn.Linear(size, num_classes))
        return nn.Sequential(*layers)
    return build


@register_classifier("SVHN-CNN", [48, 64, 128, 160, 192, 192, 192, 192, 3072, 3072, 3072],
                     "8 conv 5x5 blocks, maxpool after 1, 3, 5, 7, dropout; 3 Linear 3072; 5 heads of 11 classes")
def svhn_cnn(in_shape, p, num_classes):
    layers, channels = [], in_shape[0]
    for i, width in enumerate(p[:8]):
        block = [nn.Conv2d(channels, width, 5, padding=2), nn.ReLU()]
        if i % 2 == 0:
            block.append(nn.MaxPool2d(2, ceil_mode=True))
        if i > 0:
            block.append(nn.Dropout(0.5))
        layers.append(nn.Sequential(*block))
        channels = width
    # Block 8 ends in dropout, so the head has none before its first Linear (one dropout of 0.5 there).
    return ClassifierLayers(layers, dense_head(p[8:], SVHN_CLASSES, 0.5, heads=SVHN_DIGITS, dropout_first=False),
                            blocks=tuple(range(9)))


@register_classifier("plankton", [32, 32, 64, 64, 128, 128, 128, 256, 256, 256, 512, 512],
                     "10 conv 3x3 blocks, leaky ReLU, maxpool 3/2 after 2, 4, 7, 10; 2 Linear 512; 121 classes")
def plankton_cnn(in_shape, p, num_classes):
    layers, channels = [], in_shape[0]
    for i, width in enumerate(p[:10]):
        block = [nn.Conv2d(channels, width, 3, padding=1), nn.LeakyReLU(1 / 3)]
        if i in (1, 3, 6, 9):
            block.append(nn.MaxPool2d(3, stride=2))
        layers.append(nn.Sequential(*block))
        channels = width
    leaky = lambda: nn.LeakyReLU(1 / 3)  # noqa: E731
    return ClassifierLayers(layers, dense_head(p[10:], num_classes, 0.5, activation=leaky), blocks=tuple(range(11)))


@register_classifier("CNN2", [32, 32, 64, 64, 128, 128],
                     "CIFAR-10: 3 x [conv 3x3, ReLU, BN, conv 3x3, ReLU, BN, maxpool, dropout]; a flat list of "
                     "24 layers as in the original, so blocks end at -p 8, 16, 24")
def cifar_cnn(in_shape, p, num_classes):
    layers, channels = [], in_shape[0]
    for stage, dropout in enumerate((0.2, 0.3, 0.4)):
        for width in p[2 * stage:2 * stage + 2]:
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(width)]
            channels = width
        layers += [nn.MaxPool2d(2), nn.Dropout2d(dropout)]
    return ClassifierLayers(layers, lambda features: nn.Linear(features, num_classes), blocks=(0, 8, 16, 24))
