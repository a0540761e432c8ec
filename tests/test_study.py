"""The study's runner and the claims table."""

from stnlib.study import C0, C1, DL2, NO_ST, SL1, Study, iterated


def test_variants_map_to_the_original_cli_options(tmp_path):
    study = Study("smoke", output=str(tmp_path))
    sl1 = study.config(SL1, seed=2)
    assert (sl1.stn_placement, sl1.loop, sl1.deep, sl1.seed, sl1.localization) == ([3], True, False, 2, "FCN")
    assert study.config(DL2).deep and study.config(C1).stn_placement == [3]
    assert study.config(iterated(SL1, 3)).stn_placement == [3, 3, 3]
    assert not study.config(NO_ST).has_st
    paper = Study("paper", output=str(tmp_path), device="cpu")
    assert paper.profile.dataset == "mnist" and paper.profile.device == "cpu"


def test_quick_recipe_reaches_every_run_of_the_profile(tmp_path):
    study = Study("quick", output=str(tmp_path))
    config = study.config(C0, seed=1)
    assert (config.optimizer, config.lr, config.loc_lr_multiplier, config.batch_size, config.epochs,
            config.weight_decay) == ("adam", 3e-4, 10.0, 128, 16, 0.0)
    assert config.switch_after_iterations == [384]  # lr / 10 after 12 of 16 epochs of 32 batches
    assert config.localization_parameters == [128, 128, 128] and study.config(C1).localization_parameters == [128] * 3
    assert config.rotation_warmup == [30.0, 4]  # +-30 degrees widening to +-90 over 4 of 16 epochs
    assert config.precision == "fp32" and study.config(NO_ST).loc_lr_multiplier == 1.0
    assert study.config(NO_ST).localization_parameters is None
    cnn_loc = Study("quick", output=str(tmp_path), localization="CNN").config(C0)
    assert cnn_loc.localization == "CNN" and cnn_loc.localization_parameters is None  # the widths are the FCN's
    assert Study("quick", output=str(tmp_path), rotation_range=20).config(C0).rotation_warmup == [20.0, 4]
    assert Study("quick", output=str(tmp_path), epochs=2).config(C0).rotation_warmup == [30.0, 1]
    assert study.control_study("translate").config(C0).rotation_warmup == []  # placed digits are not rotated
    other = study.config(C0, seed=0, lr=1e-3, batch_size=256)
    assert other.lr == 1e-3 and other.name != study.config(C0, seed=0).name


def test_paper_profile_is_the_original_codes_long_schedule(tmp_path, tiny):
    study = Study("paper", output=str(tmp_path), device="cpu")
    config = study.config(C0)
    assert (config.optimizer, config.lr, config.momentum, config.batch_size, config.iterations, config.epochs) == \
        ("sgd", 0.01, 0.0, 256, 150_000, None)
    assert config.switch_after_iterations == [50_000, 100_000] and config.loc_lr_multiplier == 1.0
    assert config.weight_decay == 0.0  # the original's default
    shortened_study = Study("paper", output=str(tmp_path), device="cpu", epochs=2)
    shortened_study._data = tiny  # full MNIST is not needed to count batches
    shortened = shortened_study.config(C0)
    assert (shortened.epochs, shortened.iterations, shortened.switch_after_iterations) == (2, None, [])


def test_paper_profile_trains_with_tiny_settings_on_the_cpu(tmp_path, tiny):
    study = Study("paper", output=str(tmp_path), device="cpu", log=lambda _: None)
    study._data = tiny
    import dataclasses
    study.profile = dataclasses.replace(study.profile, iterations=4, lr_drop_iterations=(2,), eval_passes=1,
                                        runner="local", seeds=1)
    run = study.run(C0, seed=0)
    assert run.metrics["iterations"] >= 1 and run.test_correct.shape[0] == 1


def test_runs_are_trained_once_and_reused(tmp_path):
    study = Study("smoke", output=str(tmp_path), log=lambda _: None)
    first = study.run(NO_ST, seed=0)
    stamp = (first.folder / "final.pt").stat().st_mtime_ns
    again = study.run(NO_ST, seed=0)
    assert (again.folder / "final.pt").stat().st_mtime_ns == stamp
    longer = Study("smoke", epochs=2, output=str(tmp_path), log=lambda _: None).run(NO_ST, seed=0)
    assert len(longer.history) == 2 and longer.folder != first.folder  # its own folder: nothing overwritten
    assert (first.folder / "final.pt").stat().st_mtime_ns == stamp


def test_study_data_limits_keep_every_class(tmp_path):
    study = Study("smoke", output=str(tmp_path))
    assert len(study.data.train_images) == 192 and len(set(study.data.test_labels.tolist())) == 10


def test_runs_and_numbers_are_keyed_by_profile_and_overrides(tmp_path):
    quick, shorter = Study("smoke", output=str(tmp_path)), Study("smoke", epochs=2, output=str(tmp_path))
    assert (quick.profile_key, shorter.profile_key) == ("smoke", "smoke-epochs=2")
    assert "/runs/smoke/" in quick.config(C0).name and "/runs/smoke-epochs=2/" in shorter.config(C0).name
    quick.record("02_placement", {"accuracy": {}})
    shorter.record("02_placement", {"accuracy": {}})
    assert quick.results()["02_placement"]["profile"] == "smoke"
    assert shorter.results()["02_placement"]["profile"] == "smoke-epochs=2"
    assert set(Study("quick", output=str(tmp_path)).results()) == set()
    assert Study("smoke", seeds=3, device="cpu", output=str(tmp_path)).profile_key == "smoke"  # same runs


def test_settings_are_one_frozen_value_that_the_control_study_keeps(tmp_path):
    import dataclasses

    import pytest

    from stnlib.study import StudySettings

    settings = StudySettings("quick", rotation_range=45, localization="CNN", output=str(tmp_path))
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.epochs = 2
    study = Study(settings)
    assert study.settings is settings and Study("quick", rotation_range=45, localization="CNN",
                                                output=str(tmp_path)).settings == settings
    assert study.profile_key == "quick-localization=CNN-rotation_range=45"
    control = study.control_study("scale")
    assert control.settings == dataclasses.replace(settings, dataset="scale5k-28", epochs=8)
    assert control.rotation_range == 45 and control.profile_key.endswith("-rotation_range=45")
    assert control.profile.dataset == "scale5k-28" and control.profile.epochs == 8
