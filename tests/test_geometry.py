"""The maths of theta: identity, rotations, composition, angles (the checks live next to the maths)."""
import pytest
import torch
import torchvision.transforms.functional as TF

from stnlib import geometry


@pytest.fixture
def images():
    return torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def test_identity_theta_is_an_identity_warp(images):
    out = geometry.warp(images, geometry.identity_theta(len(images)))
    torch.testing.assert_close(out, images)


@pytest.mark.parametrize("quarter_turns", [1, 2, 3, -1])
def test_rotation_by_multiples_of_90_matches_rot90(images, quarter_turns):
    out = geometry.rotate(images, 90.0 * quarter_turns)
    torch.testing.assert_close(out, torch.rot90(images, quarter_turns, dims=(-2, -1)), atol=1e-5, rtol=0)


def test_rotation_direction_matches_torchvision():
    image = torch.zeros(1, 1, 21, 21)
    image[..., 3:8, 9:12] = 1.0  # a bar above the centre
    ours = geometry.rotate(image, 30.0)
    theirs = TF.rotate(image, 30.0, interpolation=TF.InterpolationMode.BILINEAR)
    assert (ours - theirs).abs().mean() < 0.02


@pytest.mark.parametrize("angle", [-179.0, -90.0, -33.3, 0.0, 12.5, 90.0, 150.0])
def test_angle_theta_angle_round_trip(angle):
    theta = geometry.theta_from_angle(torch.tensor([angle]))
    assert geometry.angle_from_theta(theta).item() == pytest.approx(angle, abs=1e-4)


def test_angle_matches_the_original_convention_within_90_degrees():
    angles = torch.tensor([-80.0, -20.0, 0.0, 45.0, 89.0])
    theta = geometry.theta_from_angle(angles)
    original = torch.rad2deg(-torch.atan(theta[:, 0, 1] / theta[:, 0, 0]))
    torch.testing.assert_close(geometry.angle_from_theta(theta), original)


def test_theta_then_its_inverse_gives_back_the_input():
    image = torch.zeros(1, 1, 32, 32)
    image[..., 10:22, 12:20] = 1.0
    theta = geometry.theta_from_angle(torch.tensor([37.0]), scale=0.9, shift=torch.tensor([[0.05, -0.1]]))
    there = geometry.warp(image, theta)
    back = geometry.warp(there, geometry.invert(theta))
    assert (back - image).abs().mean() < 0.03


def test_compose_equals_warping_twice(images):
    a = geometry.theta_from_angle(torch.full((5,), 20.0))
    b = geometry.theta_from_angle(torch.full((5,), 25.0))
    once = geometry.warp(images, geometry.compose(a, b))
    torch.testing.assert_close(once, geometry.rotate(images, 45.0), atol=1e-5, rtol=0)


def test_compose_is_outer_then_inner_for_transforms_that_do_not_commute():
    side = 33
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, side), torch.linspace(-1, 1, side), indexing="ij")
    ramp = torch.stack([xs, ys])[None]  # (1, 2, H, W): bilinear sampling of a linear image is exact
    outer = geometry.theta_from_angle(torch.tensor([25.0]), scale=torch.tensor([0.8]), shift=torch.tensor([[0.1, -0.05]]))
    inner = torch.tensor([[[0.7, 0.2, -0.1], [0.0, 0.9, 0.05]]])  # shear and anisotropic scale
    assert not torch.allclose(geometry.compose(outer, inner), geometry.compose(inner, outer), atol=1e-2)
    twice = geometry.warp(geometry.warp(ramp, outer), inner)
    centre = (..., slice(10, 23), slice(10, 23))  # sampled inside the image by both warps
    torch.testing.assert_close(geometry.warp(ramp, geometry.compose(outer, inner))[centre], twice[centre],
                               atol=1e-5, rtol=0)
    swapped = geometry.warp(ramp, geometry.compose(inner, outer))
    assert (swapped - twice)[centre].abs().max() > 0.05


def test_scale_and_shift_read_back():
    theta = geometry.theta_from_angle(torch.tensor([30.0, -60.0]), scale=torch.tensor([2.0, 0.5]),
                                      shift=torch.tensor([[0.2, -0.1], [0.0, 0.3]]))
    torch.testing.assert_close(geometry.scale_from_theta(theta), torch.tensor([2.0, 0.5]))
    torch.testing.assert_close(geometry.shift_from_theta(theta), torch.tensor([[0.2, -0.1], [0.0, 0.3]]))
    torch.testing.assert_close(geometry.angle_from_theta(theta), torch.tensor([30.0, -60.0]))


def test_warp_output_size():
    out = geometry.warp(torch.rand(2, 1, 60, 60), geometry.identity_theta(2), size=(30, 30))
    assert out.shape == (2, 1, 30, 30)


def test_a_non_finite_theta_is_refused_before_sampling():
    theta = geometry.identity_theta(2)
    theta[1, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="theta is not finite"):
        geometry.warp(torch.rand(2, 1, 8, 8), theta)


def test_angle_is_the_nearest_rotation_so_shear_and_uneven_scale_do_not_distort_it():
    angles = torch.tensor([25.0, -60.0])
    rotation = geometry.theta_from_angle(angles)
    # R @ S with S symmetric positive definite: R is the nearest rotation (polar decomposition).
    for symmetric in ([[1.6, 0.0], [0.0, 0.7]], [[1.0, 0.3], [0.3, 1.0]]):
        distortion = torch.eye(2, 3).expand(2, 2, 3).clone()
        distortion[:, :, :2] = torch.tensor(symmetric)
        theta = geometry.compose(rotation, distortion)
        torch.testing.assert_close(geometry.angle_from_theta(theta), angles, atol=1e-4, rtol=0)
    first_row_reading = torch.rad2deg(torch.atan2(-theta[:, 0, 1], theta[:, 0, 0]))
    assert (first_row_reading - angles).abs().min() > 1.0  # what reading one row would have given
