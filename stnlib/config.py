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
RUN_GROUPS = ("auto", "together", "apart")
ORIGINAL_NO_LOCALIZATION = "false"  # the original CLI's word for "no ST"; None everywhere in Python
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


def field_kinds(f: dataclasses.Field) -> list[str]:
    """The types a ``RunConfig`` field's annotation admits, as written: ``"int | None"`` -> ``["int", "None"]``."""
    return [kind.strip() for kind in str(f.type).split("|")]


def option(default=dataclasses.MISSING, *, help: str, short: str | None = None, factory=None, **cli):
    """A ``RunConfig`` field: its default (or ``factory``), the help text that the training CLI shows for it,
    its short flag, and how the CLI spells it where it differs from the field (``cli``: ``metavar``,
    ``nargs``, ``type``, ``cli_default``; ``group="stnlib"`` for options the original does not have;
    ``length=True`` for the two exclusive ways to say how long to train)."""
    metadata = {"help": help, "short": short, **cli}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class RunConfig:
    """Everything one training run depends on. The fields are the training CLI's long flags with
    underscores, with the original code's defaults; ``python -m stnlib.learn`` is built from them."""

    dataset: str = option("mnist", short="-d", help="dataset name ({datasets}) or a precomputed-dataset folder prefix")
    model: str = option("CNN", short="-m", help="classifier: {classifiers}")
    model_parameters: list[int] | None = option(None, help="layer widths of the classifier")
    localization: str | None = option(None, short="-l", cli_default=ORIGINAL_NO_LOCALIZATION,
                                      help="localization network, or false for no ST: {localizations}")
    localization_parameters: list[int] | None = option(None, help="layer widths of the localization network")
    stn_placement: list[int] = option(factory=list, short="-p", help="classifier layer indices an ST sits before "
                                      "(0: the input); a repeated index adds an iteration")
    runs: int = option(1, help="number of independent runs; run r is seeded with seed + r (the original seeds "
                          "once and lets the runs continue one random stream)")
    name: str = option("result", short="-n", help="run folder to create; it must not exist yet")
    optimizer: str = option("sgd", short="-o", help="sgd, nesterov or adam")
    lr: float = option(0.01, help="initial learning rate")
    switch_after_iterations: list[int] = option(factory=list, type=float, help="iterations at which the learning "
                                                "rate is divided by --divide-lr-by (increasing); one value N "
                                                "divides it every N iterations, as in the original")
    loc_lr_multiplier: float = option(1.0, help="the localization networks' learning rate is this times --lr")
    pre_stn_multiplier: float = option(1.0, help="the learning rate of layers before an ST is this times --lr")
    divide_lr_by: float = option(10.0, help="divisor of the learning rate at each switch")
    momentum: float = option(0.0, help="SGD momentum (use -o nesterov for Nesterov)")
    weight_decay: float = option(0.0, short="-w", help="L2 weight decay")
    batch_size: int = option(256, short="-b", help="images per batch")
    load_model: str = option("", help="start from these weights (a run folder or a .pt file)")
    add_iteration: list[int] = option(factory=list, help="after this many batches, add an ST iteration (-1: "
                                      "before --load-model, 0: after it)")
    seed: int | None = option(None, help="random seed; without it one is drawn and saved")
    epochs: int | None = option(None, short="-e", length=True, help="epochs to train")
    iterations: int | None = option(None, short="-i", length=True,
                                    help="batches to train (rounded down to whole epochs)")
    loop: bool = option(False, help="STN-SLk: the classifier's own first layers predict theta, which "
                        "transforms the input")
    deep: bool = option(False, help="STN-DLk: fresh copies of the classifier's first layers predict theta for "
                        "the input")
    rotate: bool = option(False, help="rotate train and test images by random angles (see --rotation-range)")
    normalize: bool = option(False, help="standardise inputs with the dataset's mean and std")
    batchnorm: bool = option(False, help="BatchNorm (without affine parameters) after every ST")
    iterative: bool = option(True, help="a repeated placement index reuses the same localization network")
    moment_sched: bool = option(False, help="show images in their moment-canonical orientation, less often as "
                                "training goes")
    pretrain: bool = option(False, help="train the ST to predict the moment-canonical orientation instead of "
                            "classifying")
    hook_llr: bool = option(False, help="scale the gradient through each ST by --loc-lr-multiplier instead of the "
                            "loc lr")
    onlyloc: bool = option(False, help="train only the localization networks")
    loc_copies_lr_multiplier: float | None = option(None, group="stnlib", metavar="M", help="STN-DLk (--deep): the "
                                                    "learning rate of the localization's copies of the classifier's "
                                                    "blocks is this times --lr (default: --loc-lr-multiplier, as in "
                                                    "the original); 1 trains them as STN-SLk's shared blocks learn")
    theta_grad_scale: float | None = option(None, group="stnlib", metavar="S", help="multiply the gradient that "
                                            "flows back through each theta (into the localization and the layers "
                                            "it reads) by S, keeping --loc-lr-multiplier (--hook-llr is this with "
                                            "S = --loc-lr-multiplier and the localization at --lr)")
    rotation_range: float = option(90.0, group="stnlib", metavar="R",
                                   help="with --rotate, angles are uniform in [-R, R] degrees")
    train_rotation_range: float | None = option(None, group="stnlib", metavar="R", help="with --rotate, training "
                                                "angles are uniform in [-R, R] degrees instead (default: "
                                                "--rotation-range); test angles still span --rotation-range")
    rotation_warmup: list[float] = option(factory=list, group="stnlib", nargs=2, metavar=("START", "EPOCHS"),
                                          help="with --rotate, training angles grow from [-START, START] degrees in "
                                          "the first epoch to their full range after EPOCHS epochs (test angles "
                                          "always span --rotation-range)")
    device: str = option("auto", group="stnlib", help="auto (CUDA when present), cpu, cuda or cuda:N")
    data_root: str | None = option(None, group="stnlib",
                                   help="dataset folder (default: $STNLIB_DATA or ~/.cache/stnlib)")
    precision: str = option("auto", group="stnlib", help="fp32, bf16 (autocast), or auto: the faster of the two "
                            "for this model on this machine, measured in a few training steps on first use and "
                            "cached in the data root")
    run_group: str = option("auto", group="stnlib", help="how --runs N train: together (one stacked model, one "
                            "step for all), apart (one after another), or auto: together on CUDA, apart on the "
                            "CPU, where that is faster (docs/speed.md)")
    compile_step: bool = option(False, group="stnlib", help="compile a run group's step (forward and backward "
                                "pass and the optimizer's update) with torch.compile (on CUDA as CUDA graphs, "
                                "replayed without per-kernel launches); "
                                "compiling takes a minute, so it pays on long runs")
    eval_passes: int = option(10, group="stnlib", help="rotated test passes for the final accuracy (at most 1000)")
    limit: int | None = option(None, group="stnlib", help="use only the first N training and N test images")

    @property
    def has_st(self) -> bool:
        return self.localization is not None

    @property
    def applied_theta_grad_scale(self) -> float:
        """What the gradient through each theta is multiplied by: --loc-lr-multiplier under --hook-llr,
        else --theta-grad-scale, else 1."""
        if self.hook_llr:
            return self.loc_lr_multiplier
        return 1.0 if self.theta_grad_scale is None else self.theta_grad_scale

    @property
    def st_mode(self) -> str:
        """The network's ``NetworkSpec.st_mode`` for the CLI's two switches: ``"loop"`` (``--loop``,
        STN-SL), ``"deep"`` (``--deep``, STN-DL) or ``"feature"`` (neither: STN-C)."""
        return "loop" if self.loop else "deep" if self.deep else "feature"

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
        if values.get("localization") in (ORIGINAL_NO_LOCALIZATION, False):  # run folders and sweep files
            values = {**values, "localization": None}  # written with the original's word (YAML reads it as False)
        return cls(**values).check_types()

    def check_types(self) -> "RunConfig":
        """Check that every value has its field's type (whole numbers where counts are meant, ``true`` or
        ``false`` for switches); raise ``ConfigError`` naming the first that does not."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kinds = field_kinds(f)
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
        if self.run_group not in RUN_GROUPS:
            raise ConfigError(f"unknown --run-group {self.run_group!r}; choose from {', '.join(RUN_GROUPS)}")
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
        self._check_localization_learning()
        for sizes, flag in ((self.model_parameters, "model"), (self.localization_parameters, "localization")):
            if sizes is not None and any(s <= 0 for s in sizes):
                raise ConfigError(f"--{flag}-parameters must be positive, got {sizes}")
        return self

    def _check_localization_learning(self) -> None:
        if (self.hook_llr or self.theta_grad_scale is not None) and not self.has_st:
            raise ConfigError(f"--{'hook-llr' if self.hook_llr else 'theta-grad-scale'} needs an ST")
        if self.hook_llr and self.theta_grad_scale is not None:
            raise ConfigError("--hook-llr and --theta-grad-scale exclude each other: --hook-llr scales the gradient "
                              "by --loc-lr-multiplier; --theta-grad-scale S scales it by S")
        if self.loc_copies_lr_multiplier is not None and not self.deep:
            raise ConfigError("--loc-copies-lr-multiplier needs --deep (only STN-DLk's localization copies "
                              "classifier blocks)")
        for name in ("loc_copies_lr_multiplier", "theta_grad_scale"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ConfigError(f"--{name.replace('_', '-')} must be a finite number > 0, got {value}")

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
