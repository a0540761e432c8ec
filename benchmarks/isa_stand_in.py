"""``--avx2`` for the benchmarks: run again with every kernel library capped at AVX2, so that a newer CPU
stands for a laptop's (no AVX-512, no AMX). Capping ATen and oneDNN alone is not enough: MKL's matrix
products (``torch.matmul``, ``bmm``, ``Linear``) would still use AVX-512."""
from __future__ import annotations

import argparse
import os
import sys

from stnlib.device import AVX2_STAND_IN, isa_caps

FLAG = "--avx2"


def add_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(FLAG, action="store_true",
                        help="stand for a laptop's AVX2 CPU: re-run with " + " ".join(
                            f"{k}={v}" for k, v in AVX2_STAND_IN.items()))


def rerun_as_avx2_if_asked(args: argparse.Namespace) -> None:
    """With ``--avx2``, replace this process by the same command under ``AVX2_STAND_IN`` (before any
    kernel has run; the libraries read their caps once)."""
    if getattr(args, "avx2", False):
        argv = [sys.executable, sys.argv[0], *(a for a in sys.argv[1:] if a != FLAG)]
        sys.stdout.flush()
        os.execve(sys.executable, argv, {**os.environ, **AVX2_STAND_IN})


def header() -> str:
    """What the header of every benchmark says about instruction-set caps."""
    return f"instruction-set caps: {isa_caps()}"
