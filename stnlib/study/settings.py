"""``StudySettings``: what a ``Study`` trains and where it writes, in one frozen value.

A setting left ``None`` keeps the profile's. The settings that change what a run is (``dataset``,
``epochs``, ``localization``, ``loc_lr_multiplier``, ``rotation_range``) name the folders its runs and
numbers go to (``key``); ``seeds``, ``device``, ``output``, ``figures`` and ``progress`` do not.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ..errors import ConfigError
from .profiles import Profile, get_profile

PLACED_KINDS = ("translate", "scale")  # datasets whose transformation is a placement, not a rotation
DEFAULT_ROTATION_RANGE = 90.0  # degrees, the paper's +-90
# Settings that change what a run is, and so key its folders, in the order the key names them.
RUN_CHANGING = ("dataset", "epochs", "localization", "loc_lr_multiplier", "rotation_range")


@dataclass(frozen=True)
class StudySettings:
    """A profile, by name (``"smoke"``, ``"quick"`` or ``"paper"``, see ``stnlib.study.PROFILES``), and
    what overrides it.

    ``dataset``, ``epochs`` (replacing the profile's iteration count and its lr drops), ``seeds`` and
    ``device`` override the profile's; ``localization`` is the localization network of every ST variant
    (e.g. ``"CNN"``), ``loc_lr_multiplier`` its lr over the classifier's, ``rotation_range`` the training
    and test rotations in degrees (+-90 unless set). Runs go to ``<output>/runs``, numbers to
    ``<output>/results``, figures to ``figures`` (default ``<output>/figures``). ``progress`` shows a
    progress bar for every training run. A value no run could use raises ``ConfigError``.
    """

    profile_name: str = "quick"
    dataset: str | None = None
    epochs: int | None = None
    seeds: int | None = None
    device: str | None = None
    localization: str | None = None
    loc_lr_multiplier: float | None = None
    rotation_range: float | None = None
    output: str = "results"
    figures: str | None = None
    progress: bool = False

    def __post_init__(self):
        get_profile(self.profile_name)
        for name in ("epochs", "seeds"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
        for name, top in (("loc_lr_multiplier", math.inf), ("rotation_range", 180)):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not 0 < value <= top):
                raise ConfigError(f"{name} must be a number above 0{f' and at most {top}' if top < math.inf else ''}, "
                                  f"got {value!r}")

    def resolved_profile(self) -> Profile:
        """The profile with this value's overrides applied."""
        overrides = {name: getattr(self, name) for name in ("dataset", "epochs", "seeds", "device", "loc_lr_multiplier")
                     if getattr(self, name) is not None}
        if self.epochs is not None:  # epochs replace a profile's iteration count and its lr drops
            overrides.update(iterations=None, lr_drop_iterations=())
        return dataclasses.replace(get_profile(self.profile_name), **overrides)

    @property
    def key(self) -> str:
        """The profile's name followed by every run-changing override: ``quick-epochs=2``."""
        return "-".join([self.profile_name, *(f"{name}={getattr(self, name)}" for name in RUN_CHANGING
                                         if getattr(self, name) is not None)])

    @property
    def degrees(self) -> float:
        """The rotation range in degrees: ``rotation_range``, or the paper's 90."""
        return self.rotation_range if self.rotation_range is not None else DEFAULT_ROTATION_RANGE

    def control(self, kind: str) -> "StudySettings":
        """These settings on the profile's control dataset for ``kind`` (``"translate"`` or ``"scale"``),
        trained for the profile's ``control_epochs`` unless ``epochs`` is set."""
        if kind not in PLACED_KINDS:
            raise ValueError(f"kind must be one of {PLACED_KINDS}, not {kind!r}")
        profile = get_profile(self.profile_name)
        epochs = self.epochs if self.epochs is not None else profile.control_epochs
        return dataclasses.replace(self, dataset=profile.control_datasets[PLACED_KINDS.index(kind)], epochs=epochs)
