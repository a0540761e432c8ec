"""Two ways to train a notebook's runs on a small CPU: one after another with every thread, or side by
side in one-thread processes (the quick profile's ``processes`` runner, ``stnlib.study.parallel``).

Per architecture, trains the same runs (the quick recipe, seeds 0..N-1, N = threads) both ways, in
fresh run folders, and prints the wall time of each and their ratio. Start-up of the worker processes
is included in the side-by-side time.

    python benchmarks/parallel_runs.py --epochs 4
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch

from stnlib.device import cpu_model_name
from stnlib.study import C0, C1, DL2, NO_ST, SL2, Study
from stnlib.study.parallel import train_in_processes, train_one

VARIANTS = {"no-st": NO_ST, "c0": C0, "c1": C1, "sl2": SL2, "dl2": DL2}


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    threads = torch.get_num_threads()
    print(f"{cpu_model_name()}; {threads} threads; fp32; torch {torch.__version__}; quick recipe, "
          f"{args.epochs} epochs of 4,000 mnist5k digits per run, {threads} runs per architecture")
    print("| architecture | one after another, all threads | side by side, one thread each | ratio |")
    print("|---|---|---|---|")
    for name in args.variants:
        with tempfile.TemporaryDirectory() as folder:
            studies = [Study("quick", epochs=args.epochs, output=f"{folder}/{way}", log=lambda _: None)
                       for way in ("sequential", "parallel")]
            data = studies[0].data
            configs = [study.configs(VARIANTS[name], seeds=threads) for study in studies]
            sequential = timed(lambda: [train_one(config, data) for config in configs[0]])
            parallel = timed(lambda: train_in_processes(configs[1], {studies[1].profile.dataset: data}, workers=threads,
                                                        log=lambda _: None))
        print(f"| {VARIANTS[name].label} | {sequential:.1f} s | {parallel:.1f} s | {sequential / parallel:.2f}× |",
              flush=True)


if __name__ == "__main__":
    main()
