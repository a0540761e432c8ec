"""A whole invocation of the training CLI: ``fit`` checks the options, prepares the run folder and the
data, and trains each of ``--runs`` runs, one after another or as one group (``stnlib.train.group``).
"""
from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from .. import runs
from ..config import RunConfig
from ..data import ImageData, augmentation_for, load_dataset
from ..device import pick_device
from ..errors import ConfigError, RunFolderError, TrainingDiverged
from ..models import build_model
from .group import RunGroup, group_obstacle, trains_together
from .trainer import RunResult, Trainer, load_weights

# Options that may differ between a run and its --resume without changing what it trains.
RESUME_MAY_CHANGE = {"device", "data_root", "name", "load_model", "run_group", "compile_step"}


def fit(config: RunConfig, resume: bool = False, overwrite: bool = False, data: ImageData | None = None,
        log: Callable[[str], None] = print, progress: bool = True,
        on_epoch: Callable[[dict], None] | None = None) -> list[RunResult]:
    """Train ``config.runs`` runs into the run folder ``config.name``; see ``stnlib.runs`` for its layout.

    ``log`` receives every line of the CLI's output, ``on_epoch`` each finished epoch's history entry
    (``epoch`` counts from 1; ``test_accuracy``, ``train_loss``, ... as in ``history.json``).

    Everything that can be checked is checked before the folder is touched; a new run that fails
    before its first checkpoint (bad data found late, out of memory, a diverged first epoch) takes
    its folder back, so the corrected command can be run as it is.
    """
    config.validate()
    if resume and overwrite:
        raise RunFolderError("--resume and --overwrite exclude each other")
    device = pick_device(config.device)
    folder = Path(config.name)
    if resume:
        config = _resumable_config(folder, config)
    if config.seed is None:
        config = replace(config, seed=random.randrange(2**31))
    data = _data_for(config, data)
    architecture = _check_before_training(config, data)
    runs.prepare_folder(folder, resume=resume, overwrite=overwrite)
    if not resume:
        runs.claim_folder(folder, {"config": config.to_dict(), "architecture": architecture,
                                  "data": vars(data.spec), "versions": runs.versions()})
    log(f"{config.model} classifier, {architecture}, on {config.dataset} ({device})")
    try:
        data = data.to(device)
        results = _train_runs(config, data, device, folder, resume, log, progress, on_epoch)
    except BaseException as error:
        if not resume:
            runs.release_unstarted_folder(folder)
        memory = _out_of_memory(error, "training") if isinstance(error, (RuntimeError, MemoryError)) else None
        if memory is not None:
            raise memory from None
        raise
    if config.runs > 1:
        accuracies = [r.metrics["test_accuracy"] for r in results]
        runs.save_json(folder / runs.METRICS, {"test_accuracy_runs": accuracies, "architecture": architecture})
    return results


def seed_groups(configs: list[RunConfig], size: int | None = None) -> list[list[RunConfig]]:
    """``configs`` in groups that ``fit_together`` can train: the same options but ``seed`` and ``name``,
    at most ``size`` each (``None``: no limit), in the order of each group's first member."""
    groups: dict[str, list[RunConfig]] = {}
    for config in configs:
        key = json.dumps({k: v for k, v in config.to_dict().items() if k not in ("seed", "name")}, sort_keys=True)
        groups.setdefault(key, []).append(config)
    size = size or len(configs) or 1
    return [members[i:i + size] for members in groups.values() for i in range(0, len(members), size)]


def fit_together(configs: list[RunConfig], data: ImageData | None = None, log: Callable[[str], None] = print,
                 progress: bool = False) -> list[RunResult | TrainingDiverged]:
    """Train single-run folders of one configuration that differ only in ``seed`` and ``name`` (the seeds
    of one variant), as one group where ``run_group`` asks for it on this device, else one after another.

    A folder holding a finished run is read back, one holding a started run continues from its
    checkpoint, and anything else in the way is replaced. Returns, in order, each run's result or the
    ``TrainingDiverged`` of a run that diverged (the others go on); other errors are raised.
    """
    for config in configs:
        config.validate()
    first = configs[0]
    shared = {k: v for k, v in first.to_dict().items() if k not in ("seed", "name")}
    for config in configs:
        differing = [k for k, v in config.to_dict().items() if k in shared and v != shared[k]]
        if config.runs != 1 or config.seed is None or differing:
            raise ConfigError(f"fit_together trains single runs with seeds that differ only in seed and name; "
                              f"{config.name} differs in {', '.join(differing) or 'runs or seed'}")
    device = pick_device(first.device)
    data = _data_for(first, data)
    architecture = _check_before_training(first, data)
    places = []
    for config in configs:
        folder = Path(config.name)
        resume = (folder / runs.CONFIG).is_file()
        if resume:
            _resumable_config(folder, config)
        else:
            runs.prepare_folder(folder, resume=False, overwrite=folder.exists())
            runs.claim_folder(folder, {"config": config.to_dict(), "architecture": architecture,
                                      "data": vars(data.spec), "versions": runs.versions()})
        places.append(Place(config, config.seed, folder, folder.name, resume))
    return train_places(places, data.to(device), device, log, progress)


def _data_for(config: RunConfig, data: ImageData | None) -> ImageData:
    """``data`` (loaded when ``None``), cut to ``config.limit`` images per split."""
    data = data if data is not None else load_dataset(config.dataset, config.data_root)
    return data.head(config.limit, config.limit) if config.limit else data


def _check_before_training(config: RunConfig, data: ImageData) -> str:
    """Fail fast, before the run folder is touched, on what can be known from the options and the
    data alone; returns the model's readable architecture."""
    batches = math.ceil(len(data.train_images) / config.batch_size)
    if config.iterations and config.iterations < batches:
        raise ConfigError(f"--iterations {config.iterations} is less than one epoch ({batches} batches of "
                          f"{config.batch_size}); training runs whole epochs, so give at least {batches}")
    data.check_labels()
    augmentation_for(config, data)  # transformations the dataset does not take
    try:
        probe = build_model(config, data.spec)  # impossible models
    except (RuntimeError, MemoryError) as error:
        raise _out_of_memory(error, "building the model") or error
    if config.load_model:
        load_weights(probe, config.load_model)  # unusable weights
    return probe.architecture


def _out_of_memory(error: BaseException, doing: str) -> ConfigError | None:
    """A one-line ``ConfigError`` for an allocation that failed while ``doing``, else ``None``."""
    text = str(error)
    if not (isinstance(error, MemoryError) or "allocate" in text or "out of memory" in text):
        return None
    wanted = re.search(r"allocate (\d+) bytes", text)
    size = f" ({int(wanted.group(1)) / 2**30:,.1f} GiB at once)" if wanted else ""
    return ConfigError(f"out of memory while {doing}{size}; use a smaller --batch-size or --model-parameters")


@dataclass(frozen=True)
class Place:
    """Where one run trains: its configuration, seed, folder, the name it is reported by, and whether
    it continues what the folder holds (a finished run is read back, a started one resumed)."""

    config: RunConfig
    seed: int
    folder: Path
    label: str
    resume: bool = False


def _train_runs(config: RunConfig, data: ImageData, device: torch.device, folder: Path, resume: bool,
                log: Callable[[str], None], progress: bool, on_epoch) -> list[RunResult]:
    """Train (or, with ``resume``, finish) every run of ``config`` in ``folder``, in run order. A run
    that diverged raises its error, after the others of its group finished."""
    places = [Place(config, config.seed + r, run_dir, f"run {r}", resume)
              for r, run_dir in enumerate(runs.run_dirs(folder, config.runs))]
    outcomes = train_places(places, data, device, log, progress, on_epoch)
    failures = [o for o in outcomes if isinstance(o, TrainingDiverged)]
    if failures:
        finished = len(outcomes) - len(failures)
        others = f" ({finished} other run{'s' * (finished != 1)} finished)" if config.runs > 1 else ""
        raise TrainingDiverged(f"{failures[0]}{others}")
    return outcomes


def train_places(places: list[Place], data: ImageData, device: torch.device,
                 log: Callable[[str], None], progress: bool = True,
                 on_epoch=None) -> list[RunResult | TrainingDiverged]:
    """Train the runs at ``places`` (one configuration up to the seed and folder): as one group when
    ``--run-group`` asks for it here and the runs allow it, else one after another. Returns, in order,
    each run's result, or the error of a grouped run that diverged (a run trained alone raises it)."""
    outcomes: dict[int, RunResult | TrainingDiverged] = {
        i: _finished_result(p.folder) for i, p in enumerate(places) if p.resume and (p.folder / runs.METRICS).is_file()}
    unfinished = [i for i in range(len(places)) if i not in outcomes]
    config = places[0].config
    if len(unfinished) > 1 and trains_together(config, device):
        obstacle = group_obstacle(config, data.spec)
        if obstacle is None:
            trainers = [_trainer(places[i], data, device, _labelled(log, places[i].label), progress, on_epoch)
                        for i in unfinished]
            if len({(t.epoch, t.current.position if t.current else 0) for t in trainers}) == 1:
                log(f"training {', '.join(places[i].label for i in unfinished)} as one group")
                group = RunGroup(trainers, log=log, progress=progress, compile_step=config.compile_step)
                results = dict(zip(map(id, group.trainers), group.run()))  # the runs left in the group
                failures = dict(zip(map(id, group.failed), group.failures))
                for i, trainer in zip(unfinished, trainers):
                    outcome = results.get(id(trainer)) or failures[id(trainer)]
                    outcomes[i] = _report(places[i], outcome, log) if isinstance(outcome, RunResult) else outcome
                return [outcomes[i] for i in range(len(places))]
            obstacle = "the runs' checkpoints stand at different epochs or batches"
        if config.run_group == "together":
            log(f"training the runs one after another: {obstacle}")
    for i in unfinished:  # each trainer built just before it trains: the global seed is its own
        trainer = _trainer(places[i], data, device, log, progress, on_epoch)
        outcomes[i] = _report(places[i], trainer.run(), log)
    return [outcomes[i] for i in range(len(places))]


def _labelled(log: Callable[[str], None], label: str) -> Callable[[str], None]:
    """``log`` with each line prefixed by the run's name (the lines of a group's runs interleave)."""
    return lambda line: log(f"{label}: {line}")


def _trainer(place: Place, data: ImageData, device: torch.device, log: Callable[[str], None],
             progress: bool, on_epoch) -> Trainer:
    """The trainer of the run at ``place``, continued from its checkpoint when resuming."""
    place.folder.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(place.config, data, device, seed=place.seed, folder=place.folder, log=log, progress=progress,
                      on_epoch=on_epoch)
    checkpoint = place.folder / runs.CHECKPOINT
    if place.resume and checkpoint.is_file():
        trainer.load_state_dict(runs.read_torch(checkpoint), checkpoint)
        runs.save_json(place.folder / runs.HISTORY, trainer.history)  # the checkpoint's is the whole history
        if trainer.epoch < trainer.epochs:
            log(f"resuming {place.label} at epoch {trainer.epoch + 1} of {trainer.epochs}")
        else:
            log(f"resuming {place.label}: all {trainer.epochs} epochs are trained; the final evaluation is left")
    return trainer


def _report(place: Place, result: RunResult, log: Callable[[str], None]) -> RunResult:
    metrics = result.metrics
    line = f"{place.label}: test accuracy {metrics['test_accuracy']} (mean of {place.config.eval_passes} passes)"
    if metrics["original_reports"] != "test_accuracy":
        line += f"; the original printed the last epoch's single pass: {metrics['last_epoch_test_accuracy']}"
    log(line)
    return result


def _finished_result(run_dir: Path) -> RunResult:
    return RunResult(run_dir, _finished_history(run_dir), runs.read_json(run_dir / runs.METRICS))


def _finished_history(run_dir: Path) -> list[dict]:
    """``history.json`` of a finished run; a damaged one is written again from the checkpoint."""
    try:
        return runs.read_json(run_dir / runs.HISTORY)
    except RunFolderError:
        if not (run_dir / runs.CHECKPOINT).is_file():
            raise
    history = runs.read_torch(run_dir / runs.CHECKPOINT).get("history", [])
    runs.save_json(run_dir / runs.HISTORY, history)
    return history


def _resumable_config(folder: Path, config: RunConfig) -> RunConfig:
    """The saved configuration of ``folder``, after checking the new command means the same run."""
    if not (folder / runs.CONFIG).is_file():
        raise RunFolderError(f"cannot resume: {folder} holds no run ({runs.CONFIG} is missing)")
    saved = RunConfig.from_dict(runs.read_run_config(folder)["config"])
    differing = [k for k, v in config.to_dict().items()
                 if k not in RESUME_MAY_CHANGE and v != getattr(saved, k) and not (k == "seed" and v is None)]
    if differing:
        raise RunFolderError(f"cannot resume {folder} with other options ({', '.join(differing)}); "
                             f"use the command that started it, or --overwrite")
    return replace(saved, device=config.device, data_root=config.data_root, run_group=config.run_group,
                   compile_step=config.compile_step)
