"""``--precision auto``: the faster of fp32 and bf16, measured for the model at hand and cached per machine."""
from __future__ import annotations

import json

import pytest
import torch

import stnlib.precision
from stnlib import RunConfig
from stnlib.models import build_model
from stnlib.precision import CACHE_FILE, choose_precision, faster, measure
from stnlib.train import Trainer, fit
from test_training import config


def tiny_model(tiny):
    torch.manual_seed(0)
    return build_model(RunConfig(model="CNN", localization="FCN", stn_placement=[0], epochs=1), tiny).to(
        memory_format=torch.channels_last)


@pytest.mark.parametrize("seconds, expected", [
    ({"fp32": 0.050, "bf16": 0.150}, "fp32"),  # AVX-512 BF16 without AMX: bf16 about 3x slower
    ({"fp32": 0.100, "bf16": 0.040}, "bf16"),  # where bf16 pays, it is chosen
    ({"fp32": 0.070, "bf16": 0.070}, "fp32"),  # a tie keeps full precision
    ({"fp32": 0.070}, "fp32"),
])
def test_the_faster_precision_is_chosen(seconds, expected):
    assert faster(seconds) == expected


@pytest.mark.parametrize("fp32, bf16", [(0.05, 0.15), (0.10, 0.04)])
def test_auto_never_picks_a_precision_measured_slower(tiny, tmp_path, monkeypatch, fp32, bf16):
    model = tiny_model(tiny)
    monkeypatch.setattr(stnlib.precision, "measure", lambda *args, **kwargs: {"fp32": fp32, "bf16": bf16})
    choice = choose_precision(model, (1, 28, 28), 16, tmp_path)
    slower = "bf16" if fp32 < bf16 else "fp32"
    assert choice.precision != slower and not choice.cached
    assert choice.seconds == {"fp32": fp32, "bf16": bf16}
    assert f"a training step of 16 images: fp32 {fp32 * 1000:.0f} ms, bf16 {bf16 * 1000:.0f} ms" in choice.reason()


def test_the_choice_is_measured_once_per_machine_and_model(tiny, tmp_path, monkeypatch):
    model = tiny_model(tiny)
    monkeypatch.setattr(stnlib.precision, "measure", lambda *args, **kwargs: {"fp32": 0.2, "bf16": 0.1})
    first = choose_precision(model, (1, 28, 28), 16, tmp_path)
    assert first.precision == "bf16" and first.cache == tmp_path / CACHE_FILE

    def no_second_measurement(*args, **kwargs):
        raise AssertionError("measured again although the choice is cached")
    monkeypatch.setattr(stnlib.precision, "measure", no_second_measurement)
    again = choose_precision(model, (1, 28, 28), 16, tmp_path)
    assert again.cached and again.precision == "bf16" and "measured earlier on this machine" in again.reason()
    stored = json.loads((tmp_path / CACHE_FILE).read_text())
    (key, entry), = stored.items()
    assert "torch " + torch.__version__ in key and "STN-C0" in key and "x 16" in key
    assert entry["chosen"] == "bf16"
    # another batch size, or another model, is another measurement
    with pytest.raises(AssertionError, match="measured again"):
        choose_precision(model, (1, 28, 28), 32, tmp_path)


def test_a_damaged_cache_is_measured_again_and_an_unwritable_one_left_alone(tiny, tmp_path, monkeypatch):
    model = tiny_model(tiny)
    monkeypatch.setattr(stnlib.precision, "measure", lambda *args, **kwargs: {"fp32": 0.1, "bf16": 0.3})
    (tmp_path / CACHE_FILE).write_text("{not json")
    assert choose_precision(model, (1, 28, 28), 16, tmp_path).precision == "fp32"
    assert json.loads((tmp_path / CACHE_FILE).read_text())
    (tmp_path / "a-file").write_text("")
    choice = choose_precision(model, (1, 28, 28), 16, tmp_path / "a-file" / "below")
    assert choice.precision == "fp32" and choice.cache is None


def test_measuring_leaves_the_model_and_the_random_streams_as_they_were(tiny):
    model = tiny_model(tiny)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    state = torch.get_rng_state()
    seconds = measure(model, (1, 28, 28), 8, rounds=2)
    assert set(seconds) == {"fp32", "bf16"} and all(s > 0 for s in seconds.values())
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_a_run_at_auto_trains_in_the_precision_measured_faster_and_says_so(tiny, tmp_path):
    lines = []
    result = fit(config(tmp_path, epochs=1, precision="auto", data_root=str(tmp_path / "cache")), data=tiny,
                 progress=False, log=lines.append)[0]
    (entry,) = json.loads((tmp_path / "cache" / CACHE_FILE).read_text()).values()
    assert result.metrics["precision"] == faster(entry["seconds"]) == entry["chosen"]
    assert any(line.startswith(f"precision auto: {entry['chosen']}, the faster here") for line in lines)


def test_a_resumed_run_keeps_the_precision_it_began_in(tiny, tmp_path, monkeypatch):
    settings = config(tmp_path, epochs=2, precision="auto", data_root=str(tmp_path / "cache"))
    monkeypatch.setattr(stnlib.precision, "measure", lambda *args, **kwargs: {"fp32": 0.3, "bf16": 0.1})
    first = Trainer(settings, tiny, torch.device("cpu"), seed=0, progress=False, log=lambda _: None)
    first.train_epoch()
    saved = first.state_dict()
    (tmp_path / "cache" / CACHE_FILE).unlink()  # measured anew, and found the other way round
    monkeypatch.setattr(stnlib.precision, "measure", lambda *args, **kwargs: {"fp32": 0.1, "bf16": 0.3})
    resumed = Trainer(settings, tiny, torch.device("cpu"), seed=0, progress=False, log=lambda _: None)
    assert first.precision == "bf16" and resumed.precision == "fp32"
    resumed.load_state_dict(saved)
    assert resumed.precision == "bf16"
