"""The study's profiles: how much data, how long, how many seeds."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class Profile:
    name: str
    dataset: str  # registered dataset
    epochs: int | None  # per training run (None: ``iterations`` instead)
    seeds: int  # runs per architecture in every accuracy comparison
    optimizer: str = "adam"
    lr: float = 0.001
    momentum: float = 0.0
    loc_lr_multiplier: float = 1.0  # localization lr = lr * this
    localization_parameters: tuple[int, ...] | None = None  # FCN localization widths (None: its defaults)
    # (START, SHARE): training rotations grow from +-START degrees to the whole range over the first SHARE
    # of the epochs (RunConfig.rotation_warmup); (): the whole range from the start
    rotation_warmup: tuple[float, float] | tuple[()] = ()
    lr_drops: tuple[float, ...] = ()  # fractions of training after which lr /= 10
    batch_size: int = 256
    iterations: int | None = None  # optimizer steps per run, instead of epochs
    lr_drop_iterations: tuple[int, ...] = ()  # steps after which lr /= 10 (with ``iterations``)
    device: str = "auto"
    precision: str = "fp32"  # of the classifier's convolutions; theta and sampling are always fp32
    eval_passes: int = 10  # rotated passes for the final test accuracy
    train_limit: int | None = None  # use only the first N training images
    test_limit: int | None = None  # and the first N test images
    analysis_images: int = 500  # test images for angle and feature analyses
    iteration_seeds: int = 3  # seeds per configuration in the iterations notebook
    c5_seeds: int = 8  # notebook 05: seeds of C5's comparisons, whose first effect is under a point
    # "local": train in the notebook's process, one run after another; "processes": on the CPU, a
    # notebook's runs side by side, one process and one thread each (stnlib.study.parallel);
    # "ray": through stnlib.ray_sweep
    runner: str = "local"
    # On CUDA, the seeds of one variant train as one run group (stnlib.train.group) of up to this many;
    # on the CPU runs train alone, which is faster there (docs/speed.md).
    group_size: int = 5
    # Notebook 07, the theory's control: translated and scaled digits (dataset names), trained for
    # ``control_epochs`` (None: ``epochs``, or ``iterations`` where the profile counts those).
    control_datasets: tuple[str, str] = ("translate5k-28", "scale5k-28")
    control_epochs: int | None = None
    # Notebooks (two-digit numbers) that ``python -m stnlib.reproduce`` leaves out unless asked for
    # (``--only`` or ``--all``): context that no claim needs, outside the profile's time budget.
    optional_notebooks: tuple[str, ...] = ()
    description: str = ""


# The quick recipe is stnlib's own choice (benchmarks/st_recipes.py, over 100 recipes on 2-6 seeds; notebook 00
# shows the evidence): a slow classifier (Adam 3e-4), a wider FCN localization network (128/128/128) that learns
# 10x faster, and a warm-up of the training rotations from +-30 degrees to +-90 over the first quarter of the
# epochs make the input ST undo about 90 % of each rotation within 16 epochs of the 4,000 mnist5k digits (slope
# 0.88-0.93 on seeds 0-5, against 0.18-0.86 under the previous recipe: loc x40, 32 wide, no warm-up). A faster
# classifier (Adam 1e-3 or 3e-3) learns the rotated digits on its own first and leaves the ST near the identity;
# smaller batches do not help. Weight decay (1e-4) stopped the STs of STN-SL2 and STN-DL2 from learning
# (benchmarks/README.md).
QUICK_RECIPE = dict(optimizer="adam", lr=3e-4, loc_lr_multiplier=10.0, localization_parameters=(128, 128, 128),
                    batch_size=128, lr_drops=(0.75,), rotation_warmup=(30.0, 0.25))
# What notebook 00 compares it with: the recipe it replaced, as RunConfig options over the quick recipe.
PREVIOUS_QUICK_RECIPE = dict(loc_lr_multiplier=40.0, localization_parameters=None, rotation_warmup=[])

PROFILES = {
    "smoke": Profile("smoke", "mnist5k", epochs=1, seeds=2, **{**QUICK_RECIPE, "batch_size": 64},
                     eval_passes=1, iteration_seeds=2, c5_seeds=2, train_limit=192, test_limit=96, analysis_images=48,
                     runner="processes",  # as the quick profile: the tests run what make study runs
                     description="tiny: seconds per notebook; what the tests run"),
    # The controls of notebook 07 train for 8 epochs: their STs undo shifts and zooms well before then
    # (seed 0: STN-C0 slope 1.00, r 0.97 on shifts, 0.99 and 0.92 on zooms), and the budget needs it.
    "quick": Profile("quick", "mnist5k", epochs=16, seeds=3, **QUICK_RECIPE, eval_passes=10,
                     analysis_images=1000, control_epochs=8, runner="processes",
                     # Notebooks 05 (what decides C4 and C5: 27 more trainings) and 08 (the P4CNN beside the
                     # STs: three more trainings and invariance curves, about 4 minutes on 2 CPU cores) would take
                     # make study past 15 minutes.
                     optional_notebooks=("05", "08"),
                     description="the embedded mnist5k on the CPU in fp32: an input ST that learns, 3 seeds"),
    # The original code's long-schedule defaults (its epochs flag: 640 = 150000 * 256 / 60000; its
    # earlier version divides the lr by 10 after 50,000 and 100,000 iterations). The paper's own
    # per-experiment settings are not published with the code.
    "paper": Profile("paper", "mnist", epochs=None, seeds=5, optimizer="sgd", lr=0.01, momentum=0.0,
                     batch_size=256, iterations=150_000, lr_drop_iterations=(50_000, 100_000), device="cuda",
                     precision="auto", analysis_images=2000, c5_seeds=5, runner="ray", control_datasets=("translate", "scale"),
                     description="full MNIST on CUDA with the original code's defaults: SGD lr 0.01, batch 256, "
                                 "150,000 iterations, lr / 10 after 50,000 and 100,000; 5 seeds, through Ray"),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}")
    return PROFILES[name]
