"""The configuration of one training run.

Field names are the long flags of the training CLI with underscores, the same
names the notebooks and sweep files use. Defaults are the original code's.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field

from .errors import ConfigError

OPTIMIZERS = ("sgd", "nesterov", "adam")
PRECISIONS = ("auto", "fp32", "bf16")
NO_LOCALIZATION = "false"
MAX_SEED = 2**32 - 1  # seeds (and seed + run) must fit torch's and numpy's generators
MAX_EVAL_PASSES = 1000  # the original scores 10; each pass is a full sweep of the test set


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


# The value each field's annotation admits, as (check, what to say when it fails).
_TYPE_CHECKS = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "int": (_is_int, "a whole number"),
    "float": (_is_number, "a number"),
    "list[int]": (lambda v: isinstance(v, (list, tuple)) and all(map(_is_int, v)), "a list of whole numbers"),
    "list[float]": (lambda v: isinstance(v, (list, tuple)) and all(map(_is_number, v)), "a list of numbers"),
}


@dataclass
class RunConfig:
    dataset: str = "mnist"  # registered dataset name, or a precomputed-dataset folder prefix
    model: str = "CNN"  # registered classifier name
    model_parameters: list[int] | None = None  # layer widths of the classifier; None: its defaults
    localization: str = NO_LOCALIZATION  # registered localization name; "false": no ST
    localization_parameters: list[int] | None = None  # layer widths of the localization network
    stn_placement: list[int] = field(default_factory=list)  # layer indices an ST sits before
    runs: int = 1  # independent repetitions (seed, seed + 1, ...)
    name: str = "result"  # run folder
    optimizer: str = "sgd"  # sgd, nesterov or adam
    lr: float = 0.01  # base learning rate
    switch_after_iterations: list[int] = field(default_factory=list)  # iterations where lr /= divide_lr_by
    loc_lr_multiplier: float = 1.0  # localization lr = lr * this
    pre_stn_multiplier: float = 1.0  # lr of layers before an ST = lr * this
    divide_lr_by: float = 10.0  # lr divisor at each switch
    momentum: float = 0.0  # SGD momentum
    weight_decay: float = 0.0  # L2 weight decay
    batch_size: int = 256  # images per batch
    load_model: str = ""  # weights to start from (a run folder or a .pt file)
    add_iteration: list[int] = field(default_factory=list)  # iterations after which an ST iteration is added
    seed: int | None = None  # random seed; None draws one
    epochs: int | None = None  # epochs to train (exclusive with iterations)
    iterations: int | None = None  # batches to train, rounded down to whole epochs
    loop: bool = False  # STN-SLk: shared classifier layers predict theta for the input
    deep: bool = False  # STN-DLk: fresh copies of the classifier layers predict theta for the input
    rotate: bool = False  # rotate train and test images at random
    normalize: bool = False  # standardise inputs with the dataset's mean and std
    batchnorm: bool = False  # BatchNorm (without affine) after every ST
    iterative: bool = True  # a repeated placement index reuses the localization network
    moment_sched: bool = False  # show images in their moment-canonical orientation, less often over time
    pretrain: bool = False  # train the ST to predict the moment-canonical orientation
    hook_llr: bool = False  # scale the gradient through the ST instead of the localization lr
    onlyloc: bool = False  # train only the localization networks
    rotation_range: float = 90.0  # rotations are uniform in [-rotation_range, rotation_range] degrees
    # training rotations uniform in [-R, R] degrees instead (None: rotation_range); test rotations always
    # span rotation_range
    train_rotation_range: float | None = None
    # [START, EPOCHS]: training rotations grow linearly from +-START degrees in the first epoch to their
    # whole range after EPOCHS epochs (test rotations always span rotation_range); empty: none
    rotation_warmup: list[float] = field(default_factory=list)
    device: str = "auto"  # auto (CUDA when present), cpu, cuda, cuda:N
    data_root: str | None = None  # dataset folder; None: $STNLIB_DATA or the user cache
    precision: str = "auto"  # auto, fp32 or bf16 (autocast for the classifier and localization)
    eval_passes: int = 10  # rotated passes over the test set for the final accuracy
    limit: int | None = None  # use only the first N training and N test images (quick experiments)

    @property
    def has_st(self) -> bool:
        return self.localization != NO_LOCALIZATION

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        if not isinstance(values, dict):
            raise ConfigError(f"a run configuration is a mapping of option: value, got {type(values).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown configuration option(s): {', '.join(unknown)}")
        return cls(**values).check_types()

    def check_types(self) -> "RunConfig":
        """Check that every value has its field's type (whole numbers where counts are meant, ``true`` or
        ``false`` for switches); raise ``ConfigError`` naming the first that does not."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kinds = [kind.strip() for kind in str(f.type).split("|")]
            if value is None and "None" in kinds:
                continue
            checks = [_TYPE_CHECKS[kind] for kind in kinds if kind in _TYPE_CHECKS]
            if checks and not any(check(value) for check, _ in checks):
                wanted = " or ".join(what for _, what in checks)
                raise ConfigError(f"{f.name} must be {wanted}, got {value!r}")
        return self

    def validate(self) -> "RunConfig":
        """Check types, values and combinations that need no registry; raise ``ConfigError``."""
        self.check_types()
        if (self.epochs is None) == (self.iterations is None):
            raise ConfigError("give exactly one of --epochs and --iterations")
        for name in ("epochs", "iterations"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"--{name} must be >= 0, got {value}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be >= 1, got {self.limit}")
        for name in ("runs", "batch_size", "eval_passes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.eval_passes > MAX_EVAL_PASSES:
            raise ConfigError(f"--eval-passes must be at most {MAX_EVAL_PASSES}, got {self.eval_passes} "
                              f"(each pass scores the whole test set; the original uses 10)")
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED - self.runs + 1:
            raise ConfigError(f"--seed must lie in [0, {MAX_SEED - self.runs + 1}] (with --runs {self.runs}), "
                              f"got {self.seed}")
        if any(v < 1 for v in self.switch_after_iterations):
            raise ConfigError(f"--switch-after-iterations values must be >= 1, got {self.switch_after_iterations}")
        for name in ("lr", "loc_lr_multiplier", "pre_stn_multiplier", "divide_lr_by",
                     "momentum", "weight_decay", "rotation_range"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value}")
        if self.divide_lr_by == 0:
            raise ConfigError("--divide-lr-by must be > 0")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
        if self.optimizer == "adam" and self.momentum:
            raise ConfigError("--momentum has no meaning with --optimizer adam")
        if self.optimizer == "nesterov" and not self.momentum:
            raise ConfigError("--optimizer nesterov needs a --momentum > 0, e.g. --momentum 0.9")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}; choose from {', '.join(PRECISIONS)}")
        if self.loop and self.deep:
            raise ConfigError("--loop and --deep exclude each other: choose STN-SL (--loop) or STN-DL (--deep)")
        if self.has_st and not self.stn_placement:
            raise ConfigError(f"localization {self.localization!r} needs a placement: add e.g. -p 0")
        if not self.has_st and (self.stn_placement or self.loop or self.deep or self.add_iteration):
            raise ConfigError("--stn-placement, --loop, --deep and --add-iteration need a localization (-l NAME)")
        if any(p < 0 for p in self.stn_placement):
            raise ConfigError(f"placements must be >= 0, got {self.stn_placement}")
        if self.stn_placement != sorted(self.stn_placement):
            raise ConfigError(f"placements must be in increasing order, got {self.stn_placement}")
        if any(i < -1 for i in self.add_iteration):
            raise ConfigError(f"--add-iteration values must be >= -1, got {self.add_iteration}")
        if self.add_iteration and self.batchnorm:
            raise ConfigError("--add-iteration cannot be combined with --batchnorm")
        if self.switch_after_iterations != sorted(self.switch_after_iterations):
            raise ConfigError("--switch-after-iterations must be increasing")
        if (self.pretrain or self.moment_sched) and not self.has_st:
            raise ConfigError("--pretrain and --moment-sched need an ST (-l NAME -p ...)")
        if self.train_rotation_range is not None:
            self._check_train_rotation_range()
        if self.rotation_warmup:
            self._check_rotation_warmup()
        if self.pretrain and not (self.loop or self.deep or set(self.stn_placement) == {0}):
            raise ConfigError("--pretrain needs an ST that transforms the input: -p 0, --loop or --deep")
        if self.hook_llr and not self.has_st:
            raise ConfigError("--hook-llr needs an ST")
        for sizes, flag in ((self.model_parameters, "model"), (self.localization_parameters, "localization")):
            if sizes is not None and any(s <= 0 for s in sizes):
                raise ConfigError(f"--{flag}-parameters must be positive, got {sizes}")
        return self

    def _check_train_rotation_range(self) -> None:
        if not self.rotate:
            raise ConfigError("--train-rotation-range needs --rotate")
        if not (math.isfinite(self.train_rotation_range) and 0 <= self.train_rotation_range <= 180):
            raise ConfigError(f"--train-rotation-range must lie in [0, 180] degrees, got {self.train_rotation_range:g}")

    def _check_rotation_warmup(self) -> None:
        if len(self.rotation_warmup) != 2:
            raise ConfigError("--rotation-warmup takes two values, START_DEGREES EPOCHS: e.g. --rotation-warmup 30 4")
        start, epochs = self.rotation_warmup
        if not self.rotate:
            raise ConfigError("--rotation-warmup needs --rotate")
        full = self.training_rotation_range()
        if not (math.isfinite(start) and 0 <= start <= full):
            raise ConfigError(f"--rotation-warmup's start must lie in [0, {full:g}] degrees "
                              f"(the training rotations' range), got {start:g}")
        if not (math.isfinite(epochs) and epochs >= 1 and epochs == int(epochs)):
            raise ConfigError(f"--rotation-warmup's epochs must be a whole number >= 1, got {epochs:g}")

    def training_rotation_range(self, epoch: int | None = None) -> float:
        """Training rotation range (degrees): ``train_rotation_range``, or ``rotation_range`` without it;
        of the 1-based ``epoch`` under ``rotation_warmup`` ``[START, EPOCHS]``, START in epoch 1, growing
        linearly to that range in epoch EPOCHS + 1 (``epoch`` None: the range the warm-up ends at)."""
        full = self.rotation_range if self.train_rotation_range is None else self.train_rotation_range
        if not self.rotation_warmup or epoch is None:
            return full
        start, epochs = self.rotation_warmup
        return min(full, start + (full - start) * (epoch - 1) / epochs)
