"""stnlib's CPU fast paths for the paper's CNN, applied in one place.

The paper's classifiers are defined with plain ``nn.Conv2d`` (``stnlib.models.classifiers``). Trained on a
CPU in fp32, two of the CNN's convolutions have faster forms with the same parameters and state dict:
the first, which reads the image, computes its input gradient as a transposed convolution
(``ImageConv2d``); the others (64 -> 64, 7x7 on 10x10 maps) run through the Fourier domain of their small
canvas where that pays (``FourierConv2d``). Each checks at every call that it applies (CPU, fp32, gradients
on, no autocast) and is ``nn.Conv2d`` otherwise, so a model with them evaluates to the same bits as the
plain one, and trains on CUDA as it does.

``build_model`` applies them; ``build_model(..., cpu_fast_paths=False)`` keeps the plain layers, which
``torch.func`` transforms (``vmap``) need: the fast paths are custom autograd functions.
"""
from __future__ import annotations

from torch import nn

from .fourier_conv import FourierConv2d
from .image_conv import ImageConv2d
from .network import STNetwork

FAST_CLASSIFIERS = ("CNN", "CNNb")  # the paper's MNIST CNN, with and without BatchNorm


def use_cpu_fast_paths(model: STNetwork) -> STNetwork:
    """Turn the convolutions of ``model``'s classifier, and of STN-DLk's copies of its blocks, into their
    fast forms in place (the first of each into ``ImageConv2d``, the others into ``FourierConv2d``);
    other classifiers are left as they are. Returns ``model``."""
    if model.model_name not in FAST_CLASSIFIERS:
        return model
    for layers in (model.layers, *(localization.prefix for localization in model.localizations)):
        convs = [module for module in layers.modules() if type(module) is nn.Conv2d]
        for position, conv in enumerate(convs):
            conv.__class__ = ImageConv2d if position == 0 else FourierConv2d
    return model


def plain_layers(model: STNetwork) -> STNetwork:
    """Turn every fast form in ``model`` back into ``nn.Conv2d`` in place. Returns ``model``."""
    for module in model.modules():
        if isinstance(module, (ImageConv2d, FourierConv2d)):
            module.__class__ = nn.Conv2d
    return model
