"""Classifiers and localization networks by name (the original code's names).

A classifier entry builds the list of layers that ``--stn-placement`` indexes,
plus a factory for the output head. A localization entry builds the body of a
localization network; ``stnlib.models.st.Localization`` adds the final affine
regression layer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from ..errors import ConfigError, UnknownNameError
from .modes import eval_mode

Shape = tuple[int, ...]  # (C, H, W) or (features,), without the batch dimension


@dataclass
class ClassifierLayers:
    """What a classifier builder returns.

    ``layers``: the modules a placement index points between (an ST at index k
    sees the output of ``layers[:k]``). ``head``: maps the flattened output of
    all layers to logits, given its feature count. ``blocks``: the layer
    indices where the paper's blocks start, used to name STN-Ck.
    """

    layers: list[nn.Module]
    head: Callable[[int], nn.Module]
    blocks: tuple[int, ...]


@dataclass(frozen=True)
class Entry:
    name: str
    build: Callable
    default_parameters: tuple[int, ...]
    description: str


CLASSIFIERS: dict[str, Entry] = {}
LOCALIZATIONS: dict[str, Entry] = {}


def register_classifier(name: str, default_parameters: Sequence[int], description: str):
    """Decorate ``build(in_shape, params, num_classes) -> ClassifierLayers``."""
    def decorator(build):
        CLASSIFIERS[name] = Entry(name, build, tuple(default_parameters), description)
        return build
    return decorator


def register_localization(name: str, default_parameters: Sequence[int], description: str):
    """Decorate ``build(in_shape, params) -> nn.Module`` returning flat ``(B, F)`` features."""
    def decorator(build):
        LOCALIZATIONS[name] = Entry(name, build, tuple(default_parameters), description)
        return build
    return decorator


def _lookup(table: dict[str, Entry], kind: str, name: str) -> Entry:
    if name not in table:
        raise UnknownNameError(f"unknown {kind} {name!r}; known: {', '.join(sorted(table))}")
    return table[name]


def _parameters(entry: Entry, kind: str, params: Sequence[int] | None) -> list[int]:
    if not params:
        return list(entry.default_parameters)
    if len(params) != len(entry.default_parameters):
        raise ConfigError(f"{kind} {entry.name!r} takes {len(entry.default_parameters)} parameters "
                          f"(default {list(entry.default_parameters)}), got {len(params)}: {list(params)}")
    return list(params)


def build_classifier(name: str, in_shape: Shape, params: Sequence[int] | None = None,
                     num_classes: int = 10) -> ClassifierLayers:
    entry = _lookup(CLASSIFIERS, "model", name)
    return entry.build(tuple(in_shape), _parameters(entry, "model", params), num_classes)


def build_localization_body(name: str, in_shape: Shape, params: Sequence[int] | None = None) -> nn.Module:
    entry = _lookup(LOCALIZATIONS, "localization", name)
    params = _parameters(entry, "localization", params)
    try:
        return entry.build(tuple(in_shape), params)
    except ConfigError as exc:
        raise ConfigError(f"localization {name!r} cannot read a tensor of shape {tuple(in_shape)} "
                          f"({exc}); choose a localization for smaller inputs, e.g. FCN or small") from None


def output_shape(module: nn.Module, in_shape: Shape) -> Shape:
    """Shape of ``module``'s output for one input of ``in_shape`` (no batch dimension)."""
    try:
        with eval_mode(module), torch.no_grad():
            out = module(torch.zeros(1, *in_shape))
    except RuntimeError as exc:
        raise ConfigError(str(exc).splitlines()[0]) from None
    return tuple(out.shape[1:])


def flat_size(module: nn.Module, in_shape: Shape) -> int:
    """Number of features ``module`` outputs per sample."""
    return int(torch.Size(output_shape(module, in_shape)).numel())
