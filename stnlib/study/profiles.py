"""The study's profiles: how much data, how long, how many seeds."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class Profile:
    name: str
    dataset: str  # registered dataset
    epochs: int  # per training run
    seeds: int  # runs per architecture in the comparisons
    optimizer: str = "adam"
    lr: float = 0.001
    momentum: float = 0.0
    lr_drops: tuple[float, ...] = ()  # fractions of training after which lr /= 10
    batch_size: int = 256
    device: str = "auto"
    eval_passes: int = 10  # rotated passes for the final test accuracy
    train_limit: int | None = None  # use only the first N training images
    test_limit: int | None = None  # and the first N test images
    analysis_images: int = 500  # test images for angle and feature analyses
    iteration_seeds: int = 1  # seeds per configuration in the iterations notebook
    runner: str = "local"  # "local": train in the notebook's process; "ray": through stnlib.sweep
    description: str = ""


PROFILES = {
    "smoke": Profile("smoke", "mnist5k", epochs=1, seeds=2, lr=0.003, batch_size=64, eval_passes=1,
                     train_limit=256, test_limit=128, analysis_images=48,
                     description="tiny: seconds per notebook; what the tests run"),
    # Adam at 0.003: with 16 batches an epoch, 0.001 leaves every model under-trained after 10 epochs.
    "quick": Profile("quick", "mnist5k", epochs=10, seeds=3, lr=0.003, eval_passes=10, analysis_images=500,
                     description="the embedded mnist5k on the CPU: the whole study in about 10 minutes"),
    "paper": Profile("paper", "mnist", epochs=50, seeds=5, optimizer="sgd", lr=0.01, momentum=0.9,
                     lr_drops=(0.6, 0.8), device="cuda", analysis_images=2000, iteration_seeds=3, runner="ray",
                     description="full MNIST on CUDA, SGD with momentum and two lr drops, 5 seeds, trained through Ray"),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}")
    return PROFILES[name]
