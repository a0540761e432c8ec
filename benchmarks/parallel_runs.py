"""Three ways to train a notebook's runs on a small CPU: one after another with every thread, side by
side in one-thread processes (the quick profile's ``processes`` runner, ``stnlib.study.parallel``), or as
one run group with every thread (``stnlib.train.group``, what ``--run-group auto`` does on CUDA).

Per architecture, trains the same runs (the quick recipe, seeds 0..N-1, N = threads) each way, back to
back in fresh run folders, and prints the wall time of each and their ratios to one after another; start-up of the worker processes
(a fresh interpreter importing torch, and the data sent to it) is included in the side-by-side time,
once per architecture, as when a notebook runs by hand. Then all those runs once more in a single
pool, heaviest first, as ``python -m stnlib.reproduce`` trains them.

    python benchmarks/parallel_runs.py --epochs 8
"""
from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

import torch

from stnlib.device import cpu_model_name
from stnlib.study import C0, C1, DL2, NO_ST, SL2, Study
from stnlib.study.parallel import train_in_processes, train_one
from stnlib.study.plan import rough_cost
from stnlib.train import fit_together

import isa_stand_in

VARIANTS = {"no-st": NO_ST, "c0": C0, "c1": C1, "sl2": SL2, "dl2": DL2}


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    isa_stand_in.add_flag(parser)
    args = parser.parse_args()
    isa_stand_in.rerun_as_avx2_if_asked(args)
    threads = torch.get_num_threads()
    print(f"{cpu_model_name()}; {threads} threads; fp32; torch {torch.__version__}; quick recipe, "
          f"{args.epochs} epochs of 4,000 mnist5k digits per run, {threads} runs per architecture; "
          f"{isa_stand_in.header()}")
    with tempfile.TemporaryDirectory() as folder:
        studies = {way: Study("quick", epochs=args.epochs, output=f"{folder}/{way}", log=lambda _: None)
                   for way in ("alone", "together", "group", "pool")}
        data = studies["alone"].data
        configs = {way: [c for name in args.variants for c in study.configs(VARIANTS[name], seeds=threads)]
                   for way, study in studies.items()}
        configs["group"] = [dataclasses.replace(c, run_group="together") for c in configs["group"]]
        print("| architecture | one after another, all threads | side by side, one thread each | ratio "
              "| one run group, all threads | ratio |")
        print("|---|---|---|---|---|---|")
        alone_total = 0.0
        for name in args.variants:  # the same runs both ways, one architecture at a time
            label = VARIANTS[name].label
            mine = {way: [c for c in configs[way] if f"/{VARIANTS[name].folder_name}/" in c.name] for way in configs}
            alone = timed(lambda: [train_one(config, data) for config in mine["alone"]])
            together = timed(lambda: train_in_processes(mine["together"], {studies["together"].profile.dataset: data},
                                                        workers=threads, log=lambda _: None))
            group = timed(lambda: fit_together(mine["group"], data, log=lambda _: None))
            alone_total += alone
            print(f"| {label} | {alone:.1f} s | {together:.1f} s | {alone / together:.2f}× | {group:.1f} s "
                  f"| {alone / group:.2f}× |", flush=True)
        heaviest_first = sorted(configs["pool"], key=rough_cost, reverse=True)
        pool = timed(lambda: train_in_processes(heaviest_first, {studies["pool"].profile.dataset: data},
                                                workers=threads, log=lambda _: None))
        print(f"| all of them, one process pool (as make study) | {alone_total:.1f} s | {pool:.1f} s | "
              f"{alone_total / pool:.2f}× | | |")


if __name__ == "__main__":
    main()
