"""Run groups: the runs of one configuration trained as one stacked model, in one step.

The R runs' parameters and buffers are stacked along a new first axis
(``torch.func.stack_module_state``), and the network is applied to each run's own batch with
``torch.func.vmap`` over ``functional_call``: the R runs' convolutions become one grouped
convolution, their linear layers one batched product. The loss is the sum of the runs' mean losses,
so each run's parameters receive exactly their own gradient; SGD (momentum, weight decay) and Adam
act elementwise, so one optimizer over the stacked tensors updates each run as its own would.

Each run keeps its ``Trainer``: its initialisation, sample order and angles (its own generator),
learning-rate schedule, history, checkpoints and run folder. At the end of every epoch, and when
stopped, the stacked state is written back into the runs' trainers, which score, checkpoint and
report exactly as a run trained alone does, so ``--resume`` may continue a run alone or in a group.
A run whose loss stops being finite leaves the group with its last checkpoint kept; the others go on.

The runs' batches are made together: each run draws its sample positions and angles, and the R batches
are gathered and rotated as one. The forward and backward passes are one function of the stacked parameters
(``torch.func.grad``); with ``--compile-step`` it compiles to one graph and the optimizer's update to another,
on CUDA replayed as CUDA graphs.

Shapes inside the step: images ``(R, B, C, H, W)``, labels ``(R, B)``, losses and counts ``(R,)``.
"""
from __future__ import annotations

import copy
import time
from typing import Callable

import torch
from torch import nn
from torch.func import functional_call, grad, stack_module_state, vmap
from tqdm.auto import tqdm

from .. import geometry
from ..config import RunConfig
from ..data import RandomRotation
from ..device import autocast
from ..errors import TrainingDiverged
from ..losses import classification_loss
from ..losses import correct as count_correct
from ..models import NetworkSpec, STNetwork, build_model, plain_layers
from .trainer import Interrupted, RunResult, Trainer, build_scheduler, stop_on_signals

def group_obstacle(config: RunConfig, spec: NetworkSpec | None = None, model: STNetwork | None = None) -> str | None:
    """Why the runs of ``config`` cannot train as one group (``None``: they can). ``model`` (or one built
    from ``spec``) is looked at for layers that draw random numbers."""
    if config.pretrain:
        return "--pretrain trains the localization alone"
    if config.add_iteration:
        return "--add-iteration grows the model during training"
    model = model if model is not None else build_model(config, spec, cpu_fast_paths=False)
    if any(isinstance(m, nn.Dropout) for m in model.modules()):
        return f"{config.model} has dropout, whose masks a group would draw differently from runs trained alone"
    return None


def trains_together(config: RunConfig, device: torch.device) -> bool:
    """Whether ``--run-group`` asks for groups here: ``together`` always, ``apart`` never, ``auto`` on
    CUDA (``benchmarks/gpu_throughput.py`` measures both; on the CPU, runs alone are faster)."""
    return config.run_group == "together" or (config.run_group == "auto" and device.type == "cuda")


def _per_run(key: str, value) -> bool:
    """Whether an optimizer state entry has one slice per run (Adam's ``step`` count is shared)."""
    return isinstance(value, torch.Tensor) and key != "step"


class RunGroup:
    """Trains ``trainers`` (runs of one configuration, all at the same epoch and batch) in one step."""

    def __init__(self, trainers: list[Trainer], log: Callable[[str], None] = print, progress: bool = True,
                 compile_step: bool = False):
        first = trainers[0]
        positions = {(t.epoch, t.iteration, t.current.position if t.current else 0) for t in trainers}
        if len(positions) > 1:
            raise ValueError(f"the runs of a group must stand at the same epoch and batch, not {sorted(positions)}")
        self.trainers = list(trainers)
        self.config, self.device, self.precision = first.config, first.device, first.precision
        self.log, self.progress = log, progress
        self.template = plain_layers(copy.deepcopy(first.model)).to("meta")
        self.failed: list[Trainer] = []  # runs that left the group, with their errors in ``failures``
        self.failures: list[TrainingDiverged] = []
        self.stop_requested = False
        self.compile_step = compile_step
        self.gradients, self.update = self._gradients, self._update
        for trainer in trainers:
            trainer.group_size = len(trainers)
        self._stack()

    # ----- between the runs' trainers and the stacked state -----
    def _stack(self) -> None:
        """Stack the trainers' models, optimizer states and schedule into the group's."""
        first = self.trainers[0]
        self.params, self.buffers = stack_module_state([t.model for t in self.trainers])
        names = {id(p): name for name, p in first.model.named_parameters()}
        groups = [{**{k: v for k, v in group.items() if k != "params"},
                   "params": [self.params[names[id(p)]] for p in group["params"]]}
                  for group in first.optimizer.param_groups]
        self.optimizer = type(first.optimizer)(groups)
        self.scheduler = build_scheduler(self.optimizer, self.config)
        states = [t.optimizer.state_dict() for t in self.trainers]
        stacked = {index: {key: torch.stack([s["state"][index][key] for s in states]) if _per_run(key, value)
                           else value for key, value in entry.items()}
                   for index, entry in states[0]["state"].items()}
        self.optimizer.load_state_dict({"state": stacked, "param_groups": states[0]["param_groups"]})
        self.scheduler.load_state_dict(first.scheduler.state_dict())
        if self.compile_step:
            self._compile()

    @torch.no_grad()
    def _write_back(self) -> None:
        """Give each trainer its slice of the stacked parameters, buffers and optimizer state, and the schedule."""
        state = self.optimizer.state_dict()
        for r, trainer in enumerate(self.trainers):
            for name, tensor in [*trainer.model.named_parameters(), *trainer.model.named_buffers()]:
                tensor.copy_((self.params if name in self.params else self.buffers)[name][r])
            own = {index: {key: value[r].clone() if _per_run(key, value) else value for key, value in entry.items()}
                   for index, entry in state["state"].items()}
            trainer.optimizer.load_state_dict({"state": own, "param_groups": state["param_groups"]})
            trainer.scheduler.load_state_dict(self.scheduler.state_dict())

    # ----- training -----
    def _run_loss(self, params: dict, buffers: dict, images: torch.Tensor, labels: torch.Tensor):
        """One run's mean loss and number of correct predictions on its batch ``(B, C, H, W)``."""
        logits = functional_call(self.template, (params, buffers), (images,))
        return classification_loss(logits, labels), count_correct(logits, labels).sum()

    def _losses(self, params: dict, buffers: dict, images: torch.Tensor, labels: torch.Tensor):
        """Every run's mean loss and number correct on its batch: ``(R, B, C, H, W)``, ``(R, B)`` -> ``(R,)`` each.
        Call it inside ``geometry.nonfinite_theta_propagates()``: ``vmap`` cannot read theta on the host."""
        with autocast(self.device, self.precision):
            return vmap(self._run_loss)(params, buffers, images, labels)

    def _gradients(self, params: dict, buffers: dict, images: torch.Tensor, labels: torch.Tensor):
        """The forward and backward passes of every run as one function of the stacked parameters
        (``torch.func.grad``), which compiles to one graph: ``(R, B, C, H, W)``, ``(R, B)`` -> the gradients
        by parameter name (each shaped as its parameter, ``(R, ...)``), the losses and the numbers correct,
        ``(R,)`` each. The loss differentiated is the sum of the runs' losses, so each run gets its own gradient."""
        def total(params: dict, buffers: dict):  # buffers an input: BatchNorm updates them in place
            losses, corrects = self._losses(params, buffers, images, labels)
            return losses.sum(), (losses, corrects)
        gradients, (losses, corrects) = grad(total, has_aux=True)(params, buffers)
        return gradients, losses, corrects

    def _update(self) -> None:
        """The optimizer's update of the stacked parameters from their gradients."""
        self.optimizer.step()

    def _step(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The forward pass, the backward pass and the optimizer's update of every run: ``(R, B, C, H, W)``,
        ``(R, B)`` -> the runs' losses and numbers correct, ``(R,)`` each, still on the device."""
        with geometry.nonfinite_theta_propagates():  # set here: a compiled function may read it, not set it
            gradients, losses, corrects = self.gradients(self.params, self.buffers, images, labels)
        for name, tensor in self.params.items():
            tensor.grad = gradients[name]
        self.update()
        self.optimizer.zero_grad(set_to_none=True)
        return losses, corrects

    def _compile(self) -> None:
        """Compile the step's two functions with ``torch.compile``: the passes (``_gradients``, one graph) and
        the optimizer's update (``_update``, one graph; PyTorch's optimizers keep their update apart from the
        passes). On CUDA they run as CUDA graphs (``mode="reduce-overhead"``), replayed without launching each
        kernel from the host; the parameters and buffers keep their addresses, so a replay copies none of them.
        A learning rate is a constant of the compiled update, so each new rate of the schedule compiles it once
        more. If compiling fails, one line says so and the group trains eagerly."""
        cuda = self.device.type == "cuda"
        # On the CPU, channels-last layouts (inductor's default for convolutions) make oneDNN's backward pass
        # of the runs' grouped convolutions 2.3x slower (docs/speed.md, Run groups).
        options = dict(mode="reduce-overhead") if cuda else dict(options={"layout_optimization": False})
        for tensor in [*self.params.values(), *self.buffers.values()]:
            torch._dynamo.mark_static_address(tensor)
        gradients = torch.compile(self._gradients, dynamic=False, **options)
        update = torch.compile(self._update, dynamic=False, **options)

        def compiled_gradients(*args):
            if cuda:  # a new step: the previous replay's outputs may be overwritten
                torch.compiler.cudagraph_mark_step_begin()
            gradients_, losses, corrects = self._eager_on_failure(gradients, self._gradients, *args)
            return gradients_, losses.clone(), corrects.clone()  # kept across steps; a replay reuses its outputs

        self.gradients = compiled_gradients
        self.update = lambda: self._eager_on_failure(update, self._update)

    def _eager_on_failure(self, compiled: Callable, eager: Callable, *args):
        """``compiled(*args)``; if it raises, one line says so, the group goes on eagerly, and ``eager(*args)``."""
        try:
            return compiled(*args)
        except Exception as error:  # noqa: BLE001 - any compiler failure: train on without it
            message = str(error).strip().splitlines()[0][:160] if str(error).strip() else ""
            self.log(f"--compile-step: compiling the step failed ({type(error).__name__}: {message}); "
                     "training goes on eagerly")
            self.compile_step = False
            self.gradients, self.update = self._gradients, self._update
            return eager(*args)

    def next_batches(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every run's next training batch: images ``(R, B, C, H, W)`` and labels ``(R, B)`` on the device.

        Each run draws its own sample positions and angles from its generator, as alone. When the runs
        share their data and rotate it alike (``RandomRotation``), the R batches are gathered and rotated
        as one batch of R * B images, in one copy to the device, one gather and one warp, image for image
        what each run's ``Trainer.next_batch`` makes; other augmentations run per run."""
        if not self._one_warp():
            batches = [t.next_batch(t.current) for t in self.trainers]
            return torch.stack([b.images for b in batches]), torch.stack([b.labels for b in batches])
        index, angles = (torch.stack(drawn) for drawn in zip(*(t.draw_batch(t.current) for t in self.trainers)))
        batch = self.trainers[0].make_batch(index.reshape(-1), angles.reshape(-1))  # (R * B) images
        return batch.images.unflatten(0, index.shape), batch.labels.reshape(index.shape)

    def _one_warp(self) -> bool:
        """Whether the runs' batches can be made as one (see ``next_batches``)."""
        first = self.trainers[0].augmentation
        return type(first) is RandomRotation and all(
            t.data is self.trainers[0].data and type(t.augmentation) is RandomRotation
            and (t.augmentation.max_degrees, t.augmentation.padding_mode) == (first.max_degrees, first.padding_mode)
            for t in self.trainers)

    def train_step(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step of every run on its batch: ``(R, B, C, H, W)``, ``(R, B)`` -> losses and
        numbers correct, ``(R,)`` each."""
        losses, corrects = self._step(images, labels)
        self.scheduler.step()
        for trainer in self.trainers:
            trainer.iteration += 1
        return losses.detach(), corrects

    def train_epoch(self) -> None:
        """Train every run to the end of its current epoch (the group may shrink on the way)."""
        for trainer in self.trainers:
            trainer.begin_epoch()
        self.template.train()
        first = self.trainers[0]
        bar = tqdm(total=first.batches_per_epoch, initial=first.current.position // self.config.batch_size,
                   desc=f"epoch {first.epoch + 1}/{first.epochs} ({len(self.trainers)} runs)", leave=False,
                   disable=not self.progress, unit="batch", dynamic_ncols=True)
        pending: list[tuple[torch.Tensor, torch.Tensor, int]] = []  # (losses, corrects, images per run)
        start = time.perf_counter()
        while self.trainers and self.trainers[0].current.position < len(self.trainers[0].current.order):
            if self.stop_requested:
                bar.close()
                self._write_back()
                for trainer in self.trainers:
                    trainer.save_checkpoint()
                first = self.trainers[0]
                raise Interrupted(f"stopped at epoch {first.epoch + 1}, batch "
                                  f"{first.current.position // self.config.batch_size + 1}")
            images, labels = self.next_batches()
            losses, corrects = self.train_step(images, labels)
            size = labels.shape[1]
            pending.append((losses, corrects, size))
            for trainer in self.trainers:
                trainer.current.position += size
            done = self.trainers[0].current.position >= len(self.trainers[0].current.order)
            if len(pending) >= first.read_back_steps or done or self.stop_requested:
                seconds = self._read_back(pending, bar, start)
                pending, start = [], start + seconds
        bar.close()

    def _read_back(self, pending: list, bar, start: float) -> float:
        """Count the steps in ``pending`` for each run with one host read; a run whose loss stopped being
        finite leaves the group. Returns the seconds since ``start``."""
        losses = torch.stack([step_losses for step_losses, _, _ in pending]).double().cpu()  # (steps, R)
        corrects = torch.stack([step_corrects for _, step_corrects, _ in pending]).double().cpu()
        seconds = time.perf_counter() - start
        sizes = [n for _, _, n in pending]
        finite = torch.isfinite(losses).all(0)
        for r, trainer in enumerate(self.trainers):
            if finite[r]:
                trainer.current.add(losses[:, r], corrects[:, r], sizes)
                trainer.current.seconds += seconds
        bar.update(len(pending))
        bar.set_postfix(loss=f"{losses[-1].mean().item():.3f}", refresh=False)
        if not finite.all():
            self._drop([r for r in range(len(self.trainers)) if not finite[r]], losses, sizes)
        return seconds

    def _drop(self, failed: list[int], losses: torch.Tensor, sizes: list[int]) -> None:
        """Take the runs ``failed`` out of the group (their checkpoints stay as they were) and go on."""
        self._write_back()
        for r in failed:
            trainer = self.trainers[r]
            error = trainer.diverged(losses[:, r], sizes, trainer.current)
            self.failed.append(trainer)
            self.failures.append(TrainingDiverged(f"{_run_name(trainer)}: {error}"))
            self.log(f"{_run_name(trainer)} left its group: {error}")
        self.trainers = [t for r, t in enumerate(self.trainers) if r not in failed]
        if self.trainers:
            for trainer in self.trainers:
                trainer.group_size = len(self.trainers)
            self._stack()

    def run(self) -> list[RunResult]:
        """Train the remaining epochs, then score each run and write its final files. Returns the
        results of the runs that finished; ``failures`` holds the errors of those that diverged."""
        wall_start = time.perf_counter()
        with stop_on_signals(self.request_stop):
            while self.trainers and self.trainers[0].epoch < self.trainers[0].epochs:
                self.train_epoch()
                self._write_back()
                for trainer in self.trainers:
                    trainer.close_epoch(trainer.current)
            return [trainer.finish(time.perf_counter() - wall_start) for trainer in self.trainers]

    def request_stop(self) -> None:
        self.stop_requested = True
        for trainer in self.trainers:
            trainer.request_stop()


def _run_name(trainer: Trainer) -> str:
    return f"the run in {trainer.folder}" if trainer.folder is not None else f"the run of seed {trainer.seed}"
