"""Run groups (``stnlib.train.group``): R runs of one configuration trained as one stacked model agree
with the same runs trained alone, write ordinary run folders, resume, and survive a diverging member."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from stnlib import geometry
from stnlib.config import RunConfig
from stnlib.data import load_dataset
from stnlib.learn import main
from stnlib.models import plain_layers
from stnlib.train import Interrupted, RunGroup, Trainer, fit, fit_together, group_obstacle

# A group's grouped convolutions sum in another order than a run's own, so the two differ by rounding.
# Bilinear sampling's gradient jumps where a sample crosses a pixel, and at the identity every sample
# sits on one: there rounding decides which side's gradient a run gets. So every ST here starts a
# little off the identity (the same offset alone and grouped), and the comparison over 20 steps is made
# in float64, where rounding cannot carry a sample across a pixel. In fp32 it can, and 20 steps of training
# amplify such a jump to 1e-4 .. 1e-2 in a parameter: in fp32 the training curves are compared. Adam
# amplifies rounding further: it scales each gradient by its running size, so a parameter whose gradient
# is rounding noise still moves by up to lr. Its curves agree to rounding over the first steps, then drift.
STEPS = 20
FLOAT64_TOLERANCE = 1e-10
FLOAT32_LOSS_TOLERANCE = {"sgd": 5e-3, "adam": 5e-2}
FLOAT32_FIRST_STEPS, FLOAT32_FIRST_STEPS_TOLERANCE = 3, 1e-4


@pytest.fixture(scope="module")
def digits():
    return load_dataset("mnist5k").head(640, 128)


def _trainers(config: RunConfig, data, seeds, dtype=torch.float32) -> list[Trainer]:
    data = replace(data, train_images=data.train_images.to(dtype), test_images=data.test_images.to(dtype))
    trainers = [Trainer(config, data, torch.device("cpu"), seed=s, progress=False, log=lambda _: None) for s in seeds]
    for trainer in trainers:
        plain_layers(trainer.model).to(dtype)  # the group computes with nn.Conv2d; alone, the same layers
        offsets = torch.Generator().manual_seed(trainer.seed)
        with torch.no_grad():
            for localization in trainer.model.localizations:
                localization.affine.bias.add_(0.05 * torch.randn(6, generator=offsets, dtype=dtype))
    return trainers


def _state(trainer: Trainer) -> dict[str, torch.Tensor]:
    """The run's parameters, buffers and optimizer state, by name."""
    state = {name: t.detach() for name, t in trainer.model.state_dict().items()}
    for index, entry in trainer.optimizer.state_dict()["state"].items():
        state.update({f"optimizer.{index}.{key}": value for key, value in entry.items()
                      if isinstance(value, torch.Tensor)})
    return state


def _train_alone(trainers: list[Trainer], steps: int) -> list[list[float]]:
    """Train each run ``steps`` steps; its batch losses, run by run."""
    curves = []
    for trainer in trainers:
        progress, curves = trainer.begin_epoch(), curves + [[]]
        for _ in range(steps):
            batch = trainer.next_batch(progress)
            curves[-1].append(trainer.train_step(batch)[0].item())
            progress.position += len(batch.labels)
    return curves


def _train_grouped(trainers: list[Trainer], steps: int) -> list[list[float]]:
    """Train the runs as one group ``steps`` steps; the batch losses, step by step."""
    group, curves = RunGroup(trainers, log=lambda _: None, progress=False), []
    for trainer in trainers:
        trainer.begin_epoch()
    for _ in range(steps):  # the same batches: each run draws them from its own generator
        images, labels = group.next_batches()
        losses, _ = group.train_step(images, labels)
        curves.append(losses.tolist())
        for trainer in trainers:
            trainer.current.position += labels.shape[1]
    group._write_back()
    return curves


def _distance(a: Trainer, b: Trainer) -> float:
    mine, theirs = _state(a), _state(b)
    assert mine.keys() == theirs.keys()
    return max((mine[k].double() - theirs[k].double()).abs().max().item() for k in mine)


VARIANTS = [
    dict(localization="CNN", stn_placement=[0], momentum=0.9, weight_decay=1e-4),  # STN-C0
    dict(localization="FCN", stn_placement=[2, 2], loop=True, momentum=0.9),  # STN-SL2, iterated
    dict(localization="FCN", stn_placement=[2], deep=True, loc_copies_lr_multiplier=1.0,  # STN-DL2, 4 lr groups
         theta_grad_scale=10.0),
    dict(model="CNNb", localization="FCN", stn_placement=[1], optimizer="adam", lr=1e-3),  # BatchNorm buffers, Adam
    dict(localization=None, switch_after_iterations=[7]),  # no ST, a learning-rate drop inside the 20 steps
]
VARIANT_NAMES = ["STN-C0", "STN-SL2x2", "STN-DL2", "CNNb-adam", "no-ST"]
EVERY_VARIANT = [pytest.param(options, id=name, marks=() if name == "STN-C0" else pytest.mark.slow)
                 for options, name in zip(VARIANTS, VARIANT_NAMES)]  # STN-C0 in the quick suite


@pytest.mark.parametrize("options", EVERY_VARIANT)
def test_a_group_agrees_with_its_runs_trained_alone_in_float64(digits, options):
    config = RunConfig(dataset="mnist5k", epochs=1, batch_size=32, rotate=True, precision="fp32", **options)
    alone, grouped = (_trainers(config, digits, range(3), torch.float64) for _ in range(2))
    assert all(_distance(a, b) == 0 for a, b in zip(alone, grouped))  # identical starts
    _train_alone(alone, STEPS)
    _train_grouped(grouped, STEPS)
    for a, b in zip(alone, grouped):
        assert _distance(a, b) <= FLOAT64_TOLERANCE, f"seed {a.seed}"
        assert a.iteration == b.iteration == STEPS
        assert [g["lr"] for g in a.optimizer.param_groups] == [g["lr"] for g in b.optimizer.param_groups]
        assert a.scheduler.state_dict() == b.scheduler.state_dict()
    assert _distance(alone[0], alone[1]) > 1e-3  # three different runs


@pytest.mark.parametrize("options", EVERY_VARIANT)
def test_in_float32_a_group_follows_the_training_curves_of_its_runs(digits, options):
    """fp32's tolerance, stated: over the first 3 steps each grouped run's batch losses agree with the same
    run's trained alone to rounding (1e-4), and over 20 steps within FLOAT32_LOSS_TOLERANCE (measured: at
    most 2e-3 with SGD, on a loss near 2.3; with Adam 3e-2 on an AVX2 AMD EPYC)."""
    config = RunConfig(dataset="mnist5k", epochs=1, batch_size=32, rotate=True, precision="fp32", **options)
    alone, grouped = _trainers(config, digits, range(3)), _trainers(config, digits, range(3))
    curves_alone = torch.tensor(_train_alone(alone, STEPS))  # (runs, steps)
    curves_grouped = torch.tensor(_train_grouped(grouped, STEPS)).T
    gaps = (curves_alone - curves_grouped).abs()
    assert gaps[:, :FLOAT32_FIRST_STEPS].max() <= FLOAT32_FIRST_STEPS_TOLERANCE
    assert gaps.max() <= FLOAT32_LOSS_TOLERANCE["adam" if config.optimizer == "adam" else "sgd"]


@pytest.mark.parametrize("options", [dict(rotate=True), dict(rotate=True, moment_sched=True), dict(rotate=False)],
                         ids=["rotated", "moment-schedule", "upright"])
def test_a_groups_batches_are_made_in_one_warp_image_for_image_as_each_runs_own(digits, options):
    config = RunConfig(dataset="mnist5k", epochs=1, batch_size=48, precision="fp32", **options)
    alone, grouped = _trainers(config, digits, range(3)), _trainers(config, digits, range(3))
    group = RunGroup(grouped, log=lambda _: None, progress=False)
    assert group._one_warp()
    for trainer in alone + grouped:
        trainer.begin_epoch()
    for _ in range(len(digits.train_images) // 48 + 1):  # the epoch's last batch is a short one
        batches = [t.next_batch(t.current) for t in alone]
        images, labels = group.next_batches()
        assert torch.equal(images, torch.stack([b.images for b in batches]))
        assert torch.equal(labels, torch.stack([b.labels for b in batches]))
        for trainer in alone + grouped:
            trainer.current.position += labels.shape[1]
    assert labels.shape == (3, len(digits.train_images) % 48)
    for a, b in zip(alone, grouped):
        assert torch.equal(a.generator.get_state(), b.generator.get_state())  # the same draws, in the same order


def _run_command(folder, *extra) -> list[str]:
    return ["-d", "mnist5k", "--limit", "256", "--epochs", "2", "--batch-size", "64", "--rotate", "-l", "CNN",
            "-p", "0", "--runs", "3", "--seed", "4", "--eval-passes", "2", "-q", "-n", str(folder), *extra]


def test_runs_of_a_group_are_ordinary_run_folders(tmp_path, capsys):
    assert main(_run_command(tmp_path / "group", "--run-group", "together")) == 0
    assert "as one group" in capsys.readouterr().out
    from stnlib import load_run

    for r in range(3):
        run = load_run(tmp_path / "group", run=r)
        metrics = json.loads((tmp_path / "group" / f"run-{r}" / "metrics.json").read_text())
        assert metrics["seed"] == 4 + r and metrics["group_size"] == 3 and metrics["epochs"] == 2
        assert len(run.history) == 2
    accuracies = json.loads((tmp_path / "group" / "metrics.json").read_text())["test_accuracy_runs"]
    assert len(accuracies) == 3 and len(set(accuracies)) > 1  # three different runs


def test_an_interrupted_group_resumes_to_the_same_parameters(tmp_path, digits):
    def config(name):
        return RunConfig(dataset="mnist5k", epochs=2, batch_size=64, rotate=True, localization="CNN",
                         stn_placement=[0], runs=2, seed=1, eval_passes=1, precision="fp32", name=str(tmp_path / name),
                         run_group="together")

    fit(config("whole"), data=digits, log=lambda _: None, progress=False)

    def stop_after_first_epoch(entry):
        if entry["epoch"] == 1:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C: the group stops at the next batch
    with pytest.raises(Interrupted):
        fit(config("stopped"), data=digits, log=lambda _: None, progress=False, on_epoch=stop_after_first_epoch)
    lines = []
    fit(config("stopped"), resume=True, data=digits, log=lines.append, progress=False)
    assert any("as one group" in line for line in lines)
    for r in range(2):
        whole = torch.load(tmp_path / "whole" / f"run-{r}" / "final.pt")["model"]
        resumed = torch.load(tmp_path / "stopped" / f"run-{r}" / "final.pt")["model"]
        assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_a_diverging_run_leaves_its_group_and_the_others_finish(digits):
    config = RunConfig(dataset="mnist5k", epochs=1, batch_size=64, rotate=True, localization="CNN",
                       stn_placement=[0], precision="fp32", eval_passes=1)
    trainers = [Trainer(config, digits, torch.device("cpu"), seed=s, progress=False, log=lambda _: None)
                for s in range(3)]
    with torch.no_grad():
        next(trainers[1].model.localizations[0].parameters()).fill_(float("nan"))
    lines = []
    group = RunGroup(trainers, log=lines.append, progress=False)
    results = group.run()
    assert [t.seed for t in group.trainers] == [0, 2] and len(results) == 2
    assert [t.seed for t in group.failed] == [1]
    assert "the loss became nan at epoch 1, batch 1" in str(group.failures[0])
    assert any("left its group" in line for line in lines)
    assert all(r.metrics["test_accuracy"] > 0 and r.metrics["group_size"] == 2 for r in results)


def test_fit_together_trains_the_seeds_of_one_variant_in_their_own_folders(tmp_path, digits):
    base = RunConfig(dataset="mnist5k", epochs=1, batch_size=64, rotate=True, localization="CNN", stn_placement=[0],
                     eval_passes=1, precision="fp32", run_group="together")
    configs = [RunConfig(**{**base.to_dict(), "seed": s, "name": str(tmp_path / f"seed{s}")}) for s in range(2)]
    lines = []
    outcomes = fit_together(configs, data=digits, log=lines.append)
    assert [o.metrics["seed"] for o in outcomes] == [0, 1]
    assert any("seed0, seed1 as one group" in line for line in lines)
    again = fit_together(configs, data=digits, log=lines.append)  # finished folders are read back
    assert [o.metrics for o in again] == [o.metrics for o in outcomes]
    other = RunConfig(**{**configs[1].to_dict(), "lr": 0.5})
    with pytest.raises(Exception, match="differ only in seed and name"):
        fit_together([configs[0], other], data=digits)


def test_what_cannot_train_as_a_group_trains_apart_and_says_why(tmp_path, capsys):
    assert group_obstacle(RunConfig(localization="CNN", stn_placement=[0], pretrain=True)) is not None
    assert main(_run_command(tmp_path / "apart", "--run-group", "together", "--add-iteration", "300")) == 0
    out = capsys.readouterr().out
    assert "one after another: --add-iteration" in out and "as one group" not in out
    assert main(_run_command(tmp_path / "bad", "--run-group", "sometimes")) == 2
    assert "unknown --run-group 'sometimes'" in capsys.readouterr().err


def test_the_sampling_grid_is_affine_grid_and_batches_under_vmap():
    theta = torch.randn(12, 2, 3)
    for height, width in ((28, 28), (60, 60), (14, 7)):
        expected = F.affine_grid(theta, [12, 1, height, width], align_corners=False)
        assert torch.equal(geometry.sampling_grid(theta, height, width), expected)
        stacked = torch.vmap(geometry.sampling_grid, in_dims=(0, None, None))(theta.reshape(3, 4, 2, 3), height, width)
        assert torch.equal(stacked.reshape(12, height, width, 2), expected)


def test_inside_a_group_a_nonfinite_theta_makes_its_image_nan_instead_of_stopping():
    images, theta = torch.rand(3, 1, 8, 8), geometry.identity_theta(3)
    theta[1, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError):
        geometry.warp(images, theta)
    with geometry.nonfinite_theta_propagates():
        out = geometry.warp(images, theta)
    assert torch.isnan(out[1]).all() and torch.isfinite(out[[0, 2]]).all()
    assert torch.equal(out[[0, 2]], geometry.warp(images[[0, 2]], theta[[0, 2]]))


def _group_of_two(digits, **options) -> list[Trainer]:
    config = RunConfig(dataset="mnist5k", epochs=1, batch_size=64, rotate=True, localization="CNN",
                       stn_placement=[0], precision="fp32", eval_passes=1, **options)
    return [Trainer(config, digits, torch.device("cpu"), seed=s, progress=False, log=lambda _: None) for s in range(2)]


def test_when_compiling_the_step_fails_one_line_says_so_and_training_goes_on(digits, monkeypatch):
    def broken_compile(function, **options):
        def fails(*args):
            raise RuntimeError("no compiler here\nmore detail")
        return fails
    monkeypatch.setattr(torch, "compile", broken_compile)
    lines = []
    results = RunGroup(_group_of_two(digits), log=lines.append, progress=False, compile_step=True).run()
    failures = [line for line in lines if "compiling the step failed" in line]
    assert failures == ["--compile-step: compiling the step failed (RuntimeError: no compiler here); "
                        "training goes on eagerly"]
    assert len(results) == 2 and all(r.metrics["epochs"] == 1 for r in results)


@pytest.mark.slow
def test_a_compiled_group_step_agrees_with_the_eager_one(digits):
    """The compiled step holds the optimizer's update too: after 4 steps, across a learning-rate drop
    (which compiles the update once more), the runs' parameters agree with the eager group's."""
    eager, compiled = (_group_of_two(digits, switch_after_iterations=[2]) for _ in range(2))
    curves = []
    for trainers, compile_step in ((eager, False), (compiled, True)):
        group = RunGroup(trainers, log=lambda _: None, progress=False, compile_step=compile_step)
        for trainer in trainers:
            trainer.begin_epoch()
        curve = []
        for _ in range(4):
            images, labels = group.next_batches()
            curve.append(group.train_step(images, labels)[0])
            for trainer in trainers:
                trainer.current.position += labels.shape[1]
        group._write_back()
        curves.append(torch.stack(curve))
    assert torch.allclose(curves[0], curves[1], atol=1e-4)
    for a, b in zip(eager, compiled):
        assert a.optimizer.param_groups[0]["lr"] == b.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
        assert _distance(a, b) < 1e-4


@pytest.mark.slow
@pytest.mark.slow
@pytest.mark.parametrize("localization, optimizer", [("CNN", "sgd"), ("CNNb", "adam")])
def test_the_compiled_step_is_two_whole_graphs(digits, localization, optimizer):
    """What CUDA graphs replay: the forward and backward passes of all runs as one graph (BatchNorm's
    running statistics included), the optimizer's update as another; no graph breaks, which would run
    the code between them eagerly, from the host."""
    config = RunConfig(dataset="mnist5k", epochs=1, batch_size=64, rotate=True, localization=localization,
                       stn_placement=[0], precision="fp32", optimizer=optimizer)
    trainers = [Trainer(config, digits, torch.device("cpu"), seed=s, progress=False, log=lambda _: None) for s in range(2)]
    group = RunGroup(trainers, log=lambda _: None, progress=False)
    for trainer in trainers:
        trainer.begin_epoch()
    images, labels = group.next_batches()
    torch._dynamo.reset()
    with geometry.nonfinite_theta_propagates():
        passes = torch._dynamo.explain(group._gradients)(group.params, group.buffers, images, labels)
        gradients, _, _ = group._gradients(group.params, group.buffers, images, labels)
    for name, tensor in group.params.items():
        tensor.grad = gradients[name]
    update = torch._dynamo.explain(group._update)()
    for explained in (passes, update):
        assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons


def test_a_study_on_cuda_trains_the_seeds_of_a_variant_as_groups(tmp_path):
    from stnlib.study import Study
    from stnlib.study.runner import train_in_groups
    from stnlib.study.variants import C0

    study = Study("smoke", dataset="mnist5k", epochs=1, seeds=3, device="cpu", output=str(tmp_path), log=lambda _: None)
    configs = [replace(c, run_group="together") for c in study.configs(C0, 3)]  # as auto does on CUDA
    assert train_in_groups(configs, {"mnist5k": study.data}, study.profile.group_size, log=lambda _: None) == 3
    sizes = [json.loads((Path(c.name) / "metrics.json").read_text())["group_size"] for c in configs]
    assert sizes == [3, 3, 3]  # the smoke profile's group_size is 5: one group
