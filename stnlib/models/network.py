"""A classifier with spatial transformers at any placement: STN-Ck, STN-SLk, STN-DLk, iterated.

Placement semantics (the original's ``-p/--stn-placement``): ``layers`` is the
classifier's list of layers and an ST at index ``k`` sits before
``layers[k]``. A repeated index is another iteration of the same ST: the new
localization output is composed with the previous theta and the *untransformed*
tensor is resampled once with the composition (no repeated blurring).

Modes:

* ``"feature"`` (STN-Ck): the ST at ``k`` reads and resamples the feature map
  ``layers[:k](x)``.
* ``"loop"`` (STN-SLk, ``--loop``): theta is predicted from the classifier's own
  ``layers[:k]`` applied to the currently transformed input, and resamples the
  *input*.
* ``"deep"`` (STN-DLk, ``--deep``): as loop, but the localization network owns
  freshly initialised copies of ``layers[:k]``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby

import torch
from torch import nn

from .. import geometry
from ..errors import ConfigError, InputShapeError
from .registry import build_classifier, build_localization_body, output_shape
from .st import Localization, fresh_copy

MODE_PREFIX = {"feature": "C", "loop": "SL", "deep": "DL"}


@dataclass
class STRecord:
    """One application of an ST, for plots.

    ``theta``: ``(B, 2, 3)``, composed over the iterations so far; ``source``:
    the tensor the ST resamples (the input for SL/DL and C0, a feature map
    otherwise), ``(B, C, H, W)``; ``output``: the resampled tensor.
    """

    index: int
    iteration: int
    theta: torch.Tensor
    source: torch.Tensor
    output: torch.Tensor


@dataclass
class Inspection:
    """``logits``: ``(B, num_classes)``; ``sts``: one record per ST application, in order."""

    logits: torch.Tensor
    sts: list[STRecord] = field(default_factory=list)


class STNetwork(nn.Module):
    """Classifier ``model`` with STs at ``placements``.

    Input: ``(B, C, H, W)`` pixel intensities in ``[0, 1]`` (standardised inside
    when ``normalize``). Output: logits ``(B, num_classes)``.
    """

    def __init__(self, model: str, in_shape, num_classes: int = 10, model_parameters=None,
                 localization: str | None = None, localization_parameters=None, placements=(),
                 mode: str = "feature", iterative: bool = True, batchnorm: bool = False,
                 padding_mode: str = "zeros", st_downsample: int = 1, normalize: bool = False,
                 mean=(0.0,), std=(1.0,), grad_scale: float = 1.0):
        super().__init__()
        if mode not in MODE_PREFIX:
            raise ConfigError(f"unknown ST mode {mode!r}")
        placements = list(placements) if localization else []
        self.model_name, self.localization_name, self.mode = model, localization, mode
        self.in_shape = tuple(in_shape)
        self.padding_mode, self.st_downsample = padding_mode, (st_downsample if placements else 1)
        self.normalize = normalize
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1))

        channels, height, width = self.in_shape
        d = self.st_downsample
        classifier_shape = (channels, height // d, width // d)
        built = build_classifier(model, classifier_shape, model_parameters, num_classes)
        self.layers = nn.ModuleList(built.layers)
        self.blocks = built.blocks
        self._check_placements(placements, d)

        self.localizations = nn.ModuleList()
        self.slot_index: list[int] = []  # placement index of each ST application
        self.slot_localization: list[int] = []  # which localization network each application uses
        for i, index in enumerate(placements):
            if iterative and i > 0 and placements[i - 1] == index:
                self.slot_localization.append(self.slot_localization[-1])
            else:
                self.localizations.append(self._new_localization(
                    localization, localization_parameters, index, grad_scale))
                self.slot_localization.append(len(self.localizations) - 1)
            self.slot_index.append(index)
        self.batchnorms = nn.ModuleList(
            nn.BatchNorm2d(self._st_channels(index), affine=False) for index in self.slot_index
        ) if batchnorm else None
        self.extra_iterations = 0

        self.head = built.head(self._trunk_features())

    # ----- construction helpers -------------------------------------------------
    def _check_placements(self, placements, downsample):
        depth = len(self.layers)
        for index in placements:
            if index > depth:
                raise ConfigError(f"placement {index} is past the {self.model_name} classifier, which has "
                                  f"{depth} layers (valid placements: 0..{depth})")
        if downsample > 1 and self.mode == "feature" and len(placements) > 1:
            raise ConfigError("an ST that downsamples (translated data) allows one feature-map ST; "
                              "use --loop or --deep for iterations")

    def _trunk_features(self) -> int:
        self.eval()
        try:
            with torch.no_grad():
                return self._trunk(torch.zeros(1, *self.in_shape), None).flatten(1).shape[1]
        except RuntimeError as exc:
            raise ConfigError(f"{self.model_name} cannot read inputs of shape {self.in_shape}: "
                              f"{str(exc).splitlines()[0]}") from None
        finally:
            self.train()

    def _layer_output_shape(self, index: int):
        return output_shape(nn.Sequential(*self.layers[:index]), self.in_shape)

    def _st_channels(self, index: int) -> int:
        return self.in_shape[0] if self.mode != "feature" else self._layer_output_shape(index)[0]

    def _new_localization(self, name, params, index, grad_scale) -> Localization:
        if self.mode == "deep":
            prefix = fresh_copy(list(self.layers[:index]))
            reads = self.in_shape
            body_shape = output_shape(prefix, reads)
        else:
            prefix, reads = None, self._layer_output_shape(index)
            body_shape = reads
            if self.mode == "feature" and len(reads) != 3:
                raise ConfigError(f"placement {index} of {self.model_name} is a flat tensor of shape {reads}, "
                                  f"which an ST cannot resample; use --loop or --deep, or another placement")
        body = build_localization_body(name, body_shape, params)
        return Localization(body, reads, prefix=prefix, grad_scale=grad_scale)

    # ----- structure --------------------------------------------------------------
    @property
    def has_st(self) -> bool:
        return bool(self.slot_index)

    def groups(self) -> list[tuple[int, list[int]]]:
        """``[(placement index, [slot numbers])]`` for consecutive equal indices."""
        slots = list(enumerate(self.slot_index))
        return [(index, [s for s, _ in members]) for index, members in groupby(slots, key=lambda t: t[1])]

    @property
    def architecture(self) -> str:
        """Readable name such as ``STN-C0``, ``STN-SL1x2`` (2 iterations) or ``STN-C0+C1``."""
        if not self.has_st:
            return "no ST"
        groups = [(index, len(slots)) for index, slots in self.groups()]
        parts = []
        for index, count in groups:
            block = str(self.blocks.index(index)) if index in self.blocks else f"(layer {index})"
            parts.append(f"{MODE_PREFIX[self.mode]}{block}" + (f"x{count}" if count > 1 else ""))
        return "STN-" + "+".join(parts)

    def describe(self) -> str:
        if not self.has_st:
            return f"{self.model_name} classifier, no ST"
        return f"{self.model_name} classifier, {self.architecture}, localization {self.localization_name}"

    def add_iteration(self) -> None:
        """Append one more application of the last ST, sharing its localization network."""
        if not self.has_st:
            raise ConfigError("--add-iteration needs an ST")
        if self.batchnorms is not None:
            raise ConfigError("--add-iteration cannot be combined with --batchnorm")
        if self.st_downsample > 1 and self.mode == "feature":
            raise ConfigError("--add-iteration needs --loop or --deep when the ST downsamples")
        self.slot_index.append(self.slot_index[-1])
        self.slot_localization.append(self.slot_localization[-1])
        self.extra_iterations += 1

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``classifier`` (layers after the last ST, head), ``pre_st`` (layers before an ST) and
        ``localization`` parameters, for per-group learning rates."""
        cut = max(self.slot_index) if self.has_st and self.mode != "deep" else 0
        return {
            "classifier": [p for layer in self.layers[cut:] for p in layer.parameters()] + list(self.head.parameters()),
            "pre_st": [p for layer in self.layers[:cut] for p in layer.parameters()],
            "localization": list(self.localizations.parameters()),
        }

    # ----- forward ------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self._trunk(x, None).flatten(1))

    def inspect(self, x: torch.Tensor) -> Inspection:
        """Logits plus every ST's theta, input and output (see ``STRecord``)."""
        records: list[STRecord] = []
        logits = self.head(self._trunk(x, records).flatten(1))
        return Inspection(logits, records)

    def input_theta(self, x: torch.Tensor) -> torch.Tensor:
        """Theta ``(B, 2, 3)`` of the ST chain that transforms the input (SL, DL or C0)."""
        self._check_input(x)
        x = self._standardise(x)
        if self.mode == "feature":
            if not self.slot_index or self.slot_index[0] != 0:
                raise ConfigError("this model has no ST on its input")
            return self._apply_group(x, self.groups()[0][1], None)[1]
        return self._apply_input_sts(x, None)[1]

    def _standardise(self, x):
        return (x - self.mean) / self.std if self.normalize else x

    def _layers(self, x, start: int, stop: int):
        for layer in self.layers[start:stop]:
            x = layer(x)
        return x

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.in_shape:
            raise InputShapeError(f"{self.model_name} expects images of shape (B, {', '.join(map(str, self.in_shape))}), "
                                  f"got {tuple(x.shape)}")

    def _trunk(self, x, records):
        self._check_input(x)
        x = self._standardise(x)
        if self.mode != "feature" and self.has_st:
            return self._layers(self._apply_input_sts(x, records)[0], 0, len(self.layers))
        position = 0
        for index, slots in self.groups():
            x = self._layers(x, position, index)
            position = index
            x = self._apply_group(x, slots, records)[0]
        return self._layers(x, position, len(self.layers))

    def _resample(self, source, theta, slot: int, final: bool):
        d = self.st_downsample if final else 1
        size = (source.shape[-2] // d, source.shape[-1] // d)
        out = geometry.warp(source, theta, size=size, padding_mode=self.padding_mode)
        return self.batchnorms[slot](out) if self.batchnorms is not None else out

    def _apply_group(self, source, slots, records):
        """Feature-map ST iterations at one index: returns (resampled tensor, composed theta)."""
        current, theta = source, None
        for n, slot in enumerate(slots):
            step = self.localizations[self.slot_localization[slot]](current)
            theta = step if theta is None else geometry.compose(theta, step)
            current = self._resample(source, theta, slot, final=True)
            if records is not None:
                records.append(STRecord(self.slot_index[slot], n, theta, source, current))
        return current, theta

    def _apply_input_sts(self, source, records):
        """SL/DL iterations: every theta is predicted from the current input and resamples the input."""
        current, theta = source, None
        last = len(self.slot_index) - 1
        for slot, index in enumerate(self.slot_index):
            features = self._layers(current, 0, index) if self.mode == "loop" else current
            step = self.localizations[self.slot_localization[slot]](features)
            theta = step if theta is None else geometry.compose(theta, step)
            current = self._resample(source, theta, slot, final=slot == last)
            if records is not None:
                records.append(STRecord(index, slot, theta, source, current))
        return current, theta

