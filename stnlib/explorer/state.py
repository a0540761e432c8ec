"""What the explorer shows, computed from the slider values: plain tensors, no widgets."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .. import geometry

TRAIL_LENGTH = 360  # points kept in the running predicted-vs-true scatter


@dataclass
class View:
    """Everything drawn for one setting of the controls.

    ``input``: ``(H, W)`` the transformed digit the model sees; ``st_outputs``: ``[(title, (H', W'))]``
    after each ST (feature maps as mean |activation|); ``predicted_angle``: the rotation (degrees)
    the model's ST undoes, ``None`` without ST; ``probabilities``: ``(K,)``; ``features``:
    ``{title: (H', W')}`` one channel of a feature-map ST's input and output, next to the same
    channel for the untransformed digit (empty for input STs).
    """

    angle: float
    scale: float
    shift: tuple[float, float]
    digit: int
    label: int
    input: torch.Tensor
    st_outputs: list[tuple[str, torch.Tensor]]
    predicted_angle: float | None
    probabilities: torch.Tensor
    features: dict[str, torch.Tensor] = field(default_factory=dict)


def _display(tensor: torch.Tensor) -> torch.Tensor:
    return tensor[0] if tensor.shape[0] == 1 else tensor.abs().mean(0)


class ExplorerState:
    """A model, test digits and the current controls; ``update`` recomputes the ``View``."""

    def __init__(self, model, images: torch.Tensor, labels: torch.Tensor):
        self.model = model.eval()
        self.images, self.labels = images, labels
        self.angle, self.scale, self.shift, self.digit = 0.0, 1.0, (0.0, 0.0), 0
        self.trail: list[tuple[float, float]] = []
        self._feature_channel: int | None = None
        self._upright: tuple | None = None  # (digit, index, features of the upright digit)
        self.view = self.update()

    def set(self, angle=None, scale=None, shift=None, digit=None) -> View:
        """Change any control and recompute."""
        if digit is not None and digit != self.digit:
            self.digit, self._feature_channel = int(digit) % len(self.images), None
        self.angle = float(angle) if angle is not None else self.angle
        self.scale = float(scale) if scale is not None else self.scale
        self.shift = tuple(shift) if shift is not None else self.shift
        self.view = self.update()
        return self.view

    def set_model(self, model) -> View:
        self.model, self._feature_channel, self._upright, self.trail = model.eval(), None, None, []
        self.view = self.update()
        return self.view

    def transformed_digit(self) -> torch.Tensor:
        """The current digit after the controls' rotation, scale and shift: ``(1, C, H, W)``."""
        theta = geometry.theta_from_angle(torch.tensor([self.angle]), self.scale, torch.tensor([self.shift]))
        return geometry.warp(self.images[self.digit][None], theta)

    @torch.no_grad()
    def update(self) -> View:
        x = self.transformed_digit()
        seen = self.model.inspect(x)
        probabilities = seen.logits.float().softmax(1)[0]
        outputs = [(self._st_title(r), _display(r.output[0].float())) for r in seen.sts]
        predicted = None
        if seen.sts:
            predicted = geometry.undone_angle_from_theta(seen.sts[-1].theta)[0].item()
            self.trail = (self.trail + [(self.angle, predicted)])[-TRAIL_LENGTH:]
        return View(self.angle, self.scale, self.shift, self.digit, int(self.labels[self.digit]), x[0, 0],
                    outputs, predicted, probabilities, self._feature_maps(seen))

    def _st_title(self, record) -> str:
        where = "input" if record.index == 0 or self.model.st_mode != "feature" else f"layer {record.index}"
        return f"after ST on {where}" + (f" ({record.iteration + 1})" if record.iteration else "")

    def _feature_maps(self, seen) -> dict[str, torch.Tensor]:
        """For the first feature-map ST: one channel before and after it, and for the upright digit."""
        record = next((r for r in seen.sts if r.index > 0 and self.model.st_mode == "feature"), None)
        if record is None:
            return {}
        if self._upright is None or self._upright[:2] != (self.digit, record.index):
            with torch.no_grad():
                features = self.model.features(self.images[self.digit][None], upto=record.index)[0]
            self._upright = (self.digit, record.index, features)
        upright = self._upright[2]
        if self._feature_channel is None:
            self._feature_channel = int(upright.abs().flatten(1).mean(1).argmax())
        c = self._feature_channel
        return {f"upright digit, ch {c}": upright[c].float(), f"before ST, ch {c}": record.source[0, c].float(),
                f"after ST, ch {c}": record.output[0, c].float()}
