"""Classifiers of the MNIST family: CNN, CNNb and FCN, with the paper's layers (``build_model`` gives the
CNN's convolutions their CPU fast forms, ``stnlib.models.cpu_fast_paths``)."""
from __future__ import annotations

import math

from torch import nn

from .registry import ClassifierLayers, register_classifier


def linear_head(num_classes: int):
    return lambda features: nn.Linear(features, num_classes)


@register_classifier("CNN", [64, 64], "conv 9x9, maxpool, ReLU, conv 7x7, maxpool, ReLU (ST at 0, 3 or 6)")
def cnn(in_shape, params, num_classes):
    channels = in_shape[0]
    layers = [
        nn.Conv2d(channels, params[0], kernel_size=9), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(params[0], params[1], kernel_size=7), nn.MaxPool2d(2), nn.ReLU(),
    ]
    return ClassifierLayers(layers, linear_head(num_classes), blocks=(0, 3, 6))


@register_classifier("CNNb", [64, 64], "CNN with BatchNorm after each block; 2 layer entries (ST at 0, 1 or 2)")
def cnn_batchnorm(in_shape, params, num_classes):
    channels = in_shape[0]
    layers = [
        nn.Sequential(nn.Conv2d(channels, params[0], kernel_size=9), nn.MaxPool2d(2), nn.ReLU(),
                      nn.BatchNorm2d(params[0])),
        nn.Sequential(nn.Conv2d(params[0], params[1], kernel_size=7), nn.MaxPool2d(2), nn.ReLU(),
                      nn.BatchNorm2d(params[1])),
    ]
    return ClassifierLayers(layers, linear_head(num_classes), blocks=(0, 1, 2))


@register_classifier("FCN", [256, 200], "flatten, Linear, ReLU, Linear, ReLU (any input size)")
def fcn(in_shape, params, num_classes):
    layers = [
        nn.Flatten(),
        nn.Linear(math.prod(in_shape), params[0]), nn.ReLU(),
        nn.Linear(params[0], params[1]), nn.ReLU(),
    ]
    return ClassifierLayers(layers, linear_head(num_classes), blocks=(0, 3, 5))
