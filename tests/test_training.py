"""The training loop through the Python API, on data built in memory."""
import dataclasses
import math
import os
import signal

import pytest
import torch

import stnlib
from stnlib import RunConfig, runs
from stnlib.errors import RunFolderError
from stnlib.train import Interrupted, Trainer, fit

TIMING = {"train_seconds", "images_per_second"}


def config(tmp_path, **overrides) -> RunConfig:
    base = dict(dataset="tiny", model="CNN", localization="FCN", stn_placement=[0], epochs=2, batch_size=16,
                optimizer="adam", lr=0.003, rotate=True, seed=3, name=str(tmp_path / "run"), eval_passes=2,
                device="cpu", precision="fp32")
    return RunConfig(**(base | overrides))


def without_timing(history):
    return [{k: v for k, v in entry.items() if k not in TIMING} for entry in history]


def subset(data, n_train, n_test):
    return dataclasses.replace(data, train_images=data.train_images[:n_train], train_labels=data.train_labels[:n_train],
                               test_images=data.test_images[:n_test], test_labels=data.test_labels[:n_test])


@pytest.mark.slow
def test_a_few_hundred_mnist_digits_lower_the_loss(tmp_path, mnist5k):
    data = subset(mnist5k, 512, 200)
    cfg = config(tmp_path, dataset="mnist5k", epochs=4, batch_size=64, lr=0.002, rotate=False)
    history = fit(cfg, data=data, log=lambda _: None, progress=False)[0].history
    losses = [e["train_loss"] for e in history]
    assert losses[-1] < 0.6 * losses[0]
    assert history[-1]["test_accuracy"] > 0.5


def test_same_seed_same_history_and_weights(tmp_path, tiny):
    first = fit(config(tmp_path / "a"), data=tiny, progress=False, log=lambda _: None)[0]
    second = fit(config(tmp_path / "b"), data=tiny, progress=False, log=lambda _: None)[0]
    assert without_timing(first.history) == without_timing(second.history)
    a, b = (torch.load(r.folder / runs.FINAL)["model"] for r in (first, second))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert first.metrics["test_accuracy_passes"] == second.metrics["test_accuracy_passes"]


def test_resume_after_an_interruption_gives_the_uninterrupted_run(tmp_path, tiny):
    cfg = config(tmp_path / "whole", epochs=3)
    whole = fit(cfg, data=tiny, progress=False, log=lambda _: None)[0]

    cut = config(tmp_path / "cut", epochs=3)
    original_step = Trainer.train_step
    steps = {"n": 0}

    def step_then_stop(self, batch):
        steps["n"] += 1
        if steps["n"] == 6:  # mid-way through epoch 2 (4 batches per epoch)
            self.stop_requested = True
        return original_step(self, batch)
    Trainer.train_step = step_then_stop
    try:
        with pytest.raises(Interrupted, match="epoch 2, batch 3"):
            fit(cut, data=tiny, progress=False, log=lambda _: None)
    finally:
        Trainer.train_step = original_step
    resumed = fit(cut, resume=True, data=tiny, progress=False, log=lambda _: None)[0]
    assert [e["epoch"] for e in resumed.history] == [1, 2, 3]
    assert without_timing(resumed.history) == without_timing(whole.history)
    assert resumed.metrics["test_accuracy_passes"] == whole.metrics["test_accuracy_passes"]


def test_sigterm_in_the_final_evaluation_stops_with_every_epoch_kept_and_resume_scores_it(tmp_path, tiny):
    whole = fit(config(tmp_path / "whole"), data=tiny, progress=False, log=lambda _: None)[0]
    cut = config(tmp_path / "cut")
    handler_before = signal.getsignal(signal.SIGTERM)  # another library's, or the default

    def terminate_after_the_last_epoch(entry):
        if entry["epoch"] == cut.epochs:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler only asks training to stop
    with pytest.raises(Interrupted, match="final evaluation, after all 2 epochs"):
        fit(cut, data=tiny, progress=False, log=lambda _: None, on_epoch=terminate_after_the_last_epoch)
    run_dir = runs.run_dirs(tmp_path / "cut", 1)[0]
    assert not (run_dir / runs.METRICS).exists() and not (run_dir / runs.FINAL).exists()
    assert signal.getsignal(signal.SIGTERM) == handler_before  # restored after the stop
    resumed = fit(cut, resume=True, data=tiny, progress=False, log=lambda _: None)[0]
    assert without_timing(resumed.history) == without_timing(whole.history)
    assert resumed.metrics["test_accuracy_passes"] == whole.metrics["test_accuracy_passes"]


def test_run_folder_contents_and_load_run(tmp_path, tiny, monkeypatch):
    cfg = config(tmp_path)
    fit(cfg, data=tiny, progress=False, log=lambda _: None)
    folder = tmp_path / "run"
    saved = runs.read_json(folder / runs.CONFIG)
    assert saved["architecture"] == "STN-C0" and saved["config"]["lr"] == 0.003 and "torch" in saved["versions"]
    metrics = runs.read_json(folder / runs.METRICS)
    assert len(metrics["test_accuracy_passes"]) == 2 and metrics["wall_seconds"] > 0
    correct = torch.load(folder / runs.CORRECT, weights_only=True)  # (passes, N): right or wrong per image
    assert correct.shape == (2, len(tiny.test_labels)) and correct.dtype == torch.bool
    assert metrics["test_accuracy_passes"] == pytest.approx(correct.float().mean(1).tolist())
    assert metrics["test_accuracy"] == pytest.approx(correct.float().mean().item())
    assert metrics["train_images_per_second"] > 0
    run = stnlib.load_run(folder)
    assert not run.model.training and next(run.model.parameters()).device.type == "cpu"
    conv_weights = [p for p in run.model.parameters() if p.dim() == 4]  # in the memory layout they trained in
    assert conv_weights and all(w.is_contiguous(memory_format=torch.channels_last) for w in conv_weights)
    assert run.model(torch.rand(5, 1, 28, 28)).shape == (5, 10)
    assert run.config == cfg and len(run.history) == 2 and run.architecture == "STN-C0"
    assert not list(folder.glob("*.tmp"))


def test_several_runs_get_their_own_folders(tmp_path, tiny):
    results = fit(config(tmp_path, runs=2, epochs=1), data=tiny, progress=False, log=lambda _: None)
    assert [r.folder.name for r in results] == ["run-0", "run-1"]
    assert results[0].metrics["seed"] == 3 and results[1].metrics["seed"] == 4
    assert stnlib.load_run(tmp_path / "run", run=1).folder.name == "run-1"
    with pytest.raises(RunFolderError, match="run 2 does not exist"):
        stnlib.load_run(tmp_path / "run", run=2)


def test_lr_is_divided_after_the_given_iterations(tmp_path, tiny):
    history = fit(config(tmp_path, optimizer="sgd", lr=0.1, switch_after_iterations=[4, 6], divide_lr_by=10),
                  data=tiny, progress=False, log=lambda _: None)[0].history
    assert history[0]["lr"] == pytest.approx(0.01) and history[1]["lr"] == pytest.approx(0.001)


def test_add_iteration_during_training(tmp_path, tiny):
    result = fit(config(tmp_path, add_iteration=[3]), data=tiny, progress=False, log=lambda _: None)[0]
    assert result.metrics["architecture"] == "STN-C0x2"
    assert stnlib.load_run(tmp_path / "run").architecture == "STN-C0x2"


def test_onlyloc_trains_only_the_localization(tmp_path, tiny):
    cfg = config(tmp_path, onlyloc=True, epochs=1)
    torch.manual_seed(cfg.seed)
    before = stnlib.models.build_model(cfg, tiny.spec).state_dict()
    fit(cfg, data=tiny, progress=False, log=lambda _: None)
    after = stnlib.load_run(tmp_path / "run").model.state_dict()
    assert torch.equal(before["head.weight"], after["head.weight"])
    assert not torch.equal(before["localizations.0.affine.bias"], after["localizations.0.affine.bias"])


def test_pretrain_and_moment_schedule_run(tmp_path, tiny):
    pre = fit(config(tmp_path / "p", pretrain=True, loop=True, epochs=3, lr=0.01), data=tiny,
              progress=False, log=lambda _: None)[0]
    assert pre.history[-1]["train_loss"] < pre.history[0]["train_loss"]
    sched = fit(config(tmp_path / "m", moment_sched=True, epochs=1), data=tiny, progress=False, log=lambda _: None)[0]
    assert sched.metrics["test_accuracy"] == pytest.approx(sum(sched.metrics["test_accuracy_passes"]) / 2)
    assert len(sched.history) == 1 and math.isfinite(sched.history[0]["train_loss"])


def test_rotation_warmup_widens_the_training_rotations_epoch_by_epoch(tmp_path, tiny):
    cfg = config(tmp_path, rotation_warmup=[10.0, 2.0], epochs=4)
    assert [cfg.training_rotation_range(e) for e in (1, 2, 3, 4)] == [10.0, 50.0, 90.0, 90.0]
    assert config(tmp_path).training_rotation_range(1) == 90.0
    trainer = Trainer(cfg, tiny, torch.device("cpu"), 0, log=lambda _: None, progress=False)
    largest, draw = [], trainer.augmentation.sample_angles

    def recording(n, generator):
        angles = draw(n, generator)
        largest.append(angles.abs().max())
        return angles

    trainer.augmentation.sample_angles = recording
    for epoch in range(4):
        trainer.train_epoch()
        trainer.epoch, trainer.current = epoch + 1, None
        assert max(largest) <= cfg.training_rotation_range(epoch + 1) and trainer.test_augmentation.max_degrees == 90
        largest.clear()
    assert trainer.augmentation.max_degrees == 90


def test_training_rotations_can_span_more_than_the_test_rotations(tmp_path, tiny):
    wide = config(tmp_path, train_rotation_range=120.0)
    trainer = Trainer(wide, tiny, torch.device("cpu"), 0, log=lambda _: None, progress=False)
    assert trainer.augmentation.max_degrees == 120 and trainer.test_augmentation.max_degrees == 90
    assert trainer.augmentation.sample_angles(4000, torch.Generator().manual_seed(0)).abs().max() > 115
    warmup = config(tmp_path, train_rotation_range=120.0, rotation_warmup=[30.0, 2.0], epochs=4)
    assert [warmup.training_rotation_range(e) for e in (1, 2, 3, 4)] == [30.0, 75.0, 120.0, 120.0]
    assert warmup.training_rotation_range() == 120.0 and config(tmp_path).training_rotation_range() == 90.0


def test_load_model_starts_from_saved_weights(tmp_path, tiny):
    fit(config(tmp_path / "a"), data=tiny, progress=False, log=lambda _: None)
    trained = torch.load(tmp_path / "a" / "run" / runs.FINAL)["model"]
    trainer = Trainer(config(tmp_path / "b", load_model=str(tmp_path / "a" / "run")), tiny, torch.device("cpu"), 0,
                      log=lambda _: None)
    assert all(torch.equal(trainer.model.state_dict()[k], trained[k]) for k in trained)


def test_load_model_refuses_another_models_weights(tmp_path, tiny):
    fit(config(tmp_path / "a", model="FCN"), data=tiny, progress=False, log=lambda _: None)
    with pytest.raises(RunFolderError, match="another model"):
        Trainer(config(tmp_path / "b", load_model=str(tmp_path / "a" / "run")), tiny, torch.device("cpu"), 0)


def test_bf16_autocast_trains(tmp_path, tiny):
    result = fit(config(tmp_path, precision="bf16", epochs=1), data=tiny, progress=False, log=lambda _: None)[0]
    assert result.metrics["precision"] == "bf16"
    fp32 = fit(config(tmp_path / "fp32", precision="fp32", epochs=1), data=tiny, progress=False, log=lambda _: None)[0]
    assert result.history[0]["train_loss"] == pytest.approx(fp32.history[0]["train_loss"], rel=0.05)


def test_reading_the_loss_back_every_few_steps_changes_nothing(tmp_path, tiny):
    """The CUDA path (one host read every few steps) gives the per-step path's history exactly."""
    histories = []
    for steps in (1, 3):
        trainer = Trainer(config(tmp_path / str(steps), epochs=2), tiny, torch.device("cpu"), 0, log=lambda _: None,
                          progress=False)
        trainer.read_back_steps = steps
        histories.append(without_timing(trainer.run().history))
    assert len(histories[0]) == len(histories[1]) == 2
    for every_step, every_third in zip(*histories):
        assert every_step == pytest.approx(every_third, rel=1e-12)


def test_a_divergence_found_late_still_names_its_batch(tmp_path, tiny):
    from stnlib.errors import TrainingDiverged

    trainer = Trainer(config(tmp_path, epochs=1, localization=None, stn_placement=[], lr=1e30, optimizer="sgd"),
                      tiny, torch.device("cpu"), 0, log=lambda _: None, progress=False)
    trainer.read_back_steps = 4  # 4 batches of 16 per epoch: read once, at the end
    with pytest.raises(TrainingDiverged, match=r"epoch 1, batch [2-4];"):
        trainer.train_epoch()
