"""Training speed with the CNN's second convolution in the Fourier domain (FourierConv2d) or direct (nn.Conv2d).

Alternates fresh interpreters, one path at a time: each builds a Trainer, trains a warm-up epoch and then
``--epochs`` timed epochs of mnist5k, and reports seconds per epoch. Two configurations: the flagship (CNN
localization, Adam 1e-3, batch 256) and the quick profile's STN-C0 (FCN localization, Adam 3e-4, the
localization 40x faster, batch 128). Prints every process's seconds, the medians and their ratio; only figures of
one run compare, since a shared host's speed drifts. To measure a laptop's AVX2 CPU on a newer one, pass
``--avx2`` (ATen, oneDNN and MKL capped at AVX2).
"""
from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import torch

from stnlib import RunConfig
from stnlib.data import load_dataset
from stnlib.device import cpu_model_name
from stnlib.models.fourier_conv import FourierConv2d
from stnlib.train import Trainer

import isa_stand_in

CONFIGS = {
    "flagship": dict(localization="CNN", optimizer="adam", lr=1e-3, batch_size=256),
    "quick STN-C0": dict(localization="FCN", optimizer="adam", lr=3e-4, loc_lr_multiplier=40.0, batch_size=128),
}


def seconds_per_epoch(config_name: str, fourier: bool, epochs: int) -> float:
    if not fourier:
        FourierConv2d._fourier_applies = lambda self, x: False  # this process only: nn.Conv2d's path
    data = load_dataset("mnist5k")
    config = RunConfig(dataset="mnist5k", model="CNN", stn_placement=[0], rotate=True, device="cpu",
                       precision="fp32", epochs=epochs + 1, **CONFIGS[config_name])
    trainer = Trainer(config, data, torch.device("cpu"), seed=0, log=lambda _: None, progress=False)
    for epoch in range(epochs + 1):
        if epoch == 1:
            start = time.perf_counter()
        trainer.train_epoch()
        trainer.epoch, trainer.current = trainer.epoch + 1, None
    return (time.perf_counter() - start) / epochs


def in_fresh_process(function, *args):
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=4, help="processes per path and configuration")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per process, after one warm-up epoch")
    isa_stand_in.add_flag(parser)
    args = parser.parse_args()
    isa_stand_in.rerun_as_avx2_if_asked(args)
    print(f"{cpu_model_name()}; fp32; torch {torch.__version__}, {torch.get_num_threads()} threads; mnist5k, "
          f"{args.repeats} processes per path, {args.epochs} timed epochs each; {isa_stand_in.header()}")
    for name in CONFIGS:
        seconds = {"direct": [], "fourier": []}
        for _ in range(args.repeats):
            for path in seconds:
                seconds[path].append(in_fresh_process(seconds_per_epoch, name, path == "fourier", args.epochs))
        medians = {path: statistics.median(values) for path, values in seconds.items()}
        listed = "; ".join(f"{path} " + " ".join(f"{s:.2f}" for s in values) for path, values in seconds.items())
        print(f"{name}: seconds per 4,000-image epoch: {listed}; medians {medians['direct']:.2f} against "
              f"{medians['fourier']:.2f} s: Fourier-domain {medians['direct'] / medians['fourier']:.2f}x")


if __name__ == "__main__":
    main()
