"""The p4 group convolutions and the P4CNN: equivariance to quarter turns, to float precision."""
from __future__ import annotations

import pytest
import torch

from stnlib import geometry
from stnlib.models import CLASSIFIERS, STNetwork
from stnlib.models.equivariant import GroupConv2d, InvariantPool, LiftingConv2d


def turn(x: torch.Tensor, k: int = 1) -> torch.Tensor:
    """``k`` counter-clockwise quarter turns of the last two dimensions."""
    return torch.rot90(x, k, dims=(-2, -1))


def shift_orientations(maps: torch.Tensor, steps: int) -> torch.Tensor:
    """Group maps ``(B, C * 4, H, W)`` with each channel's four orientations rolled by ``steps``."""
    return maps.unflatten(1, (-1, 4)).roll(steps, dims=2).flatten(1, 2)


@pytest.fixture
def images():
    torch.manual_seed(0)
    return torch.rand(3, 2, 28, 28, dtype=torch.float64)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_lifting_turns_the_maps_and_shifts_the_orientations(images, k):
    lift = LiftingConv2d(2, 5, kernel_size=9).double()
    torch.testing.assert_close(lift(turn(images, k)), shift_orientations(turn(lift(images), k), k), atol=1e-12, rtol=0)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_group_convolution_turns_the_maps_and_shifts_the_orientations(images, k):
    lift, group = LiftingConv2d(2, 3, kernel_size=9).double(), GroupConv2d(3, 4, kernel_size=7).double()
    maps = torch.relu(lift(images))
    turned = shift_orientations(turn(maps, k), k)  # what the lifting layer gives for the turned images
    torch.testing.assert_close(group(turned), shift_orientations(turn(group(maps), k), k), atol=1e-12, rtol=0)


def test_the_equivariance_is_not_trivial(images):
    lift = LiftingConv2d(2, 3, kernel_size=9).double()
    maps = lift(images)
    assert (lift(turn(images)) - turn(maps)).abs().max() > 0.01  # the orientations really move
    assert (shift_orientations(maps, 1) - maps).abs().max() > 0.01


def test_invariant_pool_takes_the_maximum_over_orientations_and_positions():
    maps = torch.arange(2 * 8 * 3 * 3, dtype=torch.float32).reshape(2, 8, 3, 3)
    pooled = InvariantPool()(maps)
    assert pooled.shape == (2, 2) and torch.equal(pooled[:, 0], maps[:, :4].amax(dim=(1, 2, 3)))


def test_p4cnn_is_registered_with_about_the_cnns_size():
    assert "P4CNN" in CLASSIFIERS
    count = lambda name: sum(p.numel() for p in STNetwork(name, (1, 28, 28)).parameters())
    assert abs(count("P4CNN") - count("CNN")) / count("CNN") < 0.05


def test_p4cnn_logits_are_invariant_to_quarter_turns_untrained_and_trained(tiny):
    torch.manual_seed(0)
    net = STNetwork("P4CNN", (1, 28, 28)).double()
    images = tiny.train_images[:8].double()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for step in range(6):  # untrained first, then after a few optimizer steps
        net.eval()
        with torch.no_grad():
            logits = net(images)
            for k in (1, 2, 3):
                torch.testing.assert_close(net(turn(images, k)), logits, atol=1e-10, rtol=0)
            # geometry.rotate by 90 degrees samples pixel centres (its grid is float32): the same, to ~1e-6
            torch.testing.assert_close(net(geometry.rotate(images, 90.0)), logits, atol=1e-6, rtol=1e-5)
        net.train()
        loss = torch.nn.functional.cross_entropy(net(images), tiny.train_labels[:8])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_an_st_can_sit_in_front_of_the_p4cnn():
    net = STNetwork("P4CNN", (1, 28, 28), localization="FCN", stn_placement=[0])
    assert net.architecture == "STN-C0" and net(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_a_channels_last_p4cnn_runs_its_maps_channels_last_with_the_same_logits():
    torch.manual_seed(0)
    images = torch.rand(4, 1, 28, 28)  # one input channel: the layout NCHW strides would leave ambiguous
    model = STNetwork("P4CNN", (1, 28, 28)).eval()
    expected = model(images)
    model = model.to(memory_format=torch.channels_last)
    maps = []
    for layer in model.layers:
        if isinstance(layer, (LiftingConv2d, GroupConv2d)):
            layer.register_forward_hook(lambda module, inputs, output: maps.append(output))
    logits = model(images)
    assert len(maps) == 2 and all(m.is_contiguous(memory_format=torch.channels_last) and not m.is_contiguous()
                                  for m in maps)
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-5)
