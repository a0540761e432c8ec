"""``--precision auto`` against fp32 and bf16: the flagship command's training speed on this CPU and on the
CPUs its instruction-set caps stand for.

For each machine (this CPU as it is; oneDNN capped at AVX-512 without bf16, ``ONEDNN_MAX_CPU_ISA=AVX512_CORE``;
a laptop's AVX2 CPU, ``stnlib.device.AVX2_STAND_IN``) it runs the README's flagship command
(``python -m stnlib.learn -d mnist5k -e E -m CNN -l CNN -p 0 --rotate -o adam --lr 0.001``) with
``--precision fp32``, ``--precision bf16`` and no precision flag, alternating, ``--rounds`` times, each in a
fresh process. ``auto`` starts from an empty cache every round, so its own measurement is part of what is
timed. Prints the median training images/s (``metrics.json``) and wall seconds of each, what ``auto``
chose, and auto's speed as a share of the faster fixed precision's; ``--json`` writes the figures. The
"before" column is what ``auto`` meant before it measured: bf16 wherever the CPU (under its caps) has
native bf16 instructions, else fp32.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stnlib.device import AVX2_STAND_IN, cpu_model_name

FLAGSHIP = ["-d", "mnist5k", "-m", "CNN", "-l", "CNN", "-p", "0", "--rotate", "-o", "adam", "--lr", "0.001",
            "-q", "--seed", "0"]
MACHINES = {"as it is": {}, "AVX-512, no bf16 (oneDNN capped)": {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
            "AVX2 (all three capped)": AVX2_STAND_IN}
PRECISIONS = ("fp32", "bf16", "auto")


def native_bf16(environment: dict) -> bool:
    """What ``auto`` used to check: native bf16 instructions under the caps in ``environment``."""
    code = "from stnlib.device import cpu_has_bf16; print(cpu_has_bf16())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, **environment}, check=True).stdout
    return out.strip() == "True"


def one_run(precision: str, environment: dict, epochs: int, scratch: Path) -> dict:
    """Train the flagship once in a fresh process; images/s, wall seconds and the precision used."""
    cache = scratch / f"cache-{precision}"
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir()
    for stored in Path(scratch / "mnist5k").glob("mnist5k-*.npz"):  # the digits' cache, not the choice's
        shutil.copy(stored, cache)
    folder = scratch / f"run-{precision}"
    flag = [] if precision == "auto" else ["--precision", precision]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "stnlib.learn", *FLAGSHIP, "-e", str(epochs), *flag, "-n", str(folder),
                    "--overwrite"], env={**os.environ, **environment, "STNLIB_DATA": str(cache)}, check=True,
                   capture_output=True)
    wall = time.perf_counter() - start
    metrics = json.loads((folder / "metrics.json").read_text())
    return {"images_per_second": metrics["train_images_per_second"], "wall_seconds": wall,
            "precision": metrics["precision"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--machines", nargs="*", default=list(MACHINES), help=f"of {list(MACHINES)}")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args()
    import torch

    print(f"{cpu_model_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}; flagship, "
          f"{args.epochs} epochs, {args.rounds} rounds; {time.strftime('%Y-%m-%d')}")
    figures = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        (scratch / "mnist5k").mkdir()
        subprocess.run([sys.executable, "-c", "from stnlib.data import load_dataset; load_dataset('mnist5k')"],
                       env={**os.environ, "STNLIB_DATA": str(scratch / "mnist5k")}, check=True)
        for machine in args.machines:
            environment = MACHINES[machine]
            runs = {precision: [] for precision in PRECISIONS}
            for _ in range(args.rounds):
                for precision in PRECISIONS:
                    runs[precision].append(one_run(precision, environment, args.epochs, scratch))
            figures[machine] = summarise(runs, native_bf16(environment))
            show(machine, figures[machine])
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))


def summarise(runs: dict, native: bool) -> dict:
    speed = {p: statistics.median(r["images_per_second"] for r in runs[p]) for p in PRECISIONS}
    wall = {p: statistics.median(r["wall_seconds"] for r in runs[p]) for p in PRECISIONS}
    faster = max(("fp32", "bf16"), key=speed.get)
    before = "bf16" if native else "fp32"
    return {"images_per_second": speed, "wall_seconds": wall, "auto_chose": sorted({r["precision"] for r in runs["auto"]}),
            "before": before, "auto_share_of_faster": speed["auto"] / speed[faster],
            "before_share_of_faster": speed[before] / speed[faster]}


def show(machine: str, f: dict) -> None:
    speed, wall = f["images_per_second"], f["wall_seconds"]
    print(f"\n{machine}: auto chose {', '.join(f['auto_chose'])}; before it measured, auto meant {f['before']}")
    print(f"  {'precision':<10}{'images/s':>10}{'wall s':>8}")
    for precision in PRECISIONS:
        print(f"  {precision:<10}{speed[precision]:>10,.0f}{wall[precision]:>8.1f}")
    print(f"  auto reaches {f['auto_share_of_faster']:.0%} of the faster precision's images/s "
          f"(before: {f['before_share_of_faster']:.0%})")


if __name__ == "__main__":
    main()
