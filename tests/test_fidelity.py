"""Layer lists, shapes and schedules that match the original code (luuf/understanding-STNs)."""
import pytest
import torch
from torch import nn

from stnlib.models import STNetwork


def layer_types(module: nn.Module) -> list[str]:
    return [type(m).__name__ for m in module.modules() if not list(m.children())]


def test_svhn_head_has_one_dropout_before_its_first_linear():
    net = STNetwork("SVHN-CNN", (3, 64, 64), 11)
    last_block = layer_types(net.layers[-1])
    head = layer_types(net.head)
    assert last_block[-1] == "Dropout" and head[0] == "Linear"  # 0.5, not 0.75, before the first Linear
    assert head[:9] == ["Linear", "ReLU", "Dropout"] * 3 and head.count("Linear") == 3 + 5


@pytest.mark.parametrize("name, features, types", [
    ("plankton-l", 32 * 23 * 23, ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d"]),
    ("plankton2", 32 * 47 * 47, ["Conv2d", "LeakyReLU", "Conv2d", "LeakyReLU", "MaxPool2d"]),
    ("plankton4", 64 * 23 * 23, ["Conv2d", "LeakyReLU", "Conv2d", "LeakyReLU", "MaxPool2d",
                                 "Conv2d", "LeakyReLU", "Conv2d", "LeakyReLU", "MaxPool2d"]),
])
def test_plankton_localizations_are_the_originals(name, features, types):
    net = STNetwork("plankton", (1, 95, 95), 121, localization=name, stn_placement=[0])
    body = net.localizations[0].body
    first_linear = next(m for m in body.modules() if isinstance(m, nn.Linear))
    assert first_linear.in_features == features
    assert layer_types(body)[:len(types)] == types


def test_cifar_localization_pads_its_convolutions():
    net = STNetwork("CNN2", (3, 32, 32), 10, localization="CNN2", stn_placement=[0])
    first_linear = next(m for m in net.localizations[0].body.modules() if isinstance(m, nn.Linear))
    assert first_linear.in_features == 40 * 8 * 8 == 2560


def test_cifar_classifier_is_a_flat_list_of_24_layers_with_blocks_at_8_16_24():
    net = STNetwork("CNN2", (3, 32, 32), 10)
    assert len(net.layers) == 24 and net.blocks == (0, 8, 16, 24)
    assert [type(net.layers[i]).__name__ for i in (6, 7, 14, 15, 22, 23)] == ["MaxPool2d", "Dropout2d"] * 3
    c1 = STNetwork("CNN2", (3, 32, 32), 10, localization="FCN", stn_placement=[8])
    assert c1.architecture == "STN-C1" and c1(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def _lrs(switch, steps=10):
    from stnlib import RunConfig
    from stnlib.train import build_scheduler

    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(optimizer, RunConfig(switch_after_iterations=switch, divide_lr_by=10.0, epochs=1))
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_one_switch_value_divides_the_lr_every_n_iterations():
    assert _lrs([3]) == pytest.approx([1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001])


def test_several_switch_values_divide_the_lr_once_at_each():
    assert _lrs([3, 5]) == pytest.approx([1, 1, 1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.01, 0.01])


def test_translated_and_scaled_mnist_normalize_with_the_originals_constants():
    from stnlib.data import load_dataset

    assert (load_dataset("translate5k").mean, load_dataset("translate5k").std) == ((0.0363,), (0.1870,))
    assert (load_dataset("scale5k").mean, load_dataset("scale5k").std) == ((0.0414,), (0.1751,))
    assert load_dataset("mnist5k").mean == (0.1307,)


def test_which_accuracy_the_original_printed():
    from stnlib.train import original_reported_accuracy

    assert [original_reported_accuracy(d) for d in ("mnist", "mnist5k", "translate5k", "scale")] == ["test_accuracy"] * 4
    assert original_reported_accuracy("cifar10") == original_reported_accuracy("svhn") == "last_epoch_test_accuracy"


def test_cli_help_says_where_stnlib_differs_from_the_original():
    from stnlib.learn import build_parser

    text = build_parser().format_help()
    assert "where stnlib differs from the original" in text and "seed + r" in text
    assert "one value N divides it every N iterations" in " ".join(text.split())


def _fcn_localization():
    from stnlib.models import STNetwork

    return STNetwork("CNN", (1, 28, 28), localization="FCN", stn_placement=[0]).localizations[0]


def test_weight_decay_pulls_theta_toward_the_identity():
    loc = _fcn_localization()
    loc.set_constant_theta(torch.tensor([[0.5, 0.2, 0.1], [-0.3, 0.6, 0.0]]))
    optimizer = torch.optim.SGD(loc.parameters(), lr=0.1, weight_decay=1.0)
    x = torch.rand(4, 1, 28, 28)
    for _ in range(200):
        optimizer.zero_grad()
        (loc(x) * 0).sum().backward()  # no signal from a loss: weight decay alone
        optimizer.step()
    torch.testing.assert_close(loc(x)[0], torch.eye(2, 3), atol=1e-4, rtol=0)


def test_weights_saved_with_the_identity_in_the_bias_load_to_the_same_theta():
    loc = _fcn_localization()
    theta = torch.tensor([[0.9, -0.2, 0.1], [0.2, 0.9, -0.1]])
    loc.set_constant_theta(theta)
    old_format = {k: v.clone() for k, v in loc.state_dict().items() if k != "identity"}
    old_format["affine.bias"] = theta.flatten().clone()  # how earlier versions stored it
    fresh = _fcn_localization()
    fresh.load_state_dict(old_format)
    torch.testing.assert_close(fresh(torch.rand(2, 1, 28, 28))[0], theta)
    assert "identity" in fresh.state_dict()


def test_sl_iterations_on_a_downsampling_dataset_read_the_full_size_image():
    """stnlib's reading of SL iterations on translated MNIST (README: where stnlib differs)."""
    net = STNetwork("CNN", (1, 60, 60), localization="FCN", stn_placement=[0, 0], st_mode="loop", st_downsample=2)
    records = net.inspect(torch.rand(2, 1, 60, 60)).sts
    assert [tuple(r.output.shape[-2:]) for r in records] == [(60, 60), (30, 30)]  # only the last is halved
    assert all(tuple(r.source.shape[-2:]) == (60, 60) for r in records)  # every iteration resamples the input
    assert len(net.localizations) == 1  # one shared localization serves both iterations


def test_planktonset_augmentation_is_one_warp_with_border_padding():
    from stnlib.data import Batch
    from stnlib.data.transforms import RandomAffine

    image = torch.zeros(1, 1, 95, 95)
    image[..., :, :3] = 1.0  # an organism touching the left edge
    augment = RandomAffine(degrees=0.0, translate=10.0, shear=0.0, zoom=1.0)
    moved = augment(Batch(image, torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long)),
                    torch.Generator().manual_seed(0))
    shift_pixels = moved.true.shift[0, 0].item() * 95 / 2
    assert 3 < shift_pixels <= 10  # this draw moves the content right by a few pixels (sub-pixel amounts allowed)
    # Border padding repeats the edge column into the uncovered strip; zero fill would leave it dark.
    assert (moved.images[0, 0, 47, :3] == 1.0).all()
    assert augment.padding_mode == "border"
