"""Train a classifier with spatial transformers: ``python -m stnlib.learn -h``.

Accepts every flag of the original ``stn/learn.py`` with the same names,
short forms and defaults, so ``python stn/learn.py ARGS`` becomes
``python -m stnlib.learn ARGS``.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import shlex
import sys
from pathlib import Path

from .config import ORIGINAL_NO_LOCALIZATION, RunConfig, field_kinds
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


DIFFERENCES = """\
where stnlib differs from the original (README: "Where stnlib differs from the original"):
  --runs N        run r is seeded with seed + r (the original seeds once for all runs); on CUDA the N runs
                  train as one run group, one step for all (--run-group apart: one after another)
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
    """The original's flags and stnlib's, one per ``RunConfig`` field (its default and help come from the
    field), and the flags that act on the command itself (``--resume``, ``--overwrite``, ``--quiet``)."""
    p = OneLineParser(prog="python -m stnlib.learn", description=__doc__.split("\n")[0], epilog=DIFFERENCES,
                      formatter_class=DefaultsAndEpilogFormatter)
    groups = {"original": p, "stnlib": p.add_argument_group("stnlib options")}
    length = p.add_mutually_exclusive_group(required=True)
    names = {"datasets": _names(DATASETS), "classifiers": _names(CLASSIFIERS), "localizations": _names(LOCALIZATIONS)}
    for f in dataclasses.fields(RunConfig):
        meta = f.metadata
        target = length if meta.get("length") else groups[meta.get("group", "original")]
        flags = [f"--{f.name.replace('_', '-')}", *([meta["short"]] if meta.get("short") else [])]
        default = meta.get("cli_default", f.default_factory() if f.default is dataclasses.MISSING else f.default)
        help_text = meta["help"].format(**names)
        kind = field_kinds(f)[0]
        if kind == "bool":
            target.add_argument(*flags, action=argparse.BooleanOptionalAction, default=default, help=help_text)
            continue
        options = {"metavar": meta.get("metavar")} if meta.get("metavar") else {}
        if kind.startswith("list"):
            options.update(nargs=meta.get("nargs", "*"), type=meta.get("type", float if "float" in kind else int))
        else:
            options.update(type=meta.get("type", {"int": int, "float": float}.get(kind, str)))
        target.add_argument(*flags, default=None if meta.get("length") else default, help=help_text, **options)
    command = groups["stnlib"]
    command.add_argument("--resume", action="store_true", help="continue the run in --name from its last checkpoint")
    command.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    command.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    return p


CLI_ONLY = {"resume", "overwrite", "quiet"}


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The ``RunConfig`` of a parsed command line. ``-l false`` (the original's "no ST") is ``None``;
    ``--switch-after-iterations`` takes the original's float values: ``inf`` (never) is dropped, and the
    others must be whole numbers."""
    values = {k: v for k, v in vars(args).items() if k not in CLI_ONLY}
    if values["localization"] == ORIGINAL_NO_LOCALIZATION:
        values["localization"] = None
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
    if (Path(args.name) / "config.json").is_file():
        return f"finished epochs are kept in the checkpoint. Resume with: {resume_command(argv)}"
    return "training had not begun, and nothing was written; run the same command again to start"


if __name__ == "__main__":
    sys.exit(main())
