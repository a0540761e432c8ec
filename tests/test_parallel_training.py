"""Training a notebook's runs side by side: one process and one thread per run, the same numbers."""
import dataclasses
from pathlib import Path

import pytest
import torch

from stnlib import runs
from stnlib.errors import ConfigError
from stnlib.study import C0, NO_ST, Study
from stnlib.study.plan import PLANNED_NOTEBOOKS, planned_runs
from stnlib.study.parallel import single_thread, train_in_processes, train_one


def smoke_study(tmp_path, runner: str, folder: str) -> Study:
    study = Study("smoke", output=str(tmp_path / folder), device="cpu", log=lambda _: None)
    study.profile = dataclasses.replace(study.profile, runner=runner)
    return study


def weights(run: runs.Run) -> dict:
    return torch.load(run.folder / runs.FINAL, weights_only=False)["model"]


def test_runs_trained_in_two_processes_match_runs_trained_alone_on_one_thread(tmp_path):
    parallel = smoke_study(tmp_path, "processes", "parallel")
    alone = smoke_study(tmp_path, "processes", "alone")
    variants = (C0, NO_ST)
    train_in_processes([c for v in variants for c in parallel.configs(v)], {"mnist5k": parallel.data},
                       workers=2, log=lambda _: None)
    threads_before = torch.get_num_threads()
    for variant in variants:
        for together, by_itself in zip(parallel.runs(variant), alone.runs(variant)):  # alone: trained here
            assert together.metrics["test_accuracy_passes"] == by_itself.metrics["test_accuracy_passes"]
            assert together.history[-1]["train_loss"] == by_itself.history[-1]["train_loss"]
            for name, tensor in weights(together).items():
                assert torch.equal(tensor, weights(by_itself)[name]), name
    assert torch.get_num_threads() == threads_before  # single_thread gave the threads back


def test_the_processes_runner_trains_every_missing_run_once(tmp_path):
    study = smoke_study(tmp_path, "processes", "study")
    messages = []
    study.log = messages.append
    trained = study.trained([C0])[C0.label]
    assert any("in 2 processes" in m for m in messages) or torch.get_num_threads() == 1
    assert len(trained) == study.profile.seeds and all(run.metrics["test_accuracy"] is not None for run in trained)
    stamps = [(run.folder / runs.FINAL).stat().st_mtime_ns for run in trained]
    assert study.train(study.configs(C0)) == 0  # nothing left to train
    assert [(run.folder / runs.FINAL).stat().st_mtime_ns for run in study.runs(C0)] == stamps


def test_the_local_runner_leaves_training_to_run(tmp_path):
    study = smoke_study(tmp_path, "local", "local")
    assert study.train(study.configs(NO_ST)) == 0
    assert not any(study.output.rglob(runs.METRICS))


def test_a_failing_run_raises_its_own_error(tmp_path):
    study = smoke_study(tmp_path, "processes", "failing")
    good = study.config(NO_ST)
    impossible = dataclasses.replace(study.config(C0), stn_placement=[99])  # past the classifier's layers
    with pytest.raises(ConfigError, match="placement 99"):
        train_in_processes([impossible, good], {"mnist5k": study.data}, workers=2, log=lambda _: None)


def test_single_thread_restores_the_thread_count(tmp_path, tiny):
    before = torch.get_num_threads()
    with pytest.raises(ConfigError), single_thread():
        assert torch.get_num_threads() == 1
        study = smoke_study(tmp_path, "processes", "bad")
        train_one(dataclasses.replace(study.config(C0), stn_placement=[99]), tiny)
    assert torch.get_num_threads() == before


def test_the_plan_names_existing_notebooks_and_each_run_once(tmp_path):
    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    assert all((notebooks / f"{name}.ipynb").is_file() for name in PLANNED_NOTEBOOKS)
    study = Study("smoke", output=str(tmp_path), log=lambda _: None)
    configs, datasets = planned_runs(study, ["01_feature_alignment", "02_st_placement", "07_translation_scale_control",
                                             "99_not_a_notebook"])
    names = [config.name for config in configs]
    assert len(names) == len(set(names)) == 3 * study.profile.seeds + 2 * 2 * study.profile.seeds  # NO_ST once
    assert set(datasets) == {config.dataset for config in configs} == {"mnist5k", *study.profile.control_datasets}


def test_reproduce_trains_the_planned_runs_first_under_the_processes_runner(tmp_path, monkeypatch):
    from stnlib import reproduce
    from stnlib.study import profiles

    monkeypatch.setitem(profiles.PROFILES, "smoke", dataclasses.replace(profiles.PROFILES["smoke"], runner="processes"))
    name, seconds, status = reproduce.train_planned_runs("smoke", tmp_path, ["01_feature_alignment"], log=lambda _: None)
    assert (name, status) == ("training before the notebooks (2 runs)", "ok") and seconds > 0
    assert len(list((tmp_path / "runs").rglob(runs.METRICS))) == 2
    assert reproduce.train_planned_runs("smoke", tmp_path, ["01_feature_alignment"], log=lambda _: None) is None
    monkeypatch.setitem(profiles.PROFILES, "smoke", dataclasses.replace(profiles.PROFILES["smoke"], runner="local"))
    assert reproduce.train_planned_runs("smoke", tmp_path / "other", ["01_feature_alignment"]) is None
