"""Several training runs at once on the CPU: one process per core, one thread per run.

Small convolutional networks on 28x28 digits use two cores poorly from one process (batches of 128
give each thread little work). On 2 cores, ten runs of five architectures trained 1.18x faster in one
pool of two one-thread processes than one after another on both threads; a pool for two runs gains
little or loses, since starting a worker (a fresh interpreter importing torch) costs seconds
(``benchmarks/parallel_runs.py``). Every run trained this way uses exactly one thread, so its numbers
do not depend on how many cores the machine has, nor on which runs train beside it; a run trained
alone under ``single_thread`` gives the same bits.
"""
from __future__ import annotations

import contextlib
import multiprocessing
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Callable, Iterator

import torch

from ..config import RunConfig
from ..data import ImageData
from ..train import fit


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run the block with one intra-op thread, as a worker process trains; restores the count after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train_one(config: RunConfig, data: ImageData | None, progress: bool = False) -> None:
    """Train the run folder ``config.name`` (replacing an unfinished one) on the calling thread."""
    fit(config, overwrite=Path(config.name).exists(), data=data, log=lambda _: None, progress=progress)


_worker_datasets: dict[str, ImageData] = {}


def _start_worker(datasets: dict[str, ImageData]) -> None:
    global _worker_datasets
    torch.set_num_threads(1)
    _worker_datasets = datasets


def _train_in_worker(config: RunConfig) -> str:
    train_one(config, _worker_datasets.get(config.dataset))
    return config.name


def train_in_processes(configs: list[RunConfig], datasets: dict[str, ImageData], workers: int,
                       log: Callable[[str], None] = print) -> None:
    """Train ``configs`` in up to ``workers`` fresh processes with one thread each, in the order given.
    ``datasets`` (by name) are sent to each process once; a run whose ``config.dataset`` is not among
    them loads it. With one worker or one run, train here under ``single_thread`` instead: the same
    numbers, without starting a process.

    A failing run stops the queue: runs not yet started are dropped, running ones finish and are
    kept, and the first error is raised.
    """
    workers = max(1, min(workers, len(configs)))
    if workers == 1:
        with single_thread():
            for config in configs:
                train_one(config, datasets.get(config.dataset))
        return
    log(f"training {len(configs)} runs in {workers} processes, one thread each")
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_start_worker, initargs=(datasets,)) as pool:
        futures = [pool.submit(_train_in_worker, config) for config in configs]
        _, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        errors = [future.exception() for future in futures if future.done() and not future.cancelled()
                  and future.exception() is not None]
    if errors:
        raise errors[0]
