"""Seconds per training epoch of 60,000 rotated MNIST-sized digits, STN-C0, on CUDA.

The mnist5k digits are tiled to 60,000 images so that the benchmark needs no
download; the work per epoch equals full MNIST's. The data lives on the GPU and the
training loop reads the loss back to the host every ``stnlib.train.READ_BACK_STEPS``
steps, so the GPU never waits for the host within an epoch. Prints the median epoch
time over ``--epochs`` epochs after one warm-up epoch, and images/s.

    python benchmarks/gpu_epoch.py                 # CUDA, fp32 (--precision auto)
    python benchmarks/gpu_epoch.py --precision bf16
    python benchmarks/gpu_epoch.py --device cpu --images 4000 --epochs 2
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from stnlib import RunConfig
from stnlib.data import load_dataset
from stnlib.device import pick_device
from stnlib.train import Trainer


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--images", type=int, default=60_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()

    device = pick_device(args.device)
    data = load_dataset("mnist5k")
    repeat = -(-args.images // len(data.train_images))
    data = dataclasses.replace(data, train_images=data.train_images.repeat(repeat, 1, 1, 1)[:args.images],
                               train_labels=data.train_labels.repeat(repeat)[:args.images]).to(device)
    config = RunConfig(dataset="mnist5k", model="CNN", localization="CNN", stn_placement=[0], rotate=True,
                       optimizer="adam", lr=0.001, batch_size=args.batch_size, epochs=args.epochs + 1, seed=0,
                       device=args.device, precision=args.precision)
    trainer = Trainer(config, data, device, seed=0, log=lambda _: None, progress=False)
    times = []
    for epoch in range(args.epochs + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        trainer.train_epoch()
        if device.type == "cuda":
            torch.cuda.synchronize()
        trainer.epoch, trainer.current = trainer.epoch + 1, None
        if epoch:  # the first epoch warms up kernels and allocators
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{name}, {trainer.precision}: {seconds:.2f} s per epoch of {args.images:,} images "
          f"({args.images / seconds:,.0f} images/s), batch {args.batch_size}")


if __name__ == "__main__":
    main()
