"""How the study trains the runs it is missing: side by side on the CPU, as run groups on CUDA, or
through Ray, as the profile's ``runner`` says; and whether a run folder already holds a run."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch

from .. import runs
from ..config import RunConfig
from ..data import ImageData
from ..device import pick_device
from ..errors import TrainingDiverged
from ..train import fit_together, seed_groups
from .parallel import train_in_processes
from .profiles import Profile

COMPARED_OPTIONS_IGNORED = {"name", "device", "data_root"}


def finished_with(folder: Path, config: RunConfig) -> bool:
    """Whether ``folder`` holds a finished run of ``config`` (its name, device and data root aside)."""
    needed = (runs.METRICS, runs.CONFIG) if config.pretrain else (runs.METRICS, runs.CONFIG, runs.CORRECT)
    if not all((folder / name).is_file() for name in needed):
        return False
    try:  # both as JSON holds them, the saved one read as a RunConfig (older folders wrote no ST otherwise)
        saved = json.loads(json.dumps(RunConfig.from_dict(runs.read_run_config(folder)["config"]).to_dict()))
    except runs.RunFolderError:
        return False
    wanted = json.loads(json.dumps(config.to_dict()))
    return all(saved.get(k) == v for k, v in wanted.items() if k not in COMPARED_OPTIONS_IGNORED)


def trains_in_processes(profile: Profile) -> bool:
    """Whether runs train one thread each (the ``processes`` runner, on the CPU)."""
    return profile.runner == "processes" and pick_device(profile.device).type == "cpu"


def train_missing(configs: list[RunConfig], datasets: dict[str, ImageData], profile: Profile,
                  log: Callable[[str], None] = print) -> int:
    """Train those of ``configs`` not finished before, as ``profile.runner`` says: ``processes`` trains
    them side by side on the CPU, one thread each (``stnlib.study.parallel``); on CUDA the seeds of each
    variant train as run groups of up to ``profile.group_size``, or with ``ray`` as a sweep, one Ray task
    a group; otherwise (``local`` on the CPU) nothing is trained here and each run trains when asked for.
    ``datasets``: the data by name. Returns how many runs it trained."""
    missing = [c for c in configs if not finished_with(Path(c.name), c)]
    if not missing:
        return 0
    if trains_in_processes(profile):
        train_in_processes(missing, datasets, workers=torch.get_num_threads(), log=log)
        return len(missing)
    cuda = pick_device(profile.device).type == "cuda"
    if cuda and profile.runner != "ray":
        return train_in_groups(missing, datasets, profile.group_size, log)
    if profile.runner != "ray":
        return 0
    from ..ray_sweep import Point, run_sweep

    log(f"training {len(missing)} runs through Ray")
    outcome = run_sweep([Point({}, c) for c in missing], gpus_per_run=1 if cuda else 0, log=log,
                        group_size=profile.group_size if cuda else 1)
    failed = [p for p in outcome if p.status == "failed"]
    if failed:
        raise RuntimeError(f"{len(failed)} run(s) failed, e.g. {failed[0].folder}: {failed[0].error}")
    return len(missing)


def train_in_groups(configs: list[RunConfig], datasets: dict[str, ImageData], group_size: int,
                     log: Callable[[str], None]) -> int:
    """The seeds of each variant as run groups of up to ``group_size`` (``fit_together``)."""
    groups = seed_groups(configs, group_size)
    log(f"training {len(configs)} runs in {len(groups)} run groups")
    failed = [o for group in groups for o in fit_together(group, datasets.get(group[0].dataset), log=lambda _: None)
              if isinstance(o, TrainingDiverged)]
    if failed:
        raise failed[0]
    return len(configs)
