"""Sweeps on Ray: ``python -m stnlib.sweep GRID.yaml --out DIR [--address ADDR]``.

``GRID.yaml`` holds ``base:`` (training options, named as ``RunConfig`` fields: the CLI's long
flags with underscores) and ``grid:`` (an option -> a list of values). The sweep is the cross
product; each point is one ordinary run folder under ``DIR``, trained as one Ray task. Without
``--address`` a local Ray starts on this machine's cores and GPUs; with it, the runs go to that
cluster. Finished runs are skipped and unfinished ones resumed, so a sweep can simply be run again.
One failing run does not stop the others. ``DIR/summary.csv`` and ``DIR/summary.md`` list every
run; ``DIR/summary_grouped.csv`` gives mean and spread over seeds.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import runs
from .errors import ConfigError, StnlibError
from .ray_sweep import expand, grouped_table, load_grid, run_sweep, summary_table, write_summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stnlib.sweep", description=__doc__.split("\n")[0])
    parser.add_argument("grid", help="YAML file with base: and grid:")
    parser.add_argument("--out", required=True, help="folder for the run folders and the summary")
    parser.add_argument("--address", default=None, help="a Ray cluster's address (default: start a local Ray)")
    parser.add_argument("--gpus-per-run", type=float, default=0, help="GPUs each task (a run, or a group) asks Ray for")
    parser.add_argument("--cpus-per-run", type=float, default=1, help="CPU cores each task asks Ray for")
    parser.add_argument("--group-size", type=int, default=1,
                        help="runs that differ only in their seed share a task, up to this many, and train as one "
                             "run group where their --run-group asks for it (on CUDA by default)")
    parser.add_argument("--num-cpus", type=int, default=None, help="cores a local Ray may use (default: all)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        base, grid = load_grid(Path(args.grid))
        points = expand(base, grid, out)
        runs.ensure_folder(out, "--out folder")
        start = time.perf_counter()
        if args.group_size < 1:
            raise ConfigError(f"--group-size must be at least 1, got {args.group_size}")
        points = run_sweep(points, args.address, args.cpus_per_run, args.gpus_per_run, args.num_cpus,
                           group_size=args.group_size)
    except StnlibError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    table = summary_table(points, grid)
    write_summary(out, table, grouped_table(table, grid))
    failed = [p for p in points if p.status == "failed"]
    print(f"{len(points)} runs in {time.perf_counter() - start:.0f} s; summary: {out / 'summary.md'}")
    for p in failed:
        print(f"failed: {p.folder.name}: {p.error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
