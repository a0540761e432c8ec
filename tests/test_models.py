"""Every registered classifier x localization x kind of placement builds, runs forward and backward."""
import pytest
import torch

from stnlib import geometry
from stnlib.errors import ConfigError, InputShapeError, UnknownNameError
from stnlib.models import CLASSIFIERS, LOCALIZATIONS, STNetwork

# Localizations made for large canvases (translated MNIST) cannot reduce 28x28 inputs.
NATIVE_SIDE = {"CNNCNN": 60, "CNNCNNmp": 60}
MNIST_CLASSIFIERS = ("CNN", "CNNb", "FCN", "P4CNN")
# The other classifiers, with their input shape, and the localizations made for them (plus dense ones).
OTHER_CLASSIFIERS = {"SVHN-CNN": ((3, 64, 64), ("SVHN-l", "SVHN-d", "SVHN-s", "FCN")),
                     "plankton": ((1, 95, 95), ("plankton-l", "plankton2", "plankton4", "small")),
                     "CNN2": ((3, 32, 32), ("CNN2", "FCN"))}


def input_shape(model: str, localization: str = "FCN") -> tuple:
    if model in OTHER_CLASSIFIERS:
        return OTHER_CLASSIFIERS[model][0]
    side = NATIVE_SIDE.get(localization, 28)
    return (1, side, side)


def output_shape(model: str, batch: int) -> tuple:
    return (batch, 5, 11) if model == "SVHN-CNN" else (batch, 10)


def second_block(model: str) -> int:
    return STNetwork(model, input_shape(model)).blocks[1]


FOR_OTHER_DATA = {loc for _, locs in OTHER_CLASSIFIERS.values() for loc in locs} - {"FCN", "small"}
COMBINATIONS = [(m, loc) for m in MNIST_CLASSIFIERS for loc in sorted(set(LOCALIZATIONS) - FOR_OTHER_DATA)] + [
    (m, loc) for m, (_, locs) in OTHER_CLASSIFIERS.items() for loc in locs]
SLOW_CLASSIFIERS = {"SVHN-CNN"}  # half a second a case: 64 x 64 inputs through a wide network


def cases(combinations):
    """``COMBINATIONS`` as parameters, the slow classifiers' ones marked ``slow``."""
    return [pytest.param(m, loc, marks=pytest.mark.slow) if m in SLOW_CLASSIFIERS else (m, loc)
            for m, loc in combinations]


def test_the_combinations_cover_both_registries():
    assert {m for m, _ in COMBINATIONS} == set(CLASSIFIERS)
    assert {loc for _, loc in COMBINATIONS} == set(LOCALIZATIONS)


KINDS = {
    "C0": lambda b: dict(stn_placement=[0]),
    "Ck": lambda b: dict(stn_placement=[b]),
    "SLk": lambda b: dict(stn_placement=[b], st_mode="loop"),
    "DLk": lambda b: dict(stn_placement=[b], st_mode="deep"),
    "C0 iterated": lambda b: dict(stn_placement=[0, 0]),
    "SLk iterated": lambda b: dict(stn_placement=[b, b], st_mode="loop"),
    "C0+Ck with batchnorm": lambda b: dict(stn_placement=[0, b], batchnorm=True),
}


INPUT_KINDS = ("C0", "C0 iterated")
# Localizations whose convolutions and pooling need a larger map than the 64 x 10 x 10 after the
# second block of CNN and CNNb (128 x 10 x 10 for P4CNN; 26 x 26 for those made for 60-pixel canvases).
NEED_A_LARGER_MAP = {"CNN", "CNNb", "CNNmp", "CNNt", "CNNFCNb", "CNNFCNmp", "CNNCNN", "CNNCNNmp"}
DENSE = {"FCN", "FCNb", "small"}  # localizations that read a flat vector


def expected_refusal(model: str, localization: str, kind: str) -> str | None:
    """The error an impossible combination must give, or None when it must build and train."""
    if kind in INPUT_KINDS:
        return None
    if model == "FCN" and kind in ("Ck", "C0+Ck with batchnorm"):
        return "is a flat tensor of shape (256,), which an ST cannot resample"
    if model == "FCN" and localization not in DENSE:
        return f"localization '{localization}' cannot read a tensor of shape (256,)"
    if model in ("CNN", "CNNb", "P4CNN") and localization in NEED_A_LARGER_MAP:
        return f"localization '{localization}' cannot read a tensor of shape ({128 if model == 'P4CNN' else 64}, "
    return None


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("model, localization", cases(COMBINATIONS))
def test_every_combination_trains_or_is_refused_as_expected(model, localization, kind):
    shape = input_shape(model, localization)
    options = KINDS[kind](second_block(model))
    refusal = expected_refusal(model, localization, kind)
    if refusal is not None:
        with pytest.raises(ConfigError) as error:
            STNetwork(model, shape, 10, localization=localization, **options)
        assert refusal in str(error.value) and "\n" not in str(error.value)
        return
    net = STNetwork(model, shape, 10, localization=localization, **options)
    x = torch.rand(3, *shape, requires_grad=True)
    logits = net(x)
    assert logits.shape == output_shape(model, 3)
    logits.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in net.localizations.parameters())


@pytest.mark.parametrize("model", [pytest.param(m, marks=pytest.mark.slow) if m in SLOW_CLASSIFIERS else m
                                   for m in sorted(CLASSIFIERS)])
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_builds_for_every_classifier_with_a_dense_localization(model, kind):
    options, shape = KINDS[kind](second_block(model)), input_shape(model)
    if model == "FCN" and options.get("st_mode", "feature") == "feature" and options["stn_placement"] != [0, 0] \
            and options["stn_placement"] != [0]:
        with pytest.raises(ConfigError, match="flat tensor"):
            STNetwork(model, shape, localization="FCN", **options)
        return
    net = STNetwork(model, shape, localization="FCN", **options)
    assert net(torch.rand(2, *shape)).shape == output_shape(model, 2)


def test_a_fresh_st_is_the_identity():
    net = STNetwork("CNN", (1, 28, 28), localization="CNN", stn_placement=[0])
    x = torch.rand(4, 1, 28, 28)
    record = net.inspect(x).sts[0]
    torch.testing.assert_close(record.theta, geometry.identity_theta(4))
    torch.testing.assert_close(record.output, x)


def test_an_stn_c0_whose_theta_undoes_a_rotation_gives_back_the_input():
    net = STNetwork("CNN", (1, 28, 28), localization="FCN", stn_placement=[0])
    undo = geometry.theta_from_angle(torch.tensor([-40.0]))  # rotate back by 40 degrees
    with torch.no_grad():
        net.localizations[0].set_constant_theta(undo)
    digit = torch.zeros(1, 1, 28, 28)
    digit[..., 6:22, 12:16] = 1.0
    digit[..., 6:10, 12:20] = 1.0
    rotated = geometry.rotate(digit, 40.0)
    restored = net.inspect(rotated).sts[0].output
    torch.testing.assert_close(restored, geometry.rotate(rotated, -40.0, padding_mode="border"))
    assert (restored - digit).abs().mean() < 0.2 * (rotated - digit).abs().mean()  # only interpolation blur left


@pytest.mark.parametrize("placements, mode, name", [
    ([0], "feature", "STN-C0"), ([3], "feature", "STN-C1"), ([6], "feature", "STN-C2"),
    ([0, 0], "feature", "STN-C0x2"), ([0, 3], "feature", "STN-C0+C1"),
    ([3], "loop", "STN-SL1"), ([6, 6, 6], "loop", "STN-SL2x3"), ([3], "deep", "STN-DL1"), ([], "feature", "no ST"),
])
def test_readable_names(placements, mode, name):
    net = STNetwork("CNN", (1, 28, 28), localization="FCN" if placements else None, stn_placement=placements, st_mode=mode)
    assert net.architecture == name


def test_repeated_placement_shares_the_localization_only_when_iterative():
    shared = STNetwork("CNN", (1, 28, 28), localization="FCN", stn_placement=[0, 0, 0])
    separate = STNetwork("CNN", (1, 28, 28), localization="FCN", stn_placement=[0, 0, 0], iterative=False)
    assert len(shared.localizations) == 1 and len(separate.localizations) == 3


def test_iterations_compose_thetas_and_resample_the_untransformed_input():
    net = STNetwork("CNN", (1, 28, 28), localization="FCN", stn_placement=[0, 0])
    step = geometry.theta_from_angle(torch.tensor([15.0]))
    with torch.no_grad():
        net.localizations[0].set_constant_theta(step)
    x = torch.rand(2, 1, 28, 28)
    records = net.inspect(x).sts
    assert geometry.angle_from_theta(records[1].theta).tolist() == pytest.approx([30.0, 30.0], abs=1e-4)
    torch.testing.assert_close(records[1].output, geometry.warp(x, records[1].theta, padding_mode="zeros"))


def test_add_iteration_appends_a_shared_iteration():
    net = STNetwork("CNN", (1, 28, 28), localization="FCN", stn_placement=[3], st_mode="loop")
    net.add_iteration()
    assert net.architecture == "STN-SL1x2" and len(net.localizations) == 1
    assert len(net.inspect(torch.rand(2, 1, 28, 28)).sts) == 2


def test_deep_localization_owns_fresh_copies_of_the_classifier_layers():
    torch.manual_seed(0)
    net = STNetwork("CNN", (1, 28, 28), localization="FCN", stn_placement=[3], st_mode="deep")
    copy = net.localizations[0].prefix
    assert len(copy) == 3
    assert not torch.equal(copy[0].weight, net.layers[0].weight)
    assert not any(p is q for p in copy.parameters() for q in net.layers.parameters())


def test_loop_localization_uses_the_classifier_layers_themselves():
    net = STNetwork("CNN", (1, 28, 28), localization="FCN", stn_placement=[3], st_mode="loop")
    groups = net.parameter_groups()
    assert len(net.localizations[0].prefix) == 0
    assert {id(p) for p in groups["pre_st"]} == {id(p) for p in net.layers[:3].parameters()}


def test_parameter_groups_cover_every_parameter_once():
    for mode in ("feature", "loop", "deep"):
        net = STNetwork("CNN", (1, 28, 28), localization="FCN", stn_placement=[3], st_mode=mode)
        grouped = [id(p) for ps in net.parameter_groups().values() for p in ps]
        assert sorted(grouped) == sorted(id(p) for p in net.parameters())


def test_hook_llr_scales_the_gradient_through_the_st():
    def grads(scale):
        torch.manual_seed(0)
        net = STNetwork("CNN", (1, 28, 28), localization="FCN", stn_placement=[0], grad_scale=scale)
        torch.manual_seed(1)
        net(torch.rand(4, 1, 28, 28)).sum().backward()
        return net.localizations[0].affine.weight.grad
    torch.testing.assert_close(grads(0.1), grads(1.0) * 0.1)


def test_normalisation_happens_inside_the_model():
    torch.manual_seed(0)
    plain = STNetwork("FCN", (1, 28, 28))
    torch.manual_seed(0)
    normalised = STNetwork("FCN", (1, 28, 28), normalize=True, mean=(0.5,), std=(0.25,))
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(normalised(x), plain((x - 0.5) / 0.25))


def test_st_downsampling_halves_the_classifier_input():
    net = STNetwork("CNN", (1, 60, 60), localization="CNNt", stn_placement=[0], st_downsample=2)
    record = net.inspect(torch.rand(2, 1, 60, 60)).sts[0]
    assert record.output.shape == (2, 1, 30, 30)


@pytest.mark.parametrize("kwargs, message", [
    (dict(stn_placement=[7]), "past the CNN classifier"),
    (dict(model_parameters=[1, 2, 3]), "takes 2 parameters"),
    (dict(localization_parameters=[5]), "takes 3 parameters"),
])
def test_impossible_models_are_refused_in_one_line(kwargs, message):
    options = dict(localization="CNN", stn_placement=[0]) | kwargs
    with pytest.raises(ConfigError, match=message):
        STNetwork(options.pop("model", "CNN"), (1, 28, 28), **options)


def test_unknown_names():
    with pytest.raises(UnknownNameError, match="unknown model 'ResNet'"):
        STNetwork("ResNet", (1, 28, 28))
    with pytest.raises(UnknownNameError, match="unknown localization 'XYZ'"):
        STNetwork("CNN", (1, 28, 28), localization="XYZ", stn_placement=[0])


def test_three_channel_and_non_square_sizes_work():
    net = STNetwork("CNN", (3, 32, 40), localization="FCN", stn_placement=[0, 3])
    assert net(torch.rand(2, 3, 32, 40)).shape == (2, 10)


def test_theta_is_computed_in_float32_under_bf16_autocast():
    model = STNetwork("CNN", (1, 28, 28), localization="FCN", stn_placement=[0])
    with torch.no_grad():
        model.localizations[0].affine.bias.add_(torch.tensor([1e-3, 0, 0, 0, 0, 0]))
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        theta = model.inspect(torch.rand(2, 1, 28, 28)).sts[0].theta
    assert theta.dtype == torch.float32
    assert theta[0, 0, 0].item() == pytest.approx(1.001, abs=1e-6)  # bf16 would round 1.001 to 1.0


def test_features_runs_the_classifiers_first_layers_without_any_st():
    torch.manual_seed(0)
    net = STNetwork("CNN", (1, 28, 28), localization="FCN", stn_placement=[3], normalize=True, mean=(0.5,), std=(0.25,))
    x = torch.rand(2, 1, 28, 28)
    by_hand = (x - 0.5) / 0.25
    for layer in net.layers[:3]:
        by_hand = layer(by_hand)
    torch.testing.assert_close(net.features(x, upto=3), by_hand)
    torch.testing.assert_close(net.inspect(x).sts[0].source, by_hand)  # what the ST at index 3 reads
    with pytest.raises(InputShapeError):
        net.features(torch.rand(2, 3, 28, 28), upto=3)


def test_the_network_keeps_its_spec_and_one_slot_per_st_application():
    net = STNetwork("CNN", (1, 28, 28), localization="FCN", stn_placement=[0, 0, 3], iterative=True)
    assert net.spec.stn_placement == [0, 0, 3] and net.spec.model == "CNN"
    assert [(s.index, s.localization_number, s.iteration) for s in net.slots] == [(0, 0, 0), (0, 0, 1), (3, 1, 0)]
    separate = STNetwork("CNN", (1, 28, 28), localization="FCN", stn_placement=[0, 0], iterative=False)
    assert [(s.localization_number, s.iteration) for s in separate.slots] == [(0, 0), (1, 1)]
    records = net.inspect(torch.rand(2, 1, 28, 28)).sts
    assert [(r.slot_number, r.index, r.iteration) for r in records] == [(0, 0, 0), (1, 0, 1), (2, 3, 0)]
