"""Train a classifier with spatial transformers: ``python -m stnlib.learn -h``.

Accepts every flag of the original ``stn/learn.py`` with the same names,
short forms and defaults, so ``python stn/learn.py ARGS`` becomes
``python -m stnlib.learn ARGS``.
"""
from __future__ import annotations

import argparse
import math
import shlex
import sys

from .config import RunConfig
from .errors import ConfigError, StnlibError, TrainingDiverged

STARTING_INTERRUPTED = "interrupted while starting; nothing was written"

try:  # torch loads here, for a second or more
    from .data import DATASETS
    from .models import CLASSIFIERS, LOCALIZATIONS
except KeyboardInterrupt:  # Ctrl-C then: one line, not a traceback
    if __name__ != "__main__":
        raise
    print(STARTING_INTERRUPTED, file=sys.stderr)
    sys.exit(130)


class OneLineParser(argparse.ArgumentParser):
    """Reports a bad command line in one line (and exit status 2), without the usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see -h)\n")


def _names(table) -> str:
    return ", ".join(sorted(table))


def _switch(parser, name: str, default: bool, help: str) -> None:
    """``--name`` and ``--no-name`` (the last one given wins)."""
    parser.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=default, help=help)


DIFFERENCES = """\
where stnlib differs from the original (README: "Where stnlib differs from the original"):
  --runs N        run r is seeded with seed + r (the original seeds once for all runs)
  test accuracy   metrics.json holds the 10-pass mean and the last epoch's single pass; the original
                  printed the latter for datasets other than MNIST, translated and scaled MNIST
  PlanktonSet     augmentation is one batched bilinear warp with border padding (the original: two PIL
                  resamplings with zero fill)
  SVHN-d, CNNb, CNNmb, --deep --batchnorm
                  crash in the original; stnlib builds what they were meant to be (see the README)
"""


class DefaultsAndEpilogFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each flag's default and keeps the epilog's line breaks."""


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m stnlib.learn", description=__doc__.split("\n")[0], epilog=DIFFERENCES,
                      formatter_class=DefaultsAndEpilogFormatter)
    p.add_argument("--dataset", "-d", default="mnist",
                   help=f"dataset name ({_names(DATASETS)}) or a precomputed-dataset folder prefix")
    p.add_argument("--model", "-m", default="CNN", help=f"classifier: {_names(CLASSIFIERS)}")
    p.add_argument("--model-parameters", nargs="*", type=int, help="layer widths of the classifier")
    p.add_argument("--localization", "-l", default="false",
                   help=f"localization network, or false for no ST: {_names(LOCALIZATIONS)}")
    p.add_argument("--localization-parameters", nargs="*", type=int, help="layer widths of the localization network")
    p.add_argument("--stn-placement", "-p", nargs="*", type=int, default=[],
                   help="classifier layer indices an ST sits before (0: the input); a repeated index adds an iteration")
    p.add_argument("--runs", type=int, default=1,
                   help="number of independent runs; run r is seeded with seed + r (the original seeds once and "
                        "lets the runs continue one random stream)")
    p.add_argument("--name", "-n", default="result", help="run folder to create; it must not exist yet")
    p.add_argument("--optimizer", "-o", default="sgd", help="sgd, nesterov or adam")
    p.add_argument("--lr", type=float, default=0.01, help="initial learning rate")
    p.add_argument("--switch-after-iterations", nargs="*", type=float, default=[],
                   help="iterations at which the learning rate is divided by --divide-lr-by (increasing); "
                        "one value N divides it every N iterations, as in the original")
    p.add_argument("--loc-lr-multiplier", type=float, default=1.0,
                   help="the localization networks' learning rate is this times --lr")
    p.add_argument("--pre-stn-multiplier", type=float, default=1.0,
                   help="the learning rate of layers before an ST is this times --lr")
    p.add_argument("--divide-lr-by", type=float, default=10.0, help="divisor of the learning rate at each switch")
    p.add_argument("--momentum", type=float, default=0.0, help="SGD momentum (use -o nesterov for Nesterov)")
    p.add_argument("--weight-decay", "-w", type=float, default=0.0, help="L2 weight decay")
    p.add_argument("--batch-size", "-b", type=int, default=256, help="images per batch")
    p.add_argument("--load-model", default="", help="start from these weights (a run folder or a .pt file)")
    p.add_argument("--add-iteration", nargs="*", type=int, default=[],
                   help="after this many batches, add an ST iteration (-1: before --load-model, 0: after it)")
    p.add_argument("--seed", type=int, default=None, help="random seed; without it one is drawn and saved")
    epochs = p.add_mutually_exclusive_group(required=True)
    epochs.add_argument("--epochs", "-e", type=int, help="epochs to train")
    epochs.add_argument("--iterations", "-i", type=int, help="batches to train (rounded down to whole epochs)")
    _switch(p, "loop", False, "STN-SLk: the classifier's own first layers predict theta, which transforms the input")
    _switch(p, "deep", False, "STN-DLk: fresh copies of the classifier's first layers predict theta for the input")
    _switch(p, "rotate", False, "rotate train and test images by random angles (see --rotation-range)")
    _switch(p, "normalize", False, "standardise inputs with the dataset's mean and std")
    _switch(p, "batchnorm", False, "BatchNorm (without affine parameters) after every ST")
    _switch(p, "iterative", True, "a repeated placement index reuses the same localization network")
    _switch(p, "moment-sched", False, "show images in their moment-canonical orientation, less often as training goes")
    _switch(p, "pretrain", False, "train the ST to predict the moment-canonical orientation instead of classifying")
    _switch(p, "hook-llr", False, "scale the gradient through each ST by --loc-lr-multiplier instead of the loc lr")
    _switch(p, "onlyloc", False, "train only the localization networks")
    new = p.add_argument_group("stnlib options")
    new.add_argument("--rotation-range", type=float, default=90.0,
                     help="with --rotate, angles are uniform in [-R, R] degrees")
    new.add_argument("--train-rotation-range", type=float, default=None, metavar="R",
                     help="with --rotate, training angles are uniform in [-R, R] degrees instead (default: "
                          "--rotation-range); test angles still span --rotation-range")
    new.add_argument("--rotation-warmup", nargs=2, type=float, default=[], metavar=("START", "EPOCHS"),
                     help="with --rotate, training angles grow from [-START, START] degrees in the first epoch "
                          "to their full range after EPOCHS epochs (test angles always span --rotation-range)")
    new.add_argument("--resume", action="store_true", help="continue the run in --name from its last checkpoint")
    new.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    new.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    new.add_argument("--data-root", default=None, help="dataset folder (default: $STNLIB_DATA or ~/.cache/stnlib)")
    new.add_argument("--precision", default="auto",
                     help="fp32, bf16 (autocast), or auto: the faster of the two for this model on this machine, "
                          "measured in a few training steps on first use and cached in the data root")
    new.add_argument("--eval-passes", type=int, default=10,
                     help="rotated test passes for the final accuracy (at most 1000)")
    new.add_argument("--limit", type=int, default=None, help="use only the first N training and N test images")
    new.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    return p


CLI_ONLY = {"resume", "overwrite", "quiet"}


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The ``RunConfig`` of a parsed command line. ``--switch-after-iterations`` takes the original's
    float values: ``inf`` (never) is dropped, and the others must be whole numbers."""
    values = {k: v for k, v in vars(args).items() if k not in CLI_ONLY}
    switches = [v for v in values["switch_after_iterations"] if v != float("inf")]
    if not all(math.isfinite(v) and v == int(v) for v in switches):
        raise ConfigError(f"--switch-after-iterations takes whole numbers of iterations, got "
                          f"{' '.join(f'{v:g}' for v in switches)}")
    values["switch_after_iterations"] = [int(v) for v in switches]
    return RunConfig(**values)


def resume_command(argv: list[str]) -> str:
    again = [a for a in argv if a not in ("--overwrite", "--resume")] + ["--resume"]
    return f"python -m stnlib.learn {shlex.join(again)}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        from .train import Interrupted, fit
    except KeyboardInterrupt:
        print(STARTING_INTERRUPTED, file=sys.stderr)
        return 130
    try:
        fit(config_from_args(args), resume=args.resume, overwrite=args.overwrite, progress=not args.quiet)
    except Interrupted as stop:
        print(f"interrupted: {stop}; checkpoint saved. Resume with: {resume_command(argv)}", file=sys.stderr)
        return 130
    except TrainingDiverged as error:  # not bad input: the run itself went wrong
        print(f"error: {error}", file=sys.stderr)
        return 1
    except StnlibError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # disk full, permissions: the earlier checkpoint stays intact
        where = error.filename or "the run folder"
        print(f"error: cannot write {where}: {error.strerror or error}; the last checkpoint, if any, is kept",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before the training loop took over Ctrl-C, or after it gave it back
        print(f"interrupted; {_what_is_kept(args, argv)}", file=sys.stderr)
        return 130
    return 0


def _what_is_kept(args, argv: list[str]) -> str:
    """After Ctrl-C: the resume command where the run folder holds a run, else that nothing was kept."""
    from pathlib import Path

    if (Path(args.name) / "config.json").is_file():
        return f"finished epochs are kept in the checkpoint. Resume with: {resume_command(argv)}"
    return "training had not begun, and nothing was written; run the same command again to start"


if __name__ == "__main__":
    sys.exit(main())
