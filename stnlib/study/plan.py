"""The runs each notebook trains, so that ``python -m stnlib.reproduce`` can train all of them at
once, before the notebooks run: under the ``processes`` runner side by side on the CPU, under ``ray``
as one sweep. A run the plan misses is still trained by the notebook that asks for it, alone."""
from __future__ import annotations

from ..config import RunConfig
from ..data import ImageData
from .profiles import PREVIOUS_QUICK_RECIPE
from .session import Study
from .settings import PLACED_KINDS
from .decisive import C5_RECIPE, C5_VARIANTS, DECISIVE_NOTEBOOK, TREND_RECIPES, TREND_VARIANTS
from .variants import (C0, CONTROL_VARIANTS, EQUIVARIANT_VARIANTS, ITERATION_VARIANTS, LOCALIZATION_DEPTH_VARIANTS,
                       NO_ST, PLACEMENT_VARIANTS)

# Notebook -> the architectures it trains on the profile's dataset, every seed.
NOTEBOOK_VARIANTS = {"00_quickstart": (C0,), "01_feature_alignment": (NO_ST,), "02_st_placement": PLACEMENT_VARIANTS,
                     "03_localization_depth": LOCALIZATION_DEPTH_VARIANTS, "08_equivariant_baseline": EQUIVARIANT_VARIANTS}
RECIPES_NOTEBOOK = "00_quickstart"  # also the recipe the quick recipe replaced, seed 0
ITERATIONS_NOTEBOOK = "04_iterations"  # ITERATION_VARIANTS, with the profile's iteration_seeds
CONTROL_NOTEBOOK = "07_translation_scale_control"  # CONTROL_VARIANTS on the translated and the scaled digits
# DECISIVE_NOTEBOOK: TREND_VARIANTS under each of TREND_RECIPES, and C5_VARIANTS with the profile's c5_seeds
PLANNED_NOTEBOOKS = (*NOTEBOOK_VARIANTS, ITERATIONS_NOTEBOOK, CONTROL_NOTEBOOK, DECISIVE_NOTEBOOK)
CLAIMS_NOTEBOOK = "09_claims"  # trains nothing; reads every other notebook's numbers, so runs after them


def planned_runs(study: Study, notebooks: list[str]) -> tuple[list[RunConfig], dict[str, ImageData]]:
    """The configurations of every run the ``notebooks`` (names without ``.ipynb``; others plan nothing)
    train under ``study``'s profile, each once, and the datasets they train on, by name."""
    configs = []
    datasets = {study.profile.dataset: study.data}
    for notebook in notebooks:
        for variant in NOTEBOOK_VARIANTS.get(notebook, ()):
            configs += study.configs(variant)
        if notebook == RECIPES_NOTEBOOK:
            configs.append(study.config(C0, seed=0, **PREVIOUS_QUICK_RECIPE))
        if notebook == ITERATIONS_NOTEBOOK:
            configs += [c for v in ITERATION_VARIANTS for c in study.configs(v, study.profile.iteration_seeds)]
        if notebook == DECISIVE_NOTEBOOK:
            configs += [c for r in TREND_RECIPES for v in TREND_VARIANTS for c in study.configs(v, recipe=r)]
            configs += [c for v in C5_VARIANTS for c in study.configs(v, study.profile.c5_seeds, C5_RECIPE)]
        if notebook == CONTROL_NOTEBOOK:
            for kind in PLACED_KINDS:
                control = study.control_study(kind)
                datasets[control.profile.dataset] = control.data
                configs += [c for v in CONTROL_VARIANTS for c in control.configs(v)]
    unique = {config.name: config for config in configs}
    return sorted(unique.values(), key=rough_cost, reverse=True), datasets


def rough_cost(config: RunConfig) -> tuple[int, int]:
    """For ordering, heaviest first, so that the last runs to finish beside each other are short ones:
    (epochs or iterations, 1 for a classifier run twice per step (STN-SLk, STN-DLk) or a group CNN)."""
    return config.epochs or config.iterations or 0, int(config.loop or config.deep or config.model != "CNN")
