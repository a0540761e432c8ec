"""``Study``: trains (or reuses) the runs a notebook needs and stores its figures and numbers.

A run is kept in ``<output>/runs/<profile key>/<dataset>/<variant>/seed<k>`` and a notebook's
numbers in ``<output>/results/<profile key>/<notebook>.json``. The profile key is the profile's
name, followed by any override of its dataset or epochs (``quick-epochs=2``), so runs and numbers
of different settings never overwrite or mix with each other. A notebook that asks for a run another notebook already
trained with the same configuration reuses it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import statistics
import warnings
from pathlib import Path

import torch

from .. import runs
from ..config import RunConfig
from ..data import Batch, ImageData, RandomRotation, augmentation_for, load_dataset
from ..data.registry import dataset_kind
from ..errors import ConfigError, TrainingDiverged
from ..evaluation import (PairedComparison, Predictions, collect_predictions, orthogonal_fit, paired_comparison,
                          predicted_angles)
from ..plotting import figure_problems, use_house_style
from ..device import pick_device
from ..train import fit_together, seed_groups
from .parallel import single_thread, train_in_processes, train_one
from .profiles import get_profile
from .variants import NO_ST, PROFILE_RECIPE, Recipe, Variant

FIGURE_DPI = 150
COMPARED_OPTIONS_IGNORED = {"name", "device", "data_root"}


PLACED_KINDS = ("translate", "scale")  # datasets whose transformation is a placement, not a rotation

# Overrides that change what a run is, and so key its folders (seeds, device and places do not).
RUN_CHANGING_OVERRIDES = ("dataset", "epochs", "localization", "loc_lr_multiplier", "rotation_range")


def check_overrides(epochs=None, seeds=None, loc_lr_multiplier=None, rotation_range=None) -> None:
    """A ``ConfigError`` for a profile override (a notebook's papermill parameter) that no run could
    use: counts must be whole numbers >= 1, the multiplier a number > 0, the range within (0, 180]."""
    for name, value in (("epochs", epochs), ("seeds", seeds)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
    for name, value, top in (("loc_lr_multiplier", loc_lr_multiplier, math.inf),
                             ("rotation_range", rotation_range, 180)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not 0 < value <= top):
            raise ConfigError(f"{name} must be a number above 0{f' and at most {top}' if top < math.inf else ''}, "
                              f"got {value!r}")


class Study:
    """The runs, numbers and figures of the notebooks under one profile.

    Overrides of the profile: ``dataset``, ``epochs``, ``seeds``, ``device``; and the scientific
    knobs ``localization`` (the localization network of every ST variant, e.g. ``"CNN"``),
    ``loc_lr_multiplier`` and ``rotation_range`` (degrees, training and test rotations). ``None``
    keeps the profile's. ``progress`` shows a progress bar for every training run (tqdm.auto: a
    widget in JupyterLab).
    """

    def __init__(self, profile: str = "quick", dataset: str | None = None, epochs: int | None = None,
                 seeds: int | None = None, device: str | None = None, output: str = "results",
                 figures: str | None = None, log=print, localization: str | None = None,
                 loc_lr_multiplier: float | None = None, rotation_range: float | None = None,
                 progress: bool = False):
        check_overrides(epochs=epochs, seeds=seeds, loc_lr_multiplier=loc_lr_multiplier,
                        rotation_range=rotation_range)
        overrides = {k: v for k, v in dict(dataset=dataset, epochs=epochs, seeds=seeds, device=device,
                                           loc_lr_multiplier=loc_lr_multiplier).items() if v is not None}
        if epochs is not None:  # epochs replace a profile's iteration count and its lr drops
            overrides.update(iterations=None, lr_drop_iterations=())
        self.profile = dataclasses.replace(get_profile(profile), **overrides)
        self.localization, self.rotation_range = localization, rotation_range if rotation_range is not None else 90.0
        changed = {**overrides, "localization": localization, "rotation_range": rotation_range}
        self.profile_key = "-".join([profile, *(f"{k}={changed[k]}" for k in RUN_CHANGING_OVERRIDES
                                                if changed.get(k) is not None)])
        self.output, self.log, self.progress = Path(output), log, progress
        self.figures = Path(figures) if figures else self.output / "figures"  # the committed figures/ only when asked
        self._settings = dict(profile=profile, seeds=seeds, device=device, output=output, figures=figures, log=log,
                              localization=localization, loc_lr_multiplier=loc_lr_multiplier, progress=progress)
        self._epochs_override = epochs
        use_house_style()
        self._data: ImageData | None = None
        self._loaded: dict[str, runs.Run] = {}  # finished runs, by folder: notebooks ask for each several times

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
        """A ``Study`` with this one's settings on the profile's control dataset for ``kind``
        (``"translate"`` or ``"scale"``; notebook 07), trained for the profile's ``control_epochs``
        (or this study's ``epochs`` override)."""
        if kind not in PLACED_KINDS:
            raise ValueError(f"kind must be one of {PLACED_KINDS}, not {kind!r}")
        dataset = self.profile.control_datasets[PLACED_KINDS.index(kind)]
        epochs = self._epochs_override if self._epochs_override is not None else self.profile.control_epochs
        return Study(**self._settings, dataset=dataset, epochs=epochs)

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
        localization = self.localization if self.localization and variant.localization is not None \
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
            if not self._finished_with(folder, config):
                self.log(f"training {variant.label}, seed {seed} ({self.profile.name} profile)")
                with single_thread() if self._in_processes else contextlib.nullcontext():
                    train_one(config, self.data, progress=self.progress)
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

    def train_all(self, variants, seeds: int | None = None, recipe: Recipe = PROFILE_RECIPE) -> None:
        """Train every missing run of ``variants`` x seeds at once (see ``train``)."""
        self.train([config for variant in variants for config in self.configs(variant, seeds, recipe)])

    def train(self, configs: list[RunConfig], datasets: dict[str, ImageData] | None = None) -> int:
        """Train those of ``configs`` not finished before, as the profile's runner says: ``processes``
        trains them side by side on the CPU, one thread each (``stnlib.study.parallel``); ``ray``
        as a sweep, one Ray task a run (one GPU each when there are GPUs); ``local`` leaves them to
        ``run``, one after the other. ``datasets``: the data by name (default: this study's).
        Returns how many runs it trained."""
        missing = [c for c in configs if not self._finished_with(Path(c.name), c)]
        datasets = datasets or {self.profile.dataset: self.data}
        if missing and self._in_processes:
            train_in_processes(missing, datasets, workers=torch.get_num_threads(), log=self.log)
            return len(missing)
        cuda = pick_device(self.profile.device).type == "cuda"
        if missing and cuda and self.profile.runner != "ray":
            return self._train_in_groups(missing, datasets)
        if not missing or self.profile.runner != "ray":
            return 0
        from ..ray_sweep import Point, run_sweep

        self.log(f"training {len(missing)} runs through Ray")
        outcome = run_sweep([Point({}, c) for c in missing], gpus_per_run=1 if cuda else 0, log=self.log,
                            group_size=self.profile.group_size if cuda else 1)
        failed = [p for p in outcome if p.status == "failed"]
        if failed:
            raise RuntimeError(f"{len(failed)} run(s) failed, e.g. {failed[0].folder}: {failed[0].error}")
        return len(missing)

    def _train_in_groups(self, configs: list[RunConfig], datasets: dict[str, ImageData]) -> int:
        """On CUDA: the seeds of each variant as run groups of up to the profile's ``group_size``."""
        groups = seed_groups(configs, self.profile.group_size)
        self.log(f"training {len(configs)} runs in {len(groups)} run groups")
        failed = [o for group in groups for o in fit_together(group, datasets.get(group[0].dataset), log=lambda _: None)
                  if isinstance(o, TrainingDiverged)]
        if failed:
            raise failed[0]
        return len(configs)

    @property
    def _in_processes(self) -> bool:
        """Whether runs train one thread each (the ``processes`` runner, on the CPU)."""
        return self.profile.runner == "processes" and pick_device(self.profile.device).type == "cpu"

    @staticmethod
    def _finished_with(folder: Path, config: RunConfig) -> bool:
        needed = (runs.METRICS, runs.CONFIG) if config.pretrain else (runs.METRICS, runs.CONFIG, runs.CORRECT)
        if not all((folder / name).is_file() for name in needed):
            return False
        try:  # both as JSON holds them, the saved one read as a RunConfig (older folders wrote no ST otherwise)
            saved = json.loads(json.dumps(RunConfig.from_dict(runs.read_run_config(folder)["config"]).to_dict()))
        except runs.RunFolderError:
            return False
        wanted = json.loads(json.dumps(config.to_dict()))
        return all(saved.get(k) == v for k, v in wanted.items() if k not in COMPARED_OPTIONS_IGNORED)

    def accuracy_table(self, variants, seeds: int | None = None, recipe: Recipe = PROFILE_RECIPE) -> list[dict]:
        """One row per variant: test accuracy of each seed, their mean and standard deviation."""
        rows = []
        self.train_all(variants, seeds, recipe)
        for variant in variants:
            trained = self.runs(variant, seeds, recipe)
            accuracies = [r.metrics["test_accuracy"] for r in trained]
            rows.append({"variant": recipe.label(variant), "architecture": trained[0].architecture,
                         "accuracies": accuracies, "mean": statistics.mean(accuracies),
                         "std": statistics.stdev(accuracies) if len(accuracies) > 1 else float("nan"),
                         "final_train_accuracy": statistics.mean(r.metrics["final_train_accuracy"] for r in trained)})
        return rows

    def compare(self, a: Variant, b: Variant, seeds: int | None = None,
                recipe: Recipe = PROFILE_RECIPE) -> PairedComparison:
        """``a`` against ``b`` on the same rotated test images, seed by seed (see ``paired_comparison``)."""
        correct = {v: self.test_correct(v, seeds, recipe) for v in (a, b)}
        return paired_comparison(correct[a], correct[b], names=(recipe.label(a), recipe.label(b)))

    def test_correct(self, variant: Variant, seeds: int | None = None,
                     recipe: Recipe = PROFILE_RECIPE) -> list[torch.Tensor]:
        """Per seed, which rotated test images ``variant`` got right: ``(passes, N)`` bool."""
        return [r.test_correct for r in self.runs(variant, seeds, recipe)]

    def angle_fits(self, variant: Variant, seeds: int | None = None, recipe: Recipe = PROFILE_RECIPE) -> list[dict]:
        """Per seed: the undone angle of the last ST against the true angle on the analysis images
        (one rotated pass): orthogonal-fit ``slope``, ``correlation`` (r), ``mean_abs_error`` and
        ``original_std``, the original code's statistic, the std of true minus undone angle in
        degrees (52 for an ST that undoes nothing under +-90 degree rotations)."""
        fits = []
        for run in self.runs(variant, seeds, recipe):
            predictions = self.predictions(run)
            undone = predicted_angles(predictions)
            fit = orthogonal_fit(predictions.true_angle, undone).as_dict()
            fits.append({**fit, "original_std": (predictions.true_angle - undone).std().item()})
        return fits

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


def accuracy_markdown(rows: list[dict]) -> str:
    """``Study.accuracy_table`` rows as a markdown table."""
    import pandas as pd

    table = pd.DataFrame({
        "variant": [r["variant"] for r in rows],
        "architecture": [r["architecture"] for r in rows],
        "test accuracy (mean ± std over seeds)": [
            f"{r['mean']:.4f}" + ("" if math.isnan(r["std"]) else f" ± {r['std']:.4f}") for r in rows],
        "seeds": [str(len(r["accuracies"])) for r in rows],
        "train accuracy": [f"{r['final_train_accuracy']:.4f}" for r in rows],
    })
    return table.to_markdown(index=False, disable_numparse=True)
