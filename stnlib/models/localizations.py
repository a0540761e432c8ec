"""Localization network bodies of the MNIST family.

Each builder gets the shape ``(C, H, W)`` (or ``(F,)``) of the tensor it reads
and its layer widths, and returns a module with flat ``(B, F)`` output; the
affine regression layer is added by ``stnlib.models.st.Localization``.
Spatial sizes are inferred, so every body works at any input size it can
reduce (28x28 MNIST, 60x60 translated, 112x112 scaled, feature maps).
"""
from __future__ import annotations

from torch import nn

from .registry import flat_size, register_localization


class Downsample(nn.Module):
    """Bilinear resize by ``factor`` (0.5 halves each side)."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return nn.functional.interpolate(x, scale_factor=self.factor, mode="bilinear", align_corners=False)

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


def dense(in_features: int, widths, batchnorm: bool = False) -> list[nn.Module]:
    """Linear + ReLU (+ BatchNorm1d) for each width."""
    layers = []
    for width in widths:
        layers += [nn.Linear(in_features, width), nn.ReLU()]
        if batchnorm:
            layers.append(nn.BatchNorm1d(width))
        in_features = width
    return layers


def with_dense_tail(features: list[nn.Module], in_shape, widths, batchnorm_in: bool = False,
                    batchnorm: bool = False) -> nn.Sequential:
    """``features`` (convolutional part), flatten, then ``dense(widths)``."""
    trunk = nn.Sequential(*features, nn.Flatten())
    size = flat_size(trunk, in_shape)
    head = ([nn.BatchNorm1d(size)] if batchnorm_in else []) + dense(size, widths, batchnorm)
    return nn.Sequential(*features, nn.Flatten(), *head)


@register_localization("CNN", [20, 20, 20], "downsample x0.5, conv 5x5, maxpool, ReLU, conv 5x5, ReLU, Linear, ReLU")
def cnn(in_shape, p):
    return with_dense_tail([Downsample(0.5), nn.Conv2d(in_shape[0], p[0], 5), nn.MaxPool2d(2), nn.ReLU(),
                            nn.Conv2d(p[0], p[1], 5), nn.ReLU()], in_shape, p[2:])


@register_localization("CNNb", [20, 20, 20], "CNN with BatchNorm after each layer")
def cnn_batchnorm(in_shape, p):
    return with_dense_tail([Downsample(0.5), nn.Conv2d(in_shape[0], p[0], 5), nn.ReLU(), nn.MaxPool2d(2),
                            nn.BatchNorm2d(p[0]), nn.Conv2d(p[0], p[1], 5), nn.ReLU()],
                           in_shape, p[2:], batchnorm_in=True, batchnorm=True)


@register_localization("CNNmp", [20, 20, 20], "CNN with a second maxpool; downsamples only 112x112 inputs")
def cnn_maxpool(in_shape, p):
    first = [Downsample(0.5)] if in_shape[-1] == 112 else []
    return with_dense_tail(first + [nn.Conv2d(in_shape[0], p[0], 5), nn.MaxPool2d(2), nn.ReLU(),
                                    nn.Conv2d(p[0], p[1], 5), nn.MaxPool2d(2), nn.ReLU()], in_shape, p[2:])


@register_localization("CNNm", [20, 20, 20], "for feature maps: conv 5x5, maxpool when wider than 24, conv 5x5")
def cnn_middle(in_shape, p):
    pool = [nn.MaxPool2d(2)] if in_shape[-1] - 4 > 20 else []
    return with_dense_tail([nn.Conv2d(in_shape[0], p[0], 5), *pool, nn.ReLU(),
                            nn.Conv2d(p[0], p[1], 5), nn.ReLU()], in_shape, p[2:])


@register_localization("CNNmb", [24, 48, 48], "for feature maps: conv 5x5, maxpool, BatchNorm, two Linear")
def cnn_middle_batchnorm(in_shape, p):
    first = [Downsample(0.5)] if in_shape[-1] == 28 else []
    return with_dense_tail(first + [nn.Conv2d(in_shape[0], p[0], 5), nn.ReLU(), nn.MaxPool2d(2)],
                           in_shape, p[1:], batchnorm_in=True, batchnorm=True)


@register_localization("CNNt", [20, 20, 20], "for translated MNIST: conv 5x5, maxpool, conv 5x5, maxpool when large")
def cnn_translate(in_shape, p):
    side_after_convs = (in_shape[-1] - 4) // 2 - 4
    pool = [nn.MaxPool2d(2)] if side_after_convs > 20 else []
    return with_dense_tail([nn.Conv2d(in_shape[0], p[0], 5), nn.MaxPool2d(2), nn.ReLU(),
                            nn.Conv2d(p[0], p[1], 5), nn.ReLU(), *pool], in_shape, p[2:])


@register_localization("CNNCNN", [64, 20, 20, 20], "conv 9x9 64 first, then the CNN localization's convs")
def cnn_cnn(in_shape, p):
    return with_dense_tail([nn.Conv2d(in_shape[0], p[0], 9), nn.MaxPool2d(2), nn.ReLU(),
                            nn.Conv2d(p[0], p[1], 5), nn.MaxPool2d(2), nn.ReLU(),
                            nn.Conv2d(p[1], p[2], 5), nn.ReLU()], in_shape, p[3:])


@register_localization("CNNCNNmp", [64, 20, 20, 20], "CNNCNN with a maxpool after every conv")
def cnn_cnn_maxpool(in_shape, p):
    return with_dense_tail([nn.Conv2d(in_shape[0], p[0], 9), nn.MaxPool2d(2), nn.ReLU(),
                            nn.Conv2d(p[0], p[1], 5), nn.MaxPool2d(2), nn.ReLU(),
                            nn.Conv2d(p[1], p[2], 5), nn.MaxPool2d(2), nn.ReLU()], in_shape, p[3:])


@register_localization("CNNFCN", [64, 32, 32, 32], "conv 9x9, maxpool, ReLU, then three Linear 32")
def cnn_fcn(in_shape, p):
    return with_dense_tail([nn.Conv2d(in_shape[0], p[0], 9), nn.MaxPool2d(2), nn.ReLU()], in_shape, p[1:])


@register_localization("CNNFCNb", [64, 32, 32, 32], "CNNFCN with maxpool 4 and BatchNorm")
def cnn_fcn_batchnorm(in_shape, p):
    return with_dense_tail([nn.Conv2d(in_shape[0], p[0], 9), nn.MaxPool2d(4), nn.ReLU()], in_shape, p[1:],
                           batchnorm_in=True, batchnorm=True)


@register_localization("CNNFCNmp", [64, 32, 32, 32], "CNNFCN with maxpool 4")
def cnn_fcn_maxpool(in_shape, p):
    return with_dense_tail([nn.Conv2d(in_shape[0], p[0], 9), nn.MaxPool2d(4), nn.ReLU()], in_shape, p[1:])


@register_localization("FCN", [32, 32, 32], "three Linear 32 + ReLU")
def fcn(in_shape, p):
    return with_dense_tail([], in_shape, p)


@register_localization("FCNb", [32, 32, 32], "FCN with BatchNorm after each layer")
def fcn_batchnorm(in_shape, p):
    return with_dense_tail([], in_shape, p, batchnorm=True)


@register_localization("FCNmp", [32, 32, 32], "maxpool 2, then FCN with BatchNorm")
def fcn_maxpool(in_shape, p):
    return with_dense_tail([nn.MaxPool2d(2)], in_shape, p, batchnorm_in=True, batchnorm=True)


@register_localization("FCNmpnob", [32, 32, 32], "maxpool 2, then FCN")
def fcn_maxpool_no_batchnorm(in_shape, p):
    return with_dense_tail([nn.MaxPool2d(2)], in_shape, p)


@register_localization("small", [32], "one Linear 32 + ReLU")
def small(in_shape, p):
    return with_dense_tail([], in_shape, p)
