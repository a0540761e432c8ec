"""How fast an input ST learns to undo rotations under several training recipes.

Trains STN-C0 (CNN classifier) on rotated mnist5k under each recipe and seed and prints,
after every epoch, one JSON line: the recipe, seed, epoch, optimizer steps, images seen,
test accuracy and the orthogonal-fit slope and Pearson r of the angle the ST undoes
against the true angle, on the 1,000 held-out digits (one rotated pass, fixed seed).

    python benchmarks/st_recipes.py --recipe "x10:optimizer=adam,lr=0.001,loc_lr_multiplier=10" \\
        --recipe "x3:optimizer=adam,lr=0.001,loc_lr_multiplier=3" --seeds 0 1 2 --epochs 40

A recipe is ``name:option=value,...`` with any ``RunConfig`` option (``batch_size``,
``localization``, ``localization_parameters=32/32/32``, ``momentum``, ``rotation_warmup=30/4``, ...).
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from stnlib import RunConfig
from stnlib.data import load_dataset
from stnlib.device import pick_device
from stnlib.train import Trainer

BASE = dict(dataset="mnist5k", model="CNN", localization="FCN", stn_placement=[0], rotate=True,
            optimizer="adam", lr=0.001, batch_size=256)
LIST_OPTIONS = {"switch_after_iterations", "localization_parameters", "model_parameters", "stn_placement",
                "rotation_warmup"}


def parse_recipe(text: str) -> tuple[str, dict]:
    name, _, options = text.partition(":")
    values = {}
    for item in filter(None, options.split(",")):
        key, _, raw = item.partition("=")
        if key in LIST_OPTIONS:
            values[key] = [int(v) for v in raw.split("/")]
            continue
        for cast in (int, float):
            try:
                values[key] = cast(raw)
                break
            except ValueError:
                continue
        else:
            values[key] = {"true": True, "false": False}.get(raw, raw)
    return name, values


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", action="append", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="fp32")
    args = parser.parse_args()

    device = pick_device(args.device)
    data = load_dataset("mnist5k").to(device)
    for text in args.recipe:
        name, options = parse_recipe(text)
        for seed in args.seeds:
            config = RunConfig(**{**BASE, "epochs": args.epochs, **options, "seed": seed,
                                  "device": str(device), "precision": args.precision})
            trainer = Trainer(config, data, device, seed=seed, log=lambda _: None, progress=False)
            start = time.perf_counter()
            for epoch in range(1, trainer.epochs + 1):
                trainer.train_epoch()
                trainer.epoch, trainer.current = epoch, None
                score = trainer.test_epoch()
                print(json.dumps({"recipe": name, "seed": seed, "epoch": epoch, "steps": trainer.iteration,
                                  "images": epoch * len(data.train_images), "test_accuracy": score.accuracy,
                                  "slope": score.angle_slope, "r": score.angle_r,
                                  "seconds": round(time.perf_counter() - start, 2)}), flush=True)


if __name__ == "__main__":
    torch.set_float32_matmul_precision("highest")  # fp32 as on a CPU: no TF32 on a GPU
    torch.backends.cudnn.allow_tf32 = False
    main()
