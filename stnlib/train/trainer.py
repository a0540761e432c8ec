"""One run's training: ``Trainer`` owns a run's model, optimizer, scheduler and random state, trains
epoch by epoch, and checkpoints after every epoch (and at the next batch boundary when interrupted).
Data lives on the training device and every transformation is applied to whole batches there.
"""
from __future__ import annotations

import contextlib
import math
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from .. import runs
from ..config import RunConfig
from ..data import Batch, BatchLoader, ImageData, augmentation_for, default_data_root
from ..device import autocast, keep_freed_memory_for_reuse, to_device
from ..errors import ConfigError, RunFolderError, TrainingDiverged
from ..evaluation import Score, evaluate, test_correctness
from ..losses import classification_loss
from ..losses import correct as count_correct
from ..models import STNetwork, build_model
from ..moments import canonicalizing_angle, moment_probability, pretrain_target
from ..precision import choose_precision

READ_BACK_STEPS = 50  # on CUDA: optimizer steps between two host reads of the loss


class Interrupted(Exception):
    """Training stopped on SIGINT/SIGTERM after saving a checkpoint."""


@dataclass
class RunResult:
    folder: Path
    history: list[dict]
    metrics: dict


# ----- set-up helpers ----------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def build_optimizer(model: STNetwork, config: RunConfig) -> torch.optim.Optimizer:
    """Parameter groups with the original's learning-rate multipliers.

    ``classifier``: lr; ``pre_st`` (layers before an ST): lr * pre_stn_multiplier;
    ``localization``: lr * loc_lr_multiplier (lr with --hook-llr, which scales
    the gradient instead); with --loc-copies-lr-multiplier, STN-DLk's copies of classifier blocks
    form a fourth group, ``localization_copies``, at lr * that. ``--onlyloc`` trains the
    localization groups alone.
    """
    groups = model.parameter_groups()
    multipliers = {"classifier": 1.0, "pre_st": config.pre_stn_multiplier,
                   "localization": 1.0 if config.hook_llr else config.loc_lr_multiplier}
    localization = ["localization"]
    if config.loc_copies_lr_multiplier is not None:
        copies = {id(p) for p in model.localization_copies_parameters()}
        groups["localization_copies"] = [p for p in groups["localization"] if id(p) in copies]
        groups["localization"] = [p for p in groups["localization"] if id(p) not in copies]
        multipliers["localization_copies"] = config.loc_copies_lr_multiplier
        localization.append("localization_copies")
    names = localization if config.onlyloc else ["classifier", "pre_st", *localization]
    if config.onlyloc:
        for name in ("classifier", "pre_st"):
            for p in groups[name]:
                p.requires_grad_(False)
    param_groups = [{"params": groups[n], "lr": config.lr * multipliers[n], "name": n} for n in names if groups[n]]
    if not param_groups:
        raise ConfigError("nothing to train: --onlyloc needs an ST")
    if config.optimizer == "adam":
        return torch.optim.Adam(param_groups, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(param_groups, lr=config.lr, momentum=config.momentum,
                           nesterov=config.optimizer == "nesterov", weight_decay=config.weight_decay)


def original_reported_accuracy(dataset: str) -> str:
    """Which metric the original code printed as a run's test accuracy: the mean of 10 rotated passes
    (``test_accuracy``) for MNIST, translated and scaled MNIST; the last epoch's single test pass
    (``last_epoch_test_accuracy``) for every other dataset."""
    mnist_family = dataset.removesuffix("5k") in ("mnist", "translate", "scale")
    return "test_accuracy" if mnist_family else "last_epoch_test_accuracy"


def build_scheduler(optimizer: torch.optim.Optimizer, config: RunConfig):
    """The lr schedule of ``--switch-after-iterations``, stepped once per batch, as in the original:
    one value N divides the lr by ``--divide-lr-by`` every N iterations; several values divide it
    once at each."""
    gamma = 1.0 / config.divide_lr_by
    if len(config.switch_after_iterations) == 1:
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.switch_after_iterations[0], gamma=gamma)
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=config.switch_after_iterations, gamma=gamma)


def moment_alignment_error(model: STNetwork, images: torch.Tensor) -> torch.Tensor:
    """``--pretrain``'s loss per image ``(B,)``: mean absolute difference between the linear part of
    the input ST's theta and the original's moment-canonical target (``moments.pretrain_target``)."""
    theta = model.input_theta(images)
    return (theta[:, :, :2] - pretrain_target(images)).abs().mean(dim=(1, 2))


def load_weights(model: STNetwork, path: str) -> list[str]:
    """Load ``--load-model`` weights (a run folder, a final.pt or a checkpoint); returns missing keys."""
    source = Path(path)
    if source.is_dir():
        source = runs.weights_file(source)
    saved = runs.read_torch(source, "--load-model file")
    state = saved.get("model", saved) if isinstance(saved, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise RunFolderError(f"--load-model {path} holds no model weights")
    own = model.state_dict()
    unexpected = sorted(set(state) - set(own))
    wrong_shape = sorted(k for k in state if k in own and state[k].shape != own[k].shape)
    if unexpected or wrong_shape or not set(state) & set(own):
        detail = f"{len(wrong_shape)} tensors of another shape" if wrong_shape else f"{len(unexpected)} unknown tensors"
        raise RunFolderError(f"--load-model {path} holds weights of another model ({detail}, "
                             f"e.g. {(wrong_shape or unexpected or list(state))[0]})")
    model.load_state_dict(state, strict=False)
    return sorted(set(own) - set(state))


# ----- one run ----------------------------------------------------------------------------------
@dataclass
class EpochProgress:
    """Where an epoch stands: its sample order, the next batch, and the running sums."""

    order: torch.Tensor
    position: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0

    def add(self, losses: torch.Tensor, corrects: torch.Tensor, sizes: list[int]) -> None:
        """Count finished steps: their mean ``losses`` and ``corrects`` ``(steps,)``, of ``sizes`` images."""
        weights = torch.tensor(sizes, dtype=torch.float64)
        self.loss_sum += float((losses.double() * weights).sum())
        self.correct += int(corrects.sum())
        self.seen += int(weights.sum())


@dataclass
class Trainer:
    config: RunConfig
    data: ImageData  # on the training device
    device: torch.device
    seed: int
    folder: Path | None = None  # where checkpoints go; None keeps everything in memory
    log: Callable[[str], None] = print
    progress: bool = True
    on_epoch: Callable[[dict], None] | None = None  # called with each finished epoch's history entry
    history: list[dict] = field(default_factory=list)
    group_size: int = 1  # how many runs train in one step with this one (``stnlib.train.group``)

    def __post_init__(self):
        config = self.config
        if self.device.type == "cpu":
            keep_freed_memory_for_reuse()
        seed_everything(self.seed)
        self.model = build_model(config, self.data.spec)
        self.model.grow_to_added_iterations(config.add_iteration.count(-1))
        if config.load_model:
            missing = load_weights(self.model, config.load_model)
            if missing:
                self.log(f"--load-model: {len(missing)} tensors not in the file keep their fresh initialisation")
        self.model.grow_to_added_iterations(self.model.extra_iterations + config.add_iteration.count(0))
        self.model.to(self.device, memory_format=torch.channels_last)  # faster convolutions and pooling
        self.precision = self._resolve_precision()
        self.optimizer = build_optimizer(self.model, config)
        self.scheduler = build_scheduler(self.optimizer, config)
        self.generator = torch.Generator().manual_seed(self.seed)  # sample order and angles
        self.augmentation = augmentation_for(config, self.data, train=True)
        self.test_augmentation = augmentation_for(config, self.data, train=False)
        self.epochs = config.epochs if config.epochs is not None else config.iterations // self.batches_per_epoch
        self.epoch, self.iteration, self.current = 0, 0, None
        self.canonical_angles = (canonicalizing_angle(self.data.train_images).cpu()
                                 if config.moment_sched else None)
        self.stop_requested = False
        # On CUDA the loss is read back every READ_BACK_STEPS steps, so the GPU never waits for the host;
        # on the CPU every step (free there; geometry.warp stops a NaN theta before grid_sample sees it).
        self.read_back_steps = READ_BACK_STEPS if self.device.type == "cuda" else 1

    def _resolve_precision(self) -> str:
        """``config.precision``; ``auto``: the faster of fp32 and bf16 for this model here (``stnlib.precision``)."""
        if self.config.precision != "auto":
            return self.config.precision
        batch = min(self.config.batch_size, len(self.data.train_images))
        root = self.config.data_root or default_data_root()
        choice = choose_precision(self.model, self.data.image_shape, batch, Path(root).expanduser())
        self.log(choice.reason())
        return choice.precision

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(len(self.data.train_images) / self.config.batch_size)

    # ----- state -----
    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "generator": self.generator.get_state(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
                "epoch": self.epoch, "iteration": self.iteration, "extra_iterations": self.model.extra_iterations,
                "current": vars(self.current) if self.current else None, "history": self.history,
                "precision": self.precision}

    def load_state_dict(self, state: dict, source: Path | None = None) -> None:
        """Continue from ``state`` (``state_dict``'s); a ``RunFolderError`` naming ``source`` (the
        checkpoint's path) when it is not a training checkpoint of this run's model."""
        source = source or Path("the checkpoint")
        missing = [key for key in ("optimizer", "scheduler", "generator", "epoch", "history")
                   if not isinstance(state, dict) or key not in state]
        if missing:
            raise RunFolderError(f"{source} is not a training checkpoint (no {', '.join(missing)}; a final.pt "
                                 f"copied over it?); train anew with --overwrite")
        runs.load_model_state(self.model, state, source)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.generator.set_state(state["generator"])
        except (RuntimeError, ValueError, KeyError, TypeError) as error:
            raise RunFolderError(f"{source} does not fit this run's optimizer ({type(error).__name__}); "
                                 f"train anew with --overwrite") from None
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.epoch, self.iteration, self.history = state["epoch"], state["iteration"], state["history"]
        self.current = EpochProgress(**state["current"]) if state["current"] else None
        self.precision = state.get("precision", self.precision)  # a resumed run keeps the precision it began in

    def save_checkpoint(self) -> None:
        if self.folder is not None:
            runs.save_torch(self.folder / runs.CHECKPOINT, self.state_dict())
            runs.save_json(self.folder / runs.HISTORY, self.history)

    # ----- training -----
    def train_step(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step; returns the batch's mean loss and number of correct predictions."""
        with autocast(self.device, self.precision):
            if self.config.pretrain:
                loss = moment_alignment_error(self.model, batch.images).mean()
                correct = torch.zeros((), device=self.device)
            else:
                logits = self.model(batch.images)
                loss = classification_loss(logits, batch.labels)
                correct = count_correct(logits, batch.labels).sum()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.iteration += 1
        if self.iteration in self.config.add_iteration:
            self.add_st_iteration()
        return loss.detach(), correct

    def add_st_iteration(self) -> None:
        """One more ST iteration; the localization's learning rate is halved, as in the original."""
        self.model.add_iteration()
        for i, group in enumerate(self.optimizer.param_groups):
            if group["name"] == "localization":
                group["lr"] /= 2
                group["initial_lr"] /= 2
                self.scheduler.base_lrs[i] /= 2

    def draw_batch(self, progress: EpochProgress) -> tuple[torch.Tensor, torch.Tensor]:
        """The next batch's positions in the training split and rotation angles in degrees, ``(b,)``
        each on the CPU, drawn from the run's generator (``b``: the batch size, less at an epoch's end)."""
        index = progress.order[progress.position:progress.position + self.config.batch_size]
        angles = self.augmentation.sample_angles(len(index), self.generator)
        if self.canonical_angles is not None:
            canonical = torch.rand(len(index), generator=self.generator) < moment_probability(self.epoch)
            angles = torch.where(canonical, self.canonical_angles[index], angles)
        return index, angles

    def next_batch(self, progress: EpochProgress) -> Batch:
        """The next training batch, transformed, on the training device."""
        return self.make_batch(*self.draw_batch(progress))

    def make_batch(self, index: torch.Tensor, angles: torch.Tensor) -> Batch:
        """The training images at positions ``index`` ``(n,)``, rotated by ``angles`` ``(n,)`` degrees (both on
        the CPU, as ``draw_batch`` gives them), on the training device."""
        index = to_device(index, self.device)
        batch = Batch(self.data.train_images[index], self.data.train_labels[index], index)
        return self.augmentation(batch, self.generator, angles=angles)

    def begin_epoch(self) -> EpochProgress:
        """The epoch in progress (a new one draws its sample order); sets this epoch's rotation range."""
        if self.current is None:
            self.current = EpochProgress(order=torch.randperm(len(self.data.train_images), generator=self.generator))
        if self.config.rotation_warmup:
            self.augmentation.max_degrees = self.config.training_rotation_range(self.epoch + 1)
        self.model.train()
        return self.current

    def train_epoch(self) -> EpochProgress:
        progress = self.begin_epoch()
        bar = tqdm(total=self.batches_per_epoch, initial=progress.position // self.config.batch_size,
                   desc=f"epoch {self.epoch + 1}/{self.epochs}", leave=False, disable=not self.progress,
                   unit="batch", dynamic_ncols=True)
        every = self.read_back_steps
        pending: list[tuple[torch.Tensor, torch.Tensor, int]] = []  # (loss, correct, images) not read yet
        start = time.perf_counter()
        while progress.position < len(progress.order):
            if self.stop_requested:
                bar.close()
                self.save_checkpoint()
                raise Interrupted(f"stopped at epoch {self.epoch + 1}, batch "
                                  f"{progress.position // self.config.batch_size + 1}")
            batch = self.next_batch(progress)
            try:
                loss, correct = self.train_step(batch)
            except FloatingPointError:  # a non-finite theta, found before resampling with it
                loss, correct = torch.tensor(float("nan")), torch.zeros(())
            pending.append((loss, correct, len(batch.labels)))
            progress.position += len(batch.labels)
            if len(pending) >= every or progress.position >= len(progress.order) or self.stop_requested:
                self._read_back(pending, progress, bar)
                progress.seconds += time.perf_counter() - start
                pending, start = [], time.perf_counter()
        bar.close()
        return progress

    def _read_back(self, pending: list[tuple[torch.Tensor, torch.Tensor, int]], progress: EpochProgress, bar) -> None:
        """Add the steps in ``pending`` to ``progress`` with one host read; stop with the exact batch
        where the loss first stopped being finite."""
        losses = torch.stack([loss.double().reshape(()) for loss, _, _ in pending]).cpu()
        corrects = torch.stack([correct.double().reshape(()) for _, correct, _ in pending]).cpu()
        finite = torch.isfinite(losses)
        if not finite.all():
            bar.close()
            raise self.diverged(losses, [n for _, _, n in pending], progress)
        progress.add(losses, corrects, [n for _, _, n in pending])
        bar.update(len(pending))
        bar.set_postfix(loss=f"{losses[-1].item():.3f}", refresh=False)

    def diverged(self, losses: torch.Tensor, sizes: list[int], progress: EpochProgress) -> TrainingDiverged:
        """The error for a read-back window whose ``losses`` (one per step, of ``sizes`` images each,
        ending at ``progress.position``) are not all finite: it names the first such batch."""
        first = int((~torch.isfinite(losses)).nonzero()[0])
        batch_number = (progress.position - sum(sizes[first:])) // self.config.batch_size + 1
        kept = (f"the checkpoint of epoch {self.epoch} is kept" if self.history and self.folder is not None
                else "no epoch had finished, so nothing is kept")
        return TrainingDiverged(f"the loss became {losses[first].item()} at epoch {self.epoch + 1}, batch "
                                f"{batch_number}; {kept} (try a lower --lr)")

    def test_epoch(self) -> Score:
        """Loss, accuracy and (with STs) the undone-angle fit on the test split, with fresh random
        rotations fixed by seed and epoch."""
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        if self.config.pretrain:
            return Score(self.pretrain_test_loss(generator), float("nan"))
        return evaluate(self.model, self.data.test_images, self.data.test_labels, self.test_augmentation,
                        generator, self.precision)

    @torch.no_grad()
    def pretrain_test_loss(self, generator) -> float:
        self.model.eval()
        total = 0.0
        for batch in BatchLoader(self.data.test_images, self.data.test_labels, 1000):
            total += moment_alignment_error(self.model, self.test_augmentation(batch, generator).images).sum().item()
        self.model.train()
        return total / len(self.data.test_images)

    def run(self) -> RunResult:
        """Train the remaining epochs, then score the model and write the final files."""
        wall_start = time.perf_counter()
        with stop_on_signals(self.request_stop):
            while self.epoch < self.epochs:
                self.close_epoch(self.train_epoch())
            return self.finish(time.perf_counter() - wall_start)

    def request_stop(self) -> None:
        """Stop at the next batch boundary (or between two passes of the final evaluation)."""
        self.stop_requested = True

    def close_epoch(self, progress: EpochProgress) -> dict:
        """After an epoch's last batch: score the test split, add the history entry, checkpoint, report."""
        score = self.test_epoch()
        entry = {"epoch": self.epoch + 1, "iteration": self.iteration,
                 "train_loss": progress.loss_sum / max(progress.seen, 1),
                 "train_accuracy": (float("nan") if self.config.pretrain
                                    else progress.correct / max(progress.seen, 1)),
                 "test_loss": score.loss, "test_accuracy": score.accuracy,
                 "lr": self.optimizer.param_groups[0]["lr"], "train_seconds": progress.seconds,
                 "images_per_second": progress.seen / max(progress.seconds, 1e-9)}
        if math.isfinite(score.angle_slope):
            entry.update(angle_slope=score.angle_slope, angle_r=score.angle_r)
        self.history.append(entry)
        self.epoch, self.current = self.epoch + 1, None
        self.save_checkpoint()
        self.log(format_epoch(entry, self.epochs))
        if self.on_epoch is not None:
            self.on_epoch(entry)
        return entry

    def finish(self, wall_seconds: float) -> RunResult:
        self._stop_if_requested()
        correctness = None if self.config.pretrain else self.final_correctness()
        passes = [] if correctness is None else correctness.float().mean(1).tolist()
        train_seconds = sum(e["train_seconds"] for e in self.history)
        trained_images = sum(e["images_per_second"] * e["train_seconds"] for e in self.history)
        metrics = {"architecture": self.model.architecture, "seed": self.seed, "epochs": self.epoch,
                   "iterations": self.iteration, "device": str(self.device), "precision": self.precision,
                   "test_accuracy": sum(passes) / len(passes) if passes else None,
                   "test_accuracy_passes": passes,
                   "last_epoch_test_accuracy": self.history[-1]["test_accuracy"] if self.history else None,
                   "original_reports": original_reported_accuracy(self.data.name),
                   "final_train_accuracy": self.history[-1]["train_accuracy"] if self.history else None,
                   "train_images_per_second": trained_images / train_seconds if train_seconds else None,
                   "train_seconds": train_seconds, "wall_seconds": wall_seconds,
                   "threads": torch.get_num_threads(),
                   "group_size": self.group_size}  # the CPU's numbers depend on it (summation order)
        if self.folder is not None:
            runs.save_torch(self.folder / runs.FINAL, {"model": self.model.state_dict(),
                                                       "extra_iterations": self.model.extra_iterations})
            if correctness is not None:
                runs.save_torch(self.folder / runs.CORRECT, correctness)
            runs.save_json(self.folder / runs.METRICS, metrics)
            (self.folder / runs.PARTIAL_CORRECT).unlink(missing_ok=True)
        return RunResult(self.folder, self.history, metrics)

    def final_correctness(self) -> torch.Tensor:
        """``(eval_passes, N)`` bool of the final evaluation. Seeded by the run's seed alone, so runs of
        different architectures with the same seed are scored on the very same rotated test images
        (paired comparisons). SIGINT or SIGTERM stops it between two passes: the finished passes are
        kept in ``runs.PARTIAL_CORRECT``, and ``--resume`` scores the rest."""
        seed = self.seed + 7_919
        generator, done = torch.Generator().manual_seed(seed), None
        partial = self.folder / runs.PARTIAL_CORRECT if self.folder is not None else None
        if partial is not None and partial.is_file():
            saved = runs.read_torch(partial, "partial final evaluation")
            generator.set_state(saved["generator"])
            done = saved["correct"]
        correctness = test_correctness(self.model, self.data.test_images, self.data.test_labels,
                                       self.test_augmentation, self.config.eval_passes, seed=seed,
                                       precision=self.precision, done=done, generator=generator,
                                       stop=lambda: self.stop_requested)
        if len(correctness) < self.config.eval_passes:
            if partial is not None:
                runs.save_torch(partial, {"correct": correctness, "generator": generator.get_state()})
            kept = "kept" if partial is not None else "discarded (no run folder)"
            raise Interrupted(f"stopped in the final evaluation after {len(correctness)} of "
                              f"{self.config.eval_passes} passes (all {self.epoch} epochs trained; the passes "
                              f"are {kept})")
        return correctness

    def _stop_if_requested(self) -> None:
        """Before the final evaluation: every epoch is in the checkpoint, and ``--resume`` scores it."""
        if self.stop_requested:
            raise Interrupted(f"stopped before the final evaluation, after all {self.epoch} epochs")



@contextlib.contextmanager
def stop_on_signals(request_stop: Callable[[], None]):
    """Within the block SIGINT and SIGTERM call ``request_stop`` instead of interrupting (from the main
    thread; elsewhere, as in a worker, they keep their handlers); the previous handlers come back after."""
    try:
        previous = {s: signal.signal(s, lambda signum, frame: request_stop()) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread
        previous = {}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def format_epoch(entry: dict, epochs: int) -> str:
    return (f"epoch {entry['epoch']}/{epochs}  train loss {entry['train_loss']:.4f} "
            f"acc {entry['train_accuracy']:.4f}  test loss {entry['test_loss']:.4f} "
            f"acc {entry['test_accuracy']:.4f}  {entry['images_per_second']:,.0f} img/s")
