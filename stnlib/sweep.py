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
import csv
import itertools
import math
import re
import statistics
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from . import runs
from .config import RunConfig
from .errors import ConfigError, StnlibError

SUMMARY_COLUMNS = ["run", "status", "test_accuracy", "wall_seconds", "train_images_per_second", "error"]


@dataclass
class Point:
    """One grid point: its options, the run folder and, once run, the outcome."""

    options: dict
    config: RunConfig
    status: str = "queued"  # queued, skipped (finished before), done, failed
    metrics: dict = field(default_factory=dict)
    error: str = ""

    @property
    def folder(self) -> Path:
        return Path(self.config.name)


def load_grid(path: Path) -> tuple[dict, dict]:
    import yaml

    try:
        spec = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"grid file {path} does not exist") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"grid file {path} is not valid YAML ({str(error).splitlines()[0]})") from None
    if not spec:
        raise ConfigError(f"grid file {path} is empty; it needs a 'grid:' of options to vary (and may have a 'base:')")
    if not isinstance(spec, dict) or set(spec) - {"base", "grid"}:
        raise ConfigError(f"grid file {path} must hold only 'base:' and 'grid:'")
    base, grid = spec.get("base") or {}, spec.get("grid") or {}
    known = {f.name for f in fields(RunConfig)} - {"name"}
    unknown = sorted((set(base) | set(grid)) - known)
    if unknown:
        raise ConfigError(f"unknown option(s) in {path}: {', '.join(unknown)}")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid option {key!r} must be a non-empty list of values")
    return base, grid


def run_name(options: dict) -> str:
    """A folder name that says what the run is: ``stn_placement=3,seed=0``."""
    def text(value):
        return "-".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    name = ",".join(f"{k}={text(v)}" for k, v in options.items()) or "base"
    return re.sub(r"[^A-Za-z0-9_.,=+-]", "_", name)


def expand(base: dict, grid: dict, out: Path) -> list[Point]:
    """The cross product of ``grid`` over ``base``, each validated."""
    points = []
    for values in itertools.product(*grid.values()):
        options = dict(zip(grid, values))
        config = RunConfig.from_dict({**base, **options, "name": str(out / run_name(options))}).validate()
        points.append(Point(options, config))
    return points


def classify(point: Point) -> str:
    """``finished`` (metrics written), ``resumable`` (a checkpoint) or ``new``."""
    if (point.folder / runs.METRICS).is_file():
        return "finished"
    return "resumable" if (point.folder / runs.CONFIG).is_file() else "new"


def train_point(config: dict, resume: bool, threads: int) -> dict:
    """Body of one Ray task: train a run folder and return its metrics."""
    import torch

    from .train import fit

    torch.set_num_threads(max(threads, 1))
    result = fit(RunConfig(**config), resume=resume, overwrite=not resume and Path(config["name"]).exists(),
                 log=lambda _: None, progress=False)
    return result[0].metrics if len(result) == 1 else {"test_accuracy": statistics.mean(
        r.metrics["test_accuracy"] for r in result)}


def run_sweep(points: list[Point], address: str | None = None, cpus_per_run: float = 1, gpus_per_run: float = 0,
              num_cpus: int | None = None, log=print) -> list[Point]:
    """Train every unfinished point as a Ray task; returns the points with their outcome."""
    import ray

    todo = []
    for point in points:
        state = classify(point)
        if state == "finished":
            point.status, point.metrics = "skipped", runs.read_json(point.folder / runs.METRICS)
        else:
            todo.append((point, state == "resumable"))
    log(f"{len(points)} runs: {len(points) - len(todo)} finished before, {len(todo)} to train")
    if not todo:
        return points
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, num_cpus=num_cpus if address is None else None, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    try:
        task = ray.remote(train_point).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)
        pending = {task.remote(vars(p.config), resume, math.ceil(cpus_per_run)): p for p, resume in todo}
        capacity = max(1, int(ray.cluster_resources().get("CPU", 1) // max(cpus_per_run, 1e-9)))
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            point = pending.pop(ready[0])
            try:
                point.metrics, point.status = ray.get(ready[0]), "done"
            except Exception as error:  # the run failed; the others go on
                point.status, point.error = "failed", _one_line(error)
            done = sum(p.status in ("done", "failed") for p, _ in todo)
            running = min(len(pending), capacity)
            log(f"[{done}/{len(todo)}] {point.status}: {point.folder.name}"
                f"{' (' + point.error + ')' if point.error else ''}; running {running}, queued {len(pending) - running}")
    finally:
        if started_here:
            ray.shutdown()
    return points


def _one_line(error: Exception) -> str:
    cause = getattr(error, "cause", None) or error  # RayTaskError wraps the task's exception
    return f"{type(cause).__name__}: {str(cause).strip().splitlines()[-1] if str(cause).strip() else ''}"[:300]


def summary_rows(points: list[Point], grid: dict) -> list[dict]:
    rows = []
    for p in points:
        row = {"run": p.folder.name, **{k: p.options[k] for k in grid}, "status": p.status,
               "test_accuracy": p.metrics.get("test_accuracy"), "wall_seconds": p.metrics.get("wall_seconds"),
               "train_images_per_second": p.metrics.get("train_images_per_second"), "error": p.error}
        rows.append(row)
    return rows


def grouped_rows(rows: list[dict], grid: dict) -> list[dict]:
    """Mean and spread of test accuracy over seeds, for each setting of the other grid options."""
    keys = [k for k in grid if k != "seed"]
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        if row["test_accuracy"] is not None:
            groups.setdefault(tuple(str(row[k]) for k in keys), []).append(row["test_accuracy"])
    return [{**dict(zip(keys, key)), "runs": len(accs), "mean_accuracy": statistics.mean(accs),
             "std_accuracy": statistics.stdev(accs) if len(accs) > 1 else float("nan")}
            for key, accs in groups.items()]


def write_summary(out: Path, rows: list[dict], grouped: list[dict]) -> None:
    for name, table in (("summary.csv", rows), ("summary_grouped.csv", grouped)):
        if table:
            with open(out / name, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(table[0]))
                writer.writeheader()
                writer.writerows(table)
    (out / "summary.md").write_text(markdown(rows, "Runs") + "\n\n" + markdown(grouped, "Over seeds") + "\n")


def markdown(table: list[dict], title: str) -> str:
    if not table:
        return f"## {title}\n\n(none)"
    def cell(value):
        return f"{value:.4f}" if isinstance(value, float) and not math.isnan(value) else ("" if value is None else str(value))
    lines = [f"## {title}", "", "| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    lines += ["| " + " | ".join(cell(v) for v in row.values()) + " |" for row in table]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stnlib.sweep", description=__doc__.split("\n")[0])
    parser.add_argument("grid", help="YAML file with base: and grid:")
    parser.add_argument("--out", required=True, help="folder for the run folders and the summary")
    parser.add_argument("--address", default=None, help="a Ray cluster's address (default: start a local Ray)")
    parser.add_argument("--gpus-per-run", type=float, default=0, help="GPUs each run asks Ray for")
    parser.add_argument("--cpus-per-run", type=float, default=1, help="CPU cores each run asks Ray for")
    parser.add_argument("--num-cpus", type=int, default=None, help="cores a local Ray may use (default: all)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        base, grid = load_grid(Path(args.grid))
        points = expand(base, grid, out)
        runs.ensure_folder(out, "--out folder")
        start = time.perf_counter()
        points = run_sweep(points, args.address, args.cpus_per_run, args.gpus_per_run, args.num_cpus)
    except StnlibError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    rows = summary_rows(points, grid)
    write_summary(out, rows, grouped_rows(rows, grid))
    failed = [p for p in points if p.status == "failed"]
    print(f"{len(points)} runs in {time.perf_counter() - start:.0f} s; summary: {out / 'summary.md'}")
    for p in failed:
        print(f"failed: {p.folder.name}: {p.error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
