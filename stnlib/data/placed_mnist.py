"""Translated (60x60) and scaled (112x112) MNIST, from full MNIST or the embedded 5,000 digits; and
the study's compact controls on MNIST's own 28x28 canvas.

The compact controls (``translate5k-28``, ``scale5k-28``) keep everything of the rotation study but
the transformation: the same 28x28 canvas, classifier, cost per image and training recipe, no clutter.
Digits shift by up to 7 pixels in x and y (a quarter of the canvas; the 20x20 box of an MNIST digit
may lose up to 3 pixels at the edge), or zoom by ``2**u``, ``u`` uniform in ``[-1, 0.5]`` (14 to 40
pixels for the 28-pixel digit field; 0.5 to 1.41 times the digit).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from .images import ImageData
from .mnist import load_mnist, load_mnist5k
from .registry import register_dataset

TRANSLATE_CANVAS, SCALE_CANVAS = 60, 112
CONTROL_CANVAS, CONTROL_MAX_SHIFT, CONTROL_LOG2_SCALE = 28, 7.0, (-1.0, 0.5)
# The original's --normalize constants for the canvases (mostly background, so darker than MNIST's).
TRANSLATE_MEAN, TRANSLATE_STD = (0.0363,), (0.1870,)
SCALE_MEAN, SCALE_STD = (0.0414,), (0.1751,)


def translated(data: ImageData, name: str) -> ImageData:
    return dataclasses.replace(data, name=name, kind="translate", canvas=TRANSLATE_CANVAS, st_downsample=2,
                               mean=TRANSLATE_MEAN, std=TRANSLATE_STD)


def scaled(data: ImageData, name: str) -> ImageData:
    return dataclasses.replace(data, name=name, kind="scale", canvas=SCALE_CANVAS, mean=SCALE_MEAN, std=SCALE_STD)


@register_dataset("translate", "MNIST digits at random places of a 60x60 canvas with clutter (full MNIST)",
                  kind="translate")
def load_translate(root: Path) -> ImageData:
    return translated(load_mnist(root), "translate")


@register_dataset("translate5k", "translate, built from the embedded 5,000 digits; works offline", kind="translate")
def load_translate5k(root: Path | None = None) -> ImageData:
    return translated(load_mnist5k(root), "translate5k")


@register_dataset("scale", "MNIST digits zoomed by 2^U(-1, 2) on a 112x112 canvas with clutter (full MNIST)",
                  kind="scale")
def load_scale(root: Path) -> ImageData:
    return scaled(load_mnist(root), "scale")


@register_dataset("scale5k", "scale, built from the embedded 5,000 digits; works offline", kind="scale")
def load_scale5k(root: Path | None = None) -> ImageData:
    return scaled(load_mnist5k(root), "scale5k")


@register_dataset("translate5k-28", "the embedded digits shifted by up to 7 pixels on their own 28x28 canvas, "
                                    "no clutter: the study's translation control at MNIST's cost", kind="translate")
def load_translate5k_28(root: Path | None = None) -> ImageData:
    return dataclasses.replace(load_mnist5k(root), name="translate5k-28", kind="translate", canvas=CONTROL_CANVAS,
                               max_shift=CONTROL_MAX_SHIFT, clutter=False)


@register_dataset("scale5k-28", "the embedded digits zoomed by 2^U(-1, 0.5) on their own 28x28 canvas, "
                                "no clutter: the study's scale control at MNIST's cost", kind="scale")
def load_scale5k_28(root: Path | None = None) -> ImageData:
    return dataclasses.replace(load_mnist5k(root), name="scale5k-28", kind="scale", canvas=CONTROL_CANVAS,
                               log2_scale=CONTROL_LOG2_SCALE, clutter=False)
