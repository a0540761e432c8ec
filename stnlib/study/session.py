"""``Study``: trains (or reuses) the runs a notebook needs and stores its figures and numbers.

A run is kept in ``<output>/runs/<settings key>/<dataset>/<variant>/seed<k>`` and a notebook's
numbers in ``<output>/results/<settings key>/<notebook>.json``. The key is the profile's name,
followed by any setting that changes what a run is (``quick-epochs=2``, ``StudySettings.key``), so
runs and numbers of different settings never overwrite or mix with each other. A notebook that asks
for a run another notebook already trained with the same configuration reuses it. The analyses of
the runs are functions in ``stnlib.study.analyses``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import warnings
from pathlib import Path

import torch

from .. import runs
from ..config import RunConfig
from ..data import Batch, ImageData, RandomRotation, augmentation_for, load_dataset
from ..data.registry import dataset_kind
from ..evaluation import Predictions, collect_predictions
from ..plotting import figure_problems, use_house_style
from .parallel import single_thread, train_one
from .runner import finished_with, train_missing, trains_in_processes
from .settings import PLACED_KINDS, StudySettings
from .variants import NO_ST, PROFILE_RECIPE, Recipe, Variant

FIGURE_DPI = 150


class Study:
    """The runs, numbers and figures of the notebooks under one ``StudySettings``.

    ``Study("quick", epochs=2)`` is ``Study(StudySettings("quick", epochs=2))``; ``log`` receives one
    line per run trained. ``profile`` is the profile with the settings applied.
    """

    def __init__(self, settings: StudySettings | str = "quick", *, log=print, **overrides):
        if isinstance(settings, str):
            settings = StudySettings(settings, **overrides)
        elif overrides:
            settings = dataclasses.replace(settings, **overrides)
        self.settings, self.log = settings, log
        self.profile = settings.resolved_profile()
        use_house_style()
        self._data: ImageData | None = None
        self._loaded: dict[str, runs.Run] = {}  # finished runs, by folder: notebooks ask for each several times

    @property
    def profile_key(self) -> str:
        return self.settings.key

    @property
    def rotation_range(self) -> float:
        """Degrees: training and test rotations are uniform in +-this."""
        return self.settings.degrees

    @property
    def output(self) -> Path:
        return Path(self.settings.output)

    @property
    def figures(self) -> Path:
        """Where ``save_figure`` writes: the settings' ``figures``, or ``<output>/figures``."""
        return Path(self.settings.figures) if self.settings.figures else self.output / "figures"

    # ----- data -----
    @property
    def data(self) -> ImageData:
        """The profile's dataset (CPU tensors), cut to its train/test limits."""
        if self._data is None:
            self._data = load_dataset(self.profile.dataset).head(self.profile.train_limit, self.profile.test_limit)
        return self._data

    def rotated_examples(self, count: int = 12, seed: int = 0) -> Batch:
        """The first ``count`` test digits, rotated at random in the study's range (+-90 degrees unless
        overridden), or shifted or zoomed on translate/scale data; true transformations kept."""
        index = torch.arange(min(count, len(self.data.test_images)))
        batch = Batch(self.data.test_images[index], self.data.test_labels[index], index)
        return self.test_transformation()(batch, torch.Generator().manual_seed(seed))

    def test_transformation(self):
        """What test images go through: a rotation in the study's range, or, on translate/scale data,
        the dataset's own placement (a random shift or zoom)."""
        if self.data.kind in PLACED_KINDS:
            return augmentation_for(self.config(NO_ST), self.data, train=False)
        return RandomRotation(self.rotation_range)

    def control_study(self, kind: str) -> "Study":
        """A ``Study`` with these settings on the profile's control dataset for ``kind``
        (``"translate"`` or ``"scale"``; notebook 07; ``StudySettings.control``)."""
        return Study(self.settings.control(kind), log=self.log)

    def analysis_images(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.profile.analysis_images
        return self.data.test_images[:n], self.data.test_labels[:n]

    # ----- runs -----
    def config(self, variant: Variant, seed: int = 0, **options) -> RunConfig:
        """The run of ``variant`` with ``seed`` under the profile; ``options`` override RunConfig
        fields (e.g. another recipe), and give the run its own folder."""
        p = self.profile
        if p.iterations is not None:
            length, drops = {"iterations": p.iterations}, list(p.lr_drop_iterations)
        else:
            batches = math.ceil(len(self.data.train_images) / p.batch_size) * p.epochs
            length, drops = {"epochs": p.epochs}, [int(f * batches) for f in p.lr_drops]
        folder = variant.folder_name + "".join(f"_{k}={v}" for k, v in sorted(options.items()))
        localization = self.settings.localization if self.settings.localization and variant.localization is not None \
            else variant.localization
        rotate = dataset_kind(p.dataset) not in PLACED_KINDS
        config = RunConfig(
            dataset=p.dataset, model=variant.model, localization=localization, rotation_range=self.rotation_range,
            stn_placement=list(variant.stn_placement), loop=variant.loop, deep=variant.deep,
            rotate=rotate,
            optimizer=p.optimizer, lr=p.lr, momentum=p.momentum, batch_size=p.batch_size, **length,
            switch_after_iterations=drops, seed=seed, device=p.device, precision=p.precision,
            loc_lr_multiplier=p.loc_lr_multiplier if variant.localization is not None else 1.0,
            localization_parameters=list(p.localization_parameters)
            if p.localization_parameters and localization == "FCN" else None,
            rotation_warmup=self._rotation_warmup(length) if rotate else [],
            eval_passes=p.eval_passes,
            name=str(self.output / "runs" / self.profile_key / p.dataset / folder / f"seed{seed}"))
        return dataclasses.replace(config, **options)

    def run(self, variant: Variant, seed: int = 0, **options) -> runs.Run:
        """The trained run of ``variant`` with ``seed`` (and RunConfig ``options`` over the profile's
        recipe): loaded when done before, else trained now."""
        config = self.config(variant, seed, **options)
        if config.name not in self._loaded:
            folder = Path(config.name)
            if not finished_with(folder, config):
                self.log(f"training {variant.label}, seed {seed} ({self.profile.name} profile)")
                with single_thread() if trains_in_processes(self.profile) else contextlib.nullcontext():
                    train_one(config, self.data, progress=self.settings.progress)
            self._loaded[config.name] = runs.load_run(folder)
        return self._loaded[config.name]

    def _rotation_warmup(self, length: dict) -> list[float]:
        """The profile's ``(START, SHARE)`` warm-up as RunConfig's ``[START, EPOCHS]`` for a run of
        ``length`` (``{"epochs": n}`` or ``{"iterations": n}``); START never beyond the study's range."""
        if not self.profile.rotation_warmup:
            return []
        start, share = self.profile.rotation_warmup
        epochs = length["epochs"] if "epochs" in length else length["iterations"] // math.ceil(
            len(self.data.train_images) / self.profile.batch_size)
        return [min(start, self.rotation_range), max(1, round(share * epochs))]

    def runs(self, variant: Variant, seeds: int | None = None, recipe: Recipe = PROFILE_RECIPE) -> list[runs.Run]:
        """``variant``'s runs, seeds 0 to ``seeds`` - 1 (default: the profile's), under ``recipe``."""
        options = self._recipe_options(variant, recipe)
        return [self.run(variant, seed, **options) for seed in range(seeds or self.profile.seeds)]

    def configs(self, variant: Variant, seeds: int | None = None, recipe: Recipe = PROFILE_RECIPE) -> list[RunConfig]:
        """The configurations of ``variant``'s runs, one per seed."""
        options = self._recipe_options(variant, recipe)
        return [self.config(variant, seed, **options) for seed in range(seeds or self.profile.seeds)]

    def _recipe_options(self, variant: Variant, recipe: Recipe) -> dict:
        """``recipe``'s options for ``variant``, less a copies' rate the profile gives them anyway (its
        localization multiplier), so that the same training is not done twice in two folders."""
        options = recipe.options(variant)
        if options.get("loc_copies_lr_multiplier") == self.profile.loc_lr_multiplier:
            del options["loc_copies_lr_multiplier"]
        return options

    def trained(self, variants, seeds: int | None = None, recipe: Recipe = PROFILE_RECIPE) -> dict[str, list[runs.Run]]:
        """Each of ``variants``' runs under ``recipe``, seeds 0 to ``seeds`` - 1 (default: the profile's), by
        the recipe's label (``STN-C0``); the missing ones trained first, all at once (see ``train``). What
        ``stnlib.study.analyses`` takes."""
        self.train([config for variant in variants for config in self.configs(variant, seeds, recipe)])
        return {recipe.label(variant): self.runs(variant, seeds, recipe) for variant in variants}

    def train(self, configs: list[RunConfig], datasets: dict[str, ImageData] | None = None) -> int:
        """Train those of ``configs`` not finished before, as the profile's runner says
        (``stnlib.study.runner.train_missing``). ``datasets``: the data by name (default: this study's).
        Returns how many runs it trained."""
        return train_missing(configs, datasets or {self.profile.dataset: self.data}, self.profile, self.log)

    def predictions(self, run: runs.Run, passes: int = 1, seed: int = 0) -> Predictions:
        """Predictions and thetas on the analysis images, rotated in the study's range."""
        images, labels = self.analysis_images()
        return collect_predictions(run.model, images, labels, self.test_transformation(), passes=passes, seed=seed)

    # ----- outputs -----
    def save_figure(self, figure, name: str) -> list[Path]:
        """Save ``figure`` as ``<figures>/<name>.png`` and ``.pdf``; warn (``figure check: ...``) about
        what ``plotting.figure_problems`` finds (an unlabelled axis, no title, an invisible line)."""
        for problem in figure_problems(figure):
            warnings.warn(f"figure check: {name}: {problem}", stacklevel=2)
        runs.ensure_folder(self.figures, "figures folder")
        if figure.get_layout_engine() is None:  # figures with a colour bar lay themselves out
            figure.tight_layout()
        paths = [self.figures / f"{name}.{ext}" for ext in ("png", "pdf")]
        for path in paths:  # no creation date in the PDF: the same figure gives the same file
            metadata = {"CreationDate": None} if path.suffix == ".pdf" else {}
            runs.atomic_write(path, lambda f, path=path, metadata=metadata: figure.savefig(
                f, format=path.suffix[1:], dpi=FIGURE_DPI, bbox_inches="tight", metadata=metadata))
        return paths

    @property
    def results_folder(self) -> Path:
        return self.output / "results" / self.profile_key

    def record(self, key: str, values: dict) -> Path:
        """Store a notebook's numbers as ``<output>/results/<profile key>/<key>.json`` (read by the
        claims table), with the profile key they were measured under."""
        runs.ensure_folder(self.results_folder, "results folder")
        path = self.results_folder / f"{key}.json"
        runs.save_json(path, {"profile": self.profile_key, "dataset": self.profile.dataset, **values})
        return path

    def results(self) -> dict[str, dict]:
        """Every notebook's recorded numbers under this profile key, by notebook."""
        folder = self.results_folder
        return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}

