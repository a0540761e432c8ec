"""Training options, each checked for what it does: iterations, added ST iterations, the learning-rate
multipliers, weight decay, Nesterov, --hook-llr, --runs with its resume, --quiet,
load_run on a device, and RunConfig.from_dict."""
from __future__ import annotations

import math
import sys

import pytest
import torch

import stnlib
from stnlib import RunConfig, geometry, learn
from stnlib.errors import ConfigError, StnlibError
from stnlib.models import STNetwork, build_model
from stnlib.train import Trainer, build_optimizer, fit
from test_cli import FAST
from test_training import config

QUIET = dict(progress=False, log=lambda _: None)


def trainer(tmp_path, tiny, **overrides) -> Trainer:
    return Trainer(config(tmp_path, **overrides), tiny, torch.device("cpu"), seed=0, progress=False,
                   log=lambda _: None)


def group_lrs(optimizer) -> dict[str, float]:
    return {group["name"]: group["lr"] for group in optimizer.param_groups}


# ----- how long -----
def test_iterations_are_rounded_down_to_whole_epochs(tmp_path, tiny):
    # 64 training images in batches of 16: 4 batches an epoch, so 9 iterations are 2 epochs.
    result = fit(config(tmp_path, epochs=None, iterations=9), data=tiny, **QUIET)[0]
    assert [e["epoch"] for e in result.history] == [1, 2]
    assert result.metrics["iterations"] == 8 and result.history[-1]["iteration"] == 8


def test_iterations_shorter_than_one_epoch_are_refused_before_anything_is_written(tmp_path, tiny):
    with pytest.raises(ConfigError, match="--iterations 3 is less than one epoch \\(4 batches of 16\\)"):
        fit(config(tmp_path, epochs=None, iterations=3), data=tiny, **QUIET)
    assert not (tmp_path / "run").exists()


# ----- added ST iterations -----
def test_add_iteration_minus_one_and_zero_grow_the_model_before_training(tmp_path, tiny):
    for when in (-1, 0):
        t = trainer(tmp_path, tiny, add_iteration=[when])
        assert t.model.architecture == "STN-C0x2" and len(t.model.localizations) == 1
        assert group_lrs(t.optimizer)["localization"] == pytest.approx(0.003)  # no halving before training


def test_add_iteration_during_training_halves_the_localization_lr(tmp_path, tiny):
    t = trainer(tmp_path, tiny, add_iteration=[2], epochs=1, loc_lr_multiplier=4.0)
    before = group_lrs(t.optimizer)
    t.run()
    after = group_lrs(t.optimizer)
    assert t.model.architecture == "STN-C0x2"
    assert after["localization"] == pytest.approx(before["localization"] / 2) == pytest.approx(0.006)
    assert after["classifier"] == pytest.approx(before["classifier"])


def test_add_iteration_with_load_model_keeps_the_loaded_localization(tmp_path, tiny):
    fit(config(tmp_path, epochs=1, name=str(tmp_path / "one")), data=tiny, **QUIET)
    saved = stnlib.load_run(tmp_path / "one").model.localizations[0].state_dict()
    for when in (-1, 0):
        t = trainer(tmp_path, tiny, load_model=str(tmp_path / "one"), add_iteration=[when])
        assert t.model.architecture == "STN-C0x2"
        for key, value in t.model.localizations[0].state_dict().items():
            assert torch.equal(value, saved[key]), key


def test_an_added_iteration_survives_save_and_load(tmp_path, tiny):
    fit(config(tmp_path, epochs=1, add_iteration=[2]), data=tiny, **QUIET)
    run = stnlib.load_run(tmp_path / "run")
    assert run.architecture == "STN-C0x2" and run.model.extra_iterations == 1
    assert [(s.index, s.iteration) for s in run.model.slots] == [(0, 0), (0, 1)]


# ----- learning rates and the optimizer -----
def test_learning_rate_multipliers_per_group(tmp_path, tiny):
    cfg = config(tmp_path, stn_placement=[3], optimizer="sgd", lr=0.1, loc_lr_multiplier=4.0, pre_stn_multiplier=0.5)
    model = build_model(cfg, tiny.spec)
    lrs = group_lrs(build_optimizer(model, cfg))
    assert lrs == pytest.approx({"classifier": 0.1, "pre_st": 0.05, "localization": 0.4})


def test_a_zero_pre_st_multiplier_freezes_the_layers_before_the_st(tmp_path, tiny):
    t = trainer(tmp_path, tiny, stn_placement=[3], optimizer="sgd", lr=0.1, pre_stn_multiplier=0.0, epochs=1)
    before = [p.detach().clone() for layer in t.model.layers[:3] for p in layer.parameters()]
    after_layers = [p.detach().clone() for layer in t.model.layers[3:] for p in layer.parameters()]
    t.run()
    assert all(torch.equal(a, b) for a, b in zip(before, (p for layer in t.model.layers[:3] for p in layer.parameters())))
    assert not all(torch.equal(a, b) for a, b in zip(after_layers, (p for layer in t.model.layers[3:]
                                                                     for p in layer.parameters())))


def test_weight_decay_shrinks_the_weights(tmp_path, tiny):
    norms = {}
    for decay in (0.0, 0.5):
        t = trainer(tmp_path, tiny, optimizer="sgd", lr=0.05, weight_decay=decay, epochs=1)
        t.run()
        assert all(g["weight_decay"] == decay for g in t.optimizer.param_groups)
        norms[decay] = sum(p.detach().norm() ** 2 for layer in t.model.layers for p in layer.parameters()).item()
    assert norms[0.5] < 0.95 * norms[0.0]


def test_nesterov_is_sgd_with_nesterov_momentum(tmp_path, tiny):
    cfg = config(tmp_path, optimizer="nesterov", lr=0.1, momentum=0.9)
    optimizer = build_optimizer(build_model(cfg, tiny.spec), cfg)
    assert isinstance(optimizer, torch.optim.SGD)
    assert all(g["nesterov"] and g["momentum"] == 0.9 for g in optimizer.param_groups)
    history = fit(dataclasses_replace(cfg, epochs=1), data=tiny, **QUIET)[0].history
    assert math.isfinite(history[0]["train_loss"])


def dataclasses_replace(cfg, **changes):
    import dataclasses

    return dataclasses.replace(cfg, **changes)


def test_hook_llr_scales_the_gradient_instead_of_the_learning_rate(tmp_path, tiny):
    plain = config(tmp_path, loc_lr_multiplier=8.0)
    hooked = dataclasses_replace(plain, hook_llr=True)
    assert group_lrs(build_optimizer(build_model(plain, tiny.spec), plain))["localization"] == pytest.approx(0.024)
    assert group_lrs(build_optimizer(build_model(hooked, tiny.spec), hooked))["localization"] == pytest.approx(0.003)
    grads = {}
    for name, cfg in (("plain", plain), ("hooked", hooked)):
        torch.manual_seed(0)
        model = build_model(cfg, tiny.spec)
        model.localizations[0].set_constant_theta(geometry.theta_from_angle(torch.tensor([17.0]))[0])
        torch.nn.functional.cross_entropy(model(tiny.train_images[:8]), tiny.train_labels[:8]).backward()
        grads[name] = model.localizations[0].affine.bias.grad.clone()
    assert torch.allclose(grads["hooked"], 8.0 * grads["plain"], rtol=1e-4, atol=1e-7)
    assert grads["plain"].abs().sum() > 0


def test_theta_grad_scale_scales_the_gradient_and_keeps_the_localization_learning_rate(tmp_path, tiny):
    plain = config(tmp_path, loc_lr_multiplier=8.0, stn_placement=[3], loop=True)
    scaled = dataclasses_replace(plain, theta_grad_scale=5.0)
    assert group_lrs(build_optimizer(build_model(scaled, tiny.spec), scaled))["localization"] == pytest.approx(0.024)
    grads = {}
    for name, cfg in (("plain", plain), ("scaled", scaled)):
        torch.manual_seed(0)
        model = build_model(cfg, tiny.spec)
        with torch.no_grad():  # a theta that depends on the shared block, so its gradient reaches it
            model.localizations[0].affine.weight.normal_(0, 0.01)
        torch.nn.functional.cross_entropy(model(tiny.train_images[:8]), tiny.train_labels[:8]).backward()
        grads[name] = {"head": model.localizations[0].affine.bias.grad.clone(),
                       "shared": model.layers[0].weight.grad.clone()}
    assert torch.allclose(grads["scaled"]["head"], 5.0 * grads["plain"]["head"], rtol=1e-4, atol=1e-7)
    # the shared block gets the classifier's gradient unscaled plus the localization's times 5
    assert not torch.allclose(grads["scaled"]["shared"], grads["plain"]["shared"])
    assert not torch.allclose(grads["scaled"]["shared"], 5.0 * grads["plain"]["shared"])


def test_loc_copies_lr_multiplier_gives_stn_dl_copies_their_own_learning_rate(tmp_path, tiny):
    deep = config(tmp_path, loc_lr_multiplier=10.0, stn_placement=[3], deep=True)
    equalised = dataclasses_replace(deep, loc_copies_lr_multiplier=1.0)
    model = build_model(equalised, tiny.spec)
    optimizer = build_optimizer(model, equalised)
    assert group_lrs(optimizer) == pytest.approx({"classifier": 0.003, "localization": 0.03,
                                                   "localization_copies": 0.003})
    copies = {id(p) for g in optimizer.param_groups if g["name"] == "localization_copies" for p in g["params"]}
    assert copies == {id(p) for p in model.localizations[0].prefix.parameters()} and copies
    grouped = [id(p) for g in optimizer.param_groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())  # every parameter once
    # without the option the copies learn with the rest of the localization, as in the original
    assert "localization_copies" not in group_lrs(build_optimizer(build_model(deep, tiny.spec), deep))


@pytest.mark.parametrize("changes, message", [
    (dict(loc_copies_lr_multiplier=1.0), "needs --deep"),
    (dict(deep=True, loc_copies_lr_multiplier=0.0), "must be a finite number > 0"),
    (dict(theta_grad_scale=float("nan")), "must be a finite number > 0"),
    (dict(theta_grad_scale=2.0, hook_llr=True), "exclude each other"),
    (dict(localization=None, stn_placement=[], theta_grad_scale=2.0), "--theta-grad-scale needs an ST"),
])
def test_localization_learning_options_refuse_what_they_cannot_mean(tmp_path, changes, message):
    with pytest.raises(ConfigError, match=message):
        dataclasses_replace(config(tmp_path, stn_placement=[3]), **changes).validate()


# ----- runs, output, precision, devices -----
def test_several_runs_write_a_summary_and_resume_only_the_unfinished_one(tmp_path, tiny):
    cfg = config(tmp_path, runs=2, epochs=1)
    fit(cfg, data=tiny, **QUIET)
    summary = stnlib.runs.read_json(tmp_path / "run" / "metrics.json")
    assert len(summary["test_accuracy_runs"]) == 2 and summary["architecture"] == "STN-C0"
    first = (tmp_path / "run" / "run-0" / "final.pt").stat().st_mtime_ns
    (tmp_path / "run" / "run-1" / "metrics.json").unlink()  # as if stopped before run 1's final evaluation
    results = fit(cfg, resume=True, data=tiny, **QUIET)
    assert [r.folder.name for r in results] == ["run-0", "run-1"]
    assert (tmp_path / "run" / "run-0" / "final.pt").stat().st_mtime_ns == first
    assert (tmp_path / "run" / "run-1" / "metrics.json").is_file()
    resumed = stnlib.runs.read_json(tmp_path / "run" / "metrics.json")
    assert resumed["test_accuracy_runs"][0] == summary["test_accuracy_runs"][0]


@pytest.mark.slow
def test_quiet_hides_the_progress_bars(tmp_path, capsys):
    loud = [a for a in FAST if a != "-q"]
    assert learn.main(loud + ["-e", "1", "-n", str(tmp_path / "loud"), "--limit", "256"]) == 0
    assert "epoch 1/1:" in capsys.readouterr().err  # tqdm's bar
    assert learn.main(loud + ["-e", "1", "-n", str(tmp_path / "quiet"), "--limit", "256", "-q"]) == 0
    assert "epoch 1/1:" not in capsys.readouterr().err


def test_an_isa_cap_below_bf16_rules_out_native_bf16(monkeypatch):
    import stnlib.device

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # how a newer CPU emulates a laptop's
    assert not stnlib.device.cpu_has_bf16()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_memory_is_kept_for_the_next_step_unless_turned_off(monkeypatch):
    import ctypes

    from stnlib.device import keep_freed_memory_for_reuse

    if not hasattr(ctypes.CDLL(None), "mallopt"):
        pytest.skip("not glibc")
    assert keep_freed_memory_for_reuse() and keep_freed_memory_for_reuse()  # idempotent
    monkeypatch.setenv("STNLIB_KEEP_FREED_MEMORY", "0")
    assert not keep_freed_memory_for_reuse()


def test_load_run_puts_the_model_on_the_device_asked_for(tmp_path, tiny):
    fit(config(tmp_path, epochs=1), data=tiny, **QUIET)
    run = stnlib.load_run(tmp_path / "run", device="cpu")
    assert {p.device.type for p in run.model.parameters()} == {"cpu"} and not run.model.training
    if not torch.cuda.is_available():
        with pytest.raises(StnlibError, match="no CUDA device"):
            stnlib.load_run(tmp_path / "run", device="cuda")


def test_run_config_from_dict_names_unknown_options():
    assert RunConfig.from_dict({"lr": 0.5, "epochs": 2}) == RunConfig(lr=0.5, epochs=2)
    with pytest.raises(ConfigError, match="unknown configuration option\\(s\\): learning_rate, zoom"):
        RunConfig.from_dict({"learning_rate": 0.5, "zoom": 2, "epochs": 1})


# ----- STN-SL with two placements -----
def test_sl_with_two_placements_composes_both_and_resamples_the_input():
    net = STNetwork("CNN", (1, 28, 28), localization="FCN", stn_placement=[0, 3], st_mode="loop").eval()
    assert net.architecture == "STN-SL0+SL1" and len(net.localizations) == 2
    net.localizations[0].set_constant_theta(geometry.theta_from_angle(torch.tensor([30.0]))[0])
    net.localizations[1].set_constant_theta(geometry.theta_from_angle(torch.tensor([20.0]))[0])
    images = torch.rand(2, 1, 28, 28)
    seen = net.inspect(images)
    assert [(r.index, r.iteration) for r in seen.sts] == [(0, 0), (3, 0)]
    assert all(r.source is not None and r.source.shape == images.shape for r in seen.sts)  # both resample the input
    angles = geometry.angle_from_theta(seen.sts[-1].theta)
    assert torch.allclose(angles, torch.full((2,), 50.0), atol=1e-5)
    expected = geometry.warp(images, seen.sts[-1].theta)
    assert torch.allclose(seen.sts[-1].output, expected, atol=1e-6)


def test_isa_caps_name_a_partial_stand_in_for_an_older_cpu(monkeypatch):
    from stnlib.device import AVX2_STAND_IN, ISA_CAP_VARIABLES, isa_caps

    for variable in (*ISA_CAP_VARIABLES.values(), "DNNL_MAX_CPU_ISA"):
        monkeypatch.delenv(variable, raising=False)
    assert isa_caps() == "none"
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    partial = isa_caps()
    assert "PARTIAL" in partial and "MKL (MKL_ENABLE_INSTRUCTIONS)" in partial and "ATen AVX2" in partial
    for variable, value in AVX2_STAND_IN.items():
        monkeypatch.setenv(variable, value)
    assert isa_caps() == "AVX2 (ATen, oneDNN, MKL)"
