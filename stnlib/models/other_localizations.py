"""Localization networks for SVHN, PlanktonSet and CIFAR-10."""
from __future__ import annotations

from torch import nn

from .localizations import with_dense_tail
from .registry import register_localization


@register_localization("SVHN-l", [32, 32, 32, 32], "conv 5x5 32, maxpool, ReLU, conv 5x5 32, ReLU, 2 Linear 32")
def svhn_large(in_shape, p):
    return with_dense_tail([nn.Conv2d(in_shape[0], p[0], 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
                            nn.Conv2d(p[0], p[1], 5, padding=2), nn.ReLU()], in_shape, p[2:])


@register_localization("SVHN-d", [32, 32, 32, 32], "SVHN-l with dropout")
def svhn_dropout(in_shape, p):
    body = svhn_large(in_shape, p)
    return nn.Sequential(*[m for layer in body for m in ((layer, nn.Dropout(0.5)) if isinstance(layer, nn.ReLU)
                                                         else (layer,))])


@register_localization("SVHN-s", [32, 32], "two Linear 32")
def svhn_small(in_shape, p):
    return with_dense_tail([], in_shape, p)


def conv3x3_stack(in_channels: int, widths, activation, pool_after) -> list[nn.Module]:
    """3x3 convolutions (padding 1), each followed by ``activation()``, and by a 3x3/2 max-pool when its
    position (1-based) is in ``pool_after``."""
    layers, channels = [], in_channels
    for position, width in enumerate(widths, start=1):
        layers += [nn.Conv2d(channels, width, 3, padding=1), activation()]
        if position in pool_after:
            layers.append(nn.MaxPool2d(3, stride=2))
        channels = width
    return layers


def leaky() -> nn.Module:
    return nn.LeakyReLU(1 / 3)


# The PlanktonSet localizations as the original defines them (95x95 input: the first Linear reads
# 32*23*23 = 16,928, 32*47*47 = 70,688 and 64*23*23 = 33,856 features).
@register_localization("plankton-l", [32, 32, 32, 32], "2 conv 3x3, each ReLU and maxpool 3/2; 2 Linear 32")
def plankton_large(in_shape, p):
    return with_dense_tail(conv3x3_stack(in_shape[0], p[:2], nn.ReLU, pool_after=(1, 2)), in_shape, p[2:])


@register_localization("plankton2", [32, 32, 64, 64], "2 conv 3x3 with leaky ReLU, maxpool 3/2 after the second; 2 Linear 64")
def plankton_depth2(in_shape, p):
    return with_dense_tail(conv3x3_stack(in_shape[0], p[:2], leaky, pool_after=(2,)), in_shape, p[2:])


@register_localization("plankton4", [32, 32, 64, 64, 64, 64],
                       "4 conv 3x3 with leaky ReLU, maxpool 3/2 after the second and fourth; 2 Linear 64")
def plankton_depth4(in_shape, p):
    return with_dense_tail(conv3x3_stack(in_shape[0], p[:4], leaky, pool_after=(2, 4)), in_shape, p[4:])


@register_localization("CNN2", [20, 40, 80],
                       "CIFAR: conv 5x5 20 (padding 2), ReLU, BN, maxpool, conv 5x5 40 (padding 2), ReLU, BN, maxpool, Linear 80")
def cifar_localization(in_shape, p):
    return with_dense_tail([nn.Conv2d(in_shape[0], p[0], 5, padding=2), nn.ReLU(), nn.BatchNorm2d(p[0]), nn.MaxPool2d(2),
                            nn.Conv2d(p[0], p[1], 5, padding=2), nn.ReLU(), nn.BatchNorm2d(p[1]), nn.MaxPool2d(2)],
                           in_shape, p[2:])
