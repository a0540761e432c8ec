"""Translated (60x60) and scaled (112x112) MNIST, from full MNIST or the embedded 5,000 digits."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from .images import ImageData
from .mnist import load_mnist, load_mnist5k
from .registry import register_dataset

TRANSLATE_CANVAS, SCALE_CANVAS = 60, 112
# The original's --normalize constants for the canvases (mostly background, so darker than MNIST's).
TRANSLATE_MEAN, TRANSLATE_STD = (0.0363,), (0.1870,)
SCALE_MEAN, SCALE_STD = (0.0414,), (0.1751,)


def translated(data: ImageData, name: str) -> ImageData:
    return dataclasses.replace(data, name=name, kind="translate", canvas=TRANSLATE_CANVAS, st_downsample=2,
                               mean=TRANSLATE_MEAN, std=TRANSLATE_STD)


def scaled(data: ImageData, name: str) -> ImageData:
    return dataclasses.replace(data, name=name, kind="scale", canvas=SCALE_CANVAS, mean=SCALE_MEAN, std=SCALE_STD)


@register_dataset("translate", "MNIST digits at random places of a 60x60 canvas with clutter (full MNIST)")
def load_translate(root: Path) -> ImageData:
    return translated(load_mnist(root), "translate")


@register_dataset("translate5k", "translate, built from the embedded 5,000 digits; works offline")
def load_translate5k(root: Path | None = None) -> ImageData:
    return translated(load_mnist5k(root), "translate5k")


@register_dataset("scale", "MNIST digits zoomed by 2^U(-1, 2) on a 112x112 canvas with clutter (full MNIST)")
def load_scale(root: Path) -> ImageData:
    return scaled(load_mnist(root), "scale")


@register_dataset("scale5k", "scale, built from the embedded 5,000 digits; works offline")
def load_scale5k(root: Path | None = None) -> ImageData:
    return scaled(load_mnist5k(root), "scale5k")
