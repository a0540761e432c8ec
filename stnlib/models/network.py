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

Shapes: ``B`` images of ``in_shape = (C, H, W)``; a feature map after ``layers[:k]`` is
``(B, C_k, H_k, W_k)``; every theta is ``(B, 2, 3)`` in ``geometry``'s convention.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby

import torch
from torch import nn

from .. import geometry
from ..errors import ConfigError, InputShapeError
from .modes import eval_mode
from .registry import build_classifier, build_localization_body, output_shape
from .st import Localization, fresh_copy

MODE_PREFIX = {"feature": "C", "loop": "SL", "deep": "DL"}


@dataclass(frozen=True)
class NetworkSpec:
    """What an ``STNetwork`` is made of.

    ``model``/``model_parameters``: the classifier (a registry name and its sizes);
    ``in_shape``: ``(C, H, W)`` of the input images; ``localization``/``localization_parameters``:
    the localization network (``None``: no ST); ``stn_placement``: one entry per ST application, the
    index of the classifier layer it precedes (a repeated index iterates that ST; the CLI's ``-p``);
    ``st_mode``: ``"feature"`` (C), ``"loop"`` (SL, the CLI's ``--loop``) or ``"deep"`` (DL, ``--deep``);
    ``RunConfig.st_mode`` maps the two switches to it; ``iterative``: repeated placements share
    one localization network (else each gets its own); ``batchnorm``: a BatchNorm after each ST;
    ``padding_mode``: what the ST samples outside the image; ``st_downsample``: the last input ST
    outputs ``H / d x W / d`` (translated MNIST); ``normalize``/``mean``/``std``: standardise the
    input inside the model; ``grad_scale``: multiplies the gradient into the localization networks
    (``--hook-llr``).
    """

    model: str
    in_shape: tuple[int, int, int]
    num_classes: int = 10
    model_parameters: tuple | list | None = None
    localization: str | None = None
    localization_parameters: tuple | list | None = None
    stn_placement: tuple[int, ...] = ()
    st_mode: str = "feature"
    iterative: bool = True
    batchnorm: bool = False
    padding_mode: str = "zeros"
    st_downsample: int = 1
    normalize: bool = False
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    grad_scale: float = 1.0


@dataclass(frozen=True)
class STSlot:
    """One application of an ST in the chain.

    ``index``: the classifier layer it precedes; ``localization_number``: which of the network's
    localization networks (``STNetwork.localizations``) predicts its theta; ``iteration``: 0 for the
    first application at this index, 1 for the next, and so on.
    """

    index: int
    localization_number: int
    iteration: int


@dataclass
class STRecord:
    """One application of an ST, for plots.

    ``slot_number``: its position in the network's chain of ST applications (``STNetwork.slots``);
    ``index`` and ``iteration``:
    as in ``STSlot``. ``theta``: ``(B, 2, 3)``, composed over the iterations so far; ``source``:
    the tensor the ST resamples (the input for SL/DL and C0, a feature map otherwise),
    ``(B, C, H, W)``; ``output``: the resampled tensor.
    """

    slot_number: int
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
    """Classifier ``model`` with STs at ``stn_placement``; ``options`` are the other fields of
    ``NetworkSpec``.

    Input: ``(B, C, H, W)`` pixel intensities in ``[0, 1]`` (standardised inside
    when ``normalize``). Output: logits ``(B, num_classes)``.
    """

    def __init__(self, model: str, in_shape, num_classes: int = 10, **options):
        super().__init__()
        spec = NetworkSpec(model, tuple(in_shape), num_classes, **options)
        if spec.st_mode not in MODE_PREFIX:
            raise ConfigError(f"unknown ST mode {spec.st_mode!r}")
        placements = list(spec.stn_placement) if spec.localization else []
        self.spec = spec
        self.model_name, self.localization_name, self.st_mode = spec.model, spec.localization, spec.st_mode
        self.in_shape, self.padding_mode, self.normalize = spec.in_shape, spec.padding_mode, spec.normalize
        self.st_downsample = spec.st_downsample if placements else 1
        self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(spec.std, dtype=torch.float32).reshape(1, -1, 1, 1))

        channels, height, width = self.in_shape
        d = self.st_downsample
        built = build_classifier(spec.model, (channels, height // d, width // d), spec.model_parameters,
                                 spec.num_classes)
        self.layers = nn.ModuleList(built.layers)
        self.blocks = built.blocks
        self._check_placements(placements)

        self.localizations = nn.ModuleList()
        self.slots: list[STSlot] = []
        for index in placements:
            previous = self.slots[-1] if self.slots else None
            if previous is not None and previous.index == index:
                iteration = previous.iteration + 1
                shared = spec.iterative
            else:
                iteration, shared = 0, False
            if not shared:
                self.localizations.append(self._new_localization(index))
            self.slots.append(STSlot(index, len(self.localizations) - 1, iteration))
        self.batchnorms = nn.ModuleList(
            nn.BatchNorm2d(self._st_channels(slot.index), affine=False) for slot in self.slots
        ) if spec.batchnorm else None
        self.extra_iterations = 0

        self.head = built.head(self._trunk_features())

    # ----- construction helpers -------------------------------------------------
    def _check_placements(self, placements) -> None:
        depth = len(self.layers)
        for index in placements:
            if index > depth:
                raise ConfigError(f"placement {index} is past the {self.model_name} classifier, which has "
                                  f"{depth} layers (valid placements: 0..{depth})")
        if self.st_downsample > 1 and self.st_mode == "feature" and len(placements) > 1:
            raise ConfigError("an ST that downsamples (translated data) allows one feature-map ST; "
                              "use --loop or --deep for iterations")

    def _trunk_features(self) -> int:
        """Length of the flattened trunk output for one image, found by running a zero image."""
        try:
            with eval_mode(self), torch.no_grad():
                return self._trunk(torch.zeros(1, *self.in_shape))[0].flatten(1).shape[1]
        except RuntimeError as exc:
            raise ConfigError(f"{self.model_name} cannot read inputs of shape {self.in_shape}: "
                              f"{str(exc).splitlines()[0]}") from None

    def _layer_output_shape(self, index: int):
        return output_shape(nn.Sequential(*self.layers[:index]), self.in_shape)

    def _st_channels(self, index: int) -> int:
        return self.in_shape[0] if self.st_mode != "feature" else self._layer_output_shape(index)[0]

    def _new_localization(self, index: int) -> Localization:
        spec = self.spec
        if self.st_mode == "deep":
            prefix = fresh_copy(list(self.layers[:index]))
            reads = self.in_shape
            body_shape = output_shape(prefix, reads)
        else:
            prefix, reads = None, self._layer_output_shape(index)
            body_shape = reads
            if self.st_mode == "feature" and len(reads) != 3:
                raise ConfigError(f"placement {index} of {self.model_name} is a flat tensor of shape {reads}, "
                                  f"which an ST cannot resample; use --loop or --deep, or another placement")
        body = build_localization_body(spec.localization, body_shape, spec.localization_parameters)
        return Localization(body, reads, prefix=prefix, grad_scale=spec.grad_scale)

    # ----- structure --------------------------------------------------------------
    @property
    def has_st(self) -> bool:
        return bool(self.slots)

    def groups(self) -> list[tuple[int, list[int]]]:
        """``[(placement index, [slot numbers])]`` for consecutive slots at one index."""
        numbered = list(enumerate(self.slots))
        return [(index, [n for n, _ in members])
                for index, members in groupby(numbered, key=lambda pair: pair[1].index)]

    @property
    def architecture(self) -> str:
        """Readable name such as ``STN-C0``, ``STN-SL1x2`` (2 iterations) or ``STN-C0+C1``."""
        if not self.has_st:
            return "no ST"
        parts = []
        for index, slots in self.groups():
            block = str(self.blocks.index(index)) if index in self.blocks else f"(layer {index})"
            parts.append(f"{MODE_PREFIX[self.st_mode]}{block}" + (f"x{len(slots)}" if len(slots) > 1 else ""))
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
        if self.st_downsample > 1 and self.st_mode == "feature":
            raise ConfigError("--add-iteration needs --loop or --deep when the ST downsamples")
        last = self.slots[-1]
        self.slots.append(STSlot(last.index, last.localization_number, last.iteration + 1))
        self.extra_iterations += 1

    def grow_to_added_iterations(self, count: int) -> None:
        """Add iterations (``add_iteration``) until ``count`` have been added in all; one that
        already has ``count`` or more is left as it is."""
        for _ in range(count - self.extra_iterations):
            self.add_iteration()

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """``classifier`` (layers after the last ST, head), ``pre_st`` (layers before an ST) and
        ``localization`` parameters, for per-group learning rates."""
        cut = max(slot.index for slot in self.slots) if self.has_st and self.st_mode != "deep" else 0
        return {
            "classifier": [p for layer in self.layers[cut:] for p in layer.parameters()] + list(self.head.parameters()),
            "pre_st": [p for layer in self.layers[:cut] for p in layer.parameters()],
            "localization": list(self.localizations.parameters()),
        }

    def localization_copies_parameters(self) -> list[nn.Parameter]:
        """The parameters of STN-DLk's copies of classifier blocks inside its localization networks
        (empty for every other network)."""
        return [p for localization in self.localizations for p in localization.prefix.parameters()]

    # ----- forward ------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``(B, C, H, W)`` -> logits ``(B, num_classes)``."""
        return self.head(self._trunk(x)[0].flatten(1))

    def inspect(self, x: torch.Tensor) -> Inspection:
        """Logits plus every ST's theta, input and output (see ``STRecord``)."""
        trunk, records = self._trunk(x)
        return Inspection(self.head(trunk.flatten(1)), records)

    def features(self, x: torch.Tensor, upto: int) -> torch.Tensor:
        """The classifier's first ``upto`` layers on ``x`` (standardised as the model does), without
        any ST: ``(B, C, H, W)`` -> the feature map that an ST at index ``upto`` would read."""
        self._check_input(x)
        return self._run_layers(self._standardise(x), 0, upto)

    def input_theta(self, x: torch.Tensor) -> torch.Tensor:
        """Theta ``(B, 2, 3)`` of the ST chain that transforms the input (SL, DL or C0)."""
        self._check_input(x)
        x = self._standardise(x)
        if self.st_mode != "feature":
            return self._apply_input_sts(x, [])[1]
        if not self.slots or self.slots[0].index != 0:
            raise ConfigError("this model has no ST on its input")
        return self._apply_feature_st(x, self.groups()[0][1], [])[1]

    def _standardise(self, x):
        return (x - self.mean) / self.std if self.normalize else x

    def _run_layers(self, x, start: int, stop: int):
        for layer in self.layers[start:stop]:
            x = layer(x)
        return x

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.in_shape:
            raise InputShapeError(f"{self.model_name} expects images of shape (B, {', '.join(map(str, self.in_shape))}), "
                                  f"got {tuple(x.shape)}")

    def _trunk(self, x) -> tuple[torch.Tensor, list[STRecord]]:
        """``x`` ``(B, C, H, W)`` through every layer and ST -> (the last layer's output, the records)."""
        self._check_input(x)
        x = self._standardise(x)
        records: list[STRecord] = []
        if self.st_mode != "feature" and self.has_st:
            x = self._apply_input_sts(x, records)[0]  # (B, C, H / d, W / d)
            return self._run_layers(x, 0, len(self.layers)), records
        position = 0
        for index, slot_numbers in self.groups():
            x = self._run_layers(x, position, index)  # (B, C_index, H_index, W_index)
            x = self._apply_feature_st(x, slot_numbers, records)[0]  # same shape, or / d for C0 when d > 1
            position = index
        return self._run_layers(x, position, len(self.layers)), records

    def _resample(self, source, theta, slot_number: int, downsample: bool):
        """``source`` ``(B, C, H, W)`` warped by ``theta``; ``(B, C, H / d, W / d)`` when ``downsample``."""
        d = self.st_downsample if downsample else 1
        out = geometry.warp(source, theta, size=(source.shape[-2] // d, source.shape[-1] // d),
                            padding_mode=self.padding_mode)
        return self.batchnorms[slot_number](out) if self.batchnorms is not None else out

    def _step(self, slot_number: int, reads: torch.Tensor, theta: torch.Tensor | None) -> torch.Tensor:
        """The slot's localization network on ``reads``, composed after ``theta`` so far: ``(B, 2, 3)``."""
        step = self.localizations[self.slots[slot_number].localization_number](reads)
        return step if theta is None else geometry.compose(theta, step)

    def _apply_feature_st(self, source, slot_numbers, records):
        """STN-C: the iterations at one index, each reading the current map and resampling ``source``
        ``(B, C, H, W)`` once with the composed theta. Returns (resampled map, composed theta)."""
        current, theta = source, None
        for n in slot_numbers:
            theta = self._step(n, current, theta)
            current = self._resample(source, theta, n, downsample=True)  # d > 1 allows only one feature-map ST
            records.append(STRecord(n, self.slots[n].index, self.slots[n].iteration, theta, source, current))
        return current, theta

    def _apply_input_sts(self, source, records):
        """STN-SL/DL: every theta is predicted from the current input (through the classifier's
        layers for SL, through the localization's own copies for DL) and resamples the input
        ``source`` ``(B, C, H, W)``; only the last resampling downsamples. Returns (input, theta)."""
        current, theta = source, None
        last = len(self.slots) - 1
        for n, slot in enumerate(self.slots):
            reads = self._run_layers(current, 0, slot.index) if self.st_mode == "loop" else current
            theta = self._step(n, reads, theta)
            current = self._resample(source, theta, n, downsample=n == last)
            records.append(STRecord(n, slot.index, slot.iteration, theta, source, current))
        return current, theta
