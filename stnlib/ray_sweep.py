"""A grid of runs trained in parallel as Ray tasks: the library behind ``python -m stnlib.sweep``.

A grid is ``base`` (training options, named as ``RunConfig`` fields) and ``grid`` (an option -> a
list of values); its points are the cross product, each one ordinary run folder. Finished runs are
skipped and unfinished ones resumed; one failing run does not stop the others. With ``group_size``
above 1, points that differ only in their seed share a task and train as one run group
(``stnlib.train.group``) where their ``run_group`` asks for it on the task's device.
"""
from __future__ import annotations

import itertools
import math
import re
import statistics
from dataclasses import dataclass, field, fields
from pathlib import Path

from . import runs
from .config import RunConfig
from .errors import ConfigError

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
    except UnicodeDecodeError:
        raise ConfigError(f"grid file {path} is not UTF-8 text") from None
    except OSError as error:
        raise ConfigError(f"cannot read grid file {path}: {error.strerror or error}") from None
    if not spec:
        raise ConfigError(f"grid file {path} is empty; it needs a 'grid:' of options to vary (and may have a 'base:')")
    if not isinstance(spec, dict) or set(spec) - {"base", "grid"}:
        raise ConfigError(f"grid file {path} must hold only 'base:' and 'grid:'")
    base, grid = spec.get("base") or {}, spec.get("grid") or {}
    for key, wanted in (("base", "values, e.g. epochs: 2"), ("grid", "lists of values, e.g. seed: [0, 1, 2]")):
        if not isinstance(spec.get(key) or {}, dict):
            raise ConfigError(f"'{key}:' in {path} must map option names to {wanted}; got {spec[key]!r}")
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
    """The cross product of ``grid`` over ``base``, each validated (a ``ConfigError`` names the point)."""
    points = []
    for values in itertools.product(*grid.values()):
        options = dict(zip(grid, values))
        try:
            config = RunConfig.from_dict({**base, **options, "name": str(out / run_name(options))}).validate()
        except ConfigError as error:
            where = f" (grid point {run_name(options)})" if options else ""
            raise ConfigError(f"{error}{where}") from None
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


def train_points(configs: list[dict], threads: int) -> list[dict]:
    """Body of one Ray task for several points of one configuration up to the seed: train them together
    (``fit_together``); each one's metrics, or ``{"error": ...}`` for a run that diverged."""
    import torch

    from .train import fit_together

    torch.set_num_threads(max(threads, 1))
    outcomes = fit_together([RunConfig(**config) for config in configs], log=lambda _: None, progress=False)
    return [o.metrics if hasattr(o, "metrics") else {"error": f"{type(o).__name__}: {o}"} for o in outcomes]


def run_sweep(points: list[Point], address: str | None = None, cpus_per_run: float = 1, gpus_per_run: float = 0,
              num_cpus: int | None = None, log=print, group_size: int = 1) -> list[Point]:
    """Train every unfinished point as a Ray task, or with ``group_size`` > 1 every group of up to that
    many points that differ only in their seed as one task (``cpus_per_run`` and ``gpus_per_run`` are
    then each task's share); returns the points with their outcome."""
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
        options = dict(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)
        threads = math.ceil(cpus_per_run)
        pending = {}
        for members in _task_groups(todo, group_size):
            if len(members) == 1:
                point, resume = members[0]
                pending[ray.remote(train_point).options(**options).remote(vars(point.config), resume, threads)] = [point]
            else:
                configs = [vars(point.config) for point, _ in members]
                pending[ray.remote(train_points).options(**options).remote(configs, threads)] = [p for p, _ in members]
        if group_size > 1:
            log(f"{len(todo)} runs in {len(pending)} tasks of up to {group_size}")
        capacity = max(1, int(ray.cluster_resources().get("CPU", 1) // max(cpus_per_run, 1e-9)))
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            members = pending.pop(ready[0])
            try:
                outcome = ray.get(ready[0])
                for point, metrics in zip(members, outcome if isinstance(outcome, list) else [outcome]):
                    point.status = "failed" if "error" in metrics else "done"
                    point.metrics, point.error = ({}, metrics["error"]) if "error" in metrics else (metrics, "")
            except Exception as error:  # the task failed; the others go on
                for point in members:
                    point.status, point.error = "failed", _one_line(error)
            done = sum(p.status in ("done", "failed") for p, _ in todo)
            running = min(len(pending), capacity)
            for point in members:
                log(f"[{done}/{len(todo)}] {point.status}: {point.folder.name}"
                    f"{' (' + point.error + ')' if point.error else ''}; running {running}, queued {len(pending) - running}")
    finally:
        if started_here:
            ray.shutdown()
    return points


def _task_groups(todo: list[tuple[Point, bool]], size: int) -> list[list[tuple[Point, bool]]]:
    """``todo`` (point, resumable) in tasks: alone with ``size`` 1, else in groups of up to ``size`` points
    whose options differ only in the seed."""
    if size <= 1:
        return [[item] for item in todo]
    from .train import seed_groups

    by_config = {id(item[0].config): item for item in todo}
    return [[by_config[id(config)] for config in group]
            for group in seed_groups([point.config for point, _ in todo], size)]


def _one_line(error: Exception) -> str:
    cause = getattr(error, "cause", None) or error  # RayTaskError wraps the task's exception
    return f"{type(cause).__name__}: {str(cause).strip().splitlines()[-1] if str(cause).strip() else ''}"[:300]


def summary_table(points: list[Point], grid: dict):
    """One row per run: its folder, the grid options, status, accuracy, time and error (a DataFrame)."""
    import pandas as pd

    return pd.DataFrame([{"run": p.folder.name, **{k: p.options[k] for k in grid}, "status": p.status,
                          "test_accuracy": p.metrics.get("test_accuracy"), "wall_seconds": p.metrics.get("wall_seconds"),
                          "train_images_per_second": p.metrics.get("train_images_per_second"), "error": p.error}
                         for p in points])


def grouped_table(table, grid: dict):
    """Mean and spread of test accuracy over seeds, for each setting of the other grid options."""
    keys = [k for k in grid if k != "seed"]
    finished = table.dropna(subset=["test_accuracy"]).astype({k: str for k in keys})
    if finished.empty:
        return finished.iloc[:, :0]
    grouped = finished.groupby(keys, sort=False) if keys else finished.groupby(lambda _: "all")
    result = grouped["test_accuracy"].agg(runs="count", mean_accuracy="mean", std_accuracy="std").reset_index()
    return result.drop(columns="index") if not keys else result


def write_summary(out: Path, table, grouped) -> None:
    """``summary.csv``, ``summary_grouped.csv`` and ``summary.md`` in ``out``, each written atomically."""
    for name, frame in (("summary.csv", table), ("summary_grouped.csv", grouped)):
        if not frame.empty:
            runs.atomic_write(out / name, lambda f, frame=frame: f.write(frame.to_csv(index=False).encode()))
    text = markdown(table, "Runs") + "\n\n" + markdown(grouped, "Over seeds") + "\n"
    runs.atomic_write(out / "summary.md", lambda f: f.write(text.encode()))


def markdown(frame, title: str) -> str:
    """``frame`` as a markdown table under ``## title``: numbers of the measured columns to 4 decimals,
    options as given, missing values empty."""
    if frame.empty:
        return f"## {title}\n\n(none)"
    measured = {"test_accuracy", "wall_seconds", "train_images_per_second", "mean_accuracy", "std_accuracy"}

    def cell(value, column):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        return f"{value:.4f}" if column in measured else str(value)
    text = frame.apply(lambda column: column.map(lambda v: cell(v, column.name)))
    return f"## {title}\n\n" + text.to_markdown(index=False, disable_numparse=True)
