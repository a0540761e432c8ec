"""Moment-canonical poses as the original defines them (--moment-sched and --pretrain)."""
import pytest
import torch

from stnlib import geometry, moments

ANGLES = (-90.0, -30.0, 0.0, 45.0, 120.0)


def asymmetric_shape():
    image = torch.zeros(1, 1, 41, 41)
    image[..., 8:33, 18:23] = 1.0  # a vertical bar...
    image[..., 8:13, 18:30] = 1.0  # ...with a flag at the top: a "7"-like shape
    return image


def test_principal_axis_is_measured_from_the_row_axis():
    vertical, horizontal = torch.zeros(1, 1, 21, 21), torch.zeros(1, 1, 21, 21)
    vertical[..., 2:19, 9:12] = 1.0
    horizontal[..., 9:12, 2:19] = 1.0
    assert torch.rad2deg(moments.principal_axis(vertical)).item() == pytest.approx(0.0, abs=1e-3)
    assert torch.rad2deg(moments.principal_axis(horizontal)).item() == pytest.approx(90.0, abs=1e-3)


def test_moment_sched_pose_puts_the_principal_axis_on_a_diagonal():
    for angle in ANGLES:
        turned = geometry.rotate(asymmetric_shape(), angle)
        canonical = geometry.rotate(turned, moments.canonicalizing_angle(turned))
        axis = torch.rad2deg(moments.principal_axis(canonical)).item()
        assert min(abs(axis - 135.0), abs(axis + 45.0)) < 2.0  # pi/4 past the row axis, mod pi


def test_moment_sched_pose_is_the_same_for_rotated_copies_up_to_a_half_turn():
    poses = [geometry.rotate(t, moments.canonicalizing_angle(t))
             for t in (geometry.rotate(asymmetric_shape(), a) for a in ANGLES)]
    for pose in poses:
        distance = min((pose - poses[2]).abs().mean(), (geometry.rotate(pose, 180.0) - poses[2]).abs().mean())
        assert distance < 0.02


def test_pretrain_target_warps_rotated_copies_to_one_pose():
    poses = []
    for angle in ANGLES:
        turned = geometry.rotate(asymmetric_shape(), angle)
        target = moments.pretrain_target(turned)  # (1, 2, 2)
        assert torch.det(target).abs().item() == pytest.approx(1.0, abs=1e-5)
        poses.append(geometry.warp(turned, torch.cat([target, torch.zeros(1, 2, 1)], -1)))
    assert all((pose - poses[2]).abs().mean() < 0.02 for pose in poses)


def test_pretrain_target_reflects_when_the_perpendicular_skew_is_positive():
    mirrored = torch.flip(asymmetric_shape(), dims=[-1])  # the flag on the other side
    determinants = {torch.det(moments.pretrain_target(x)).sign().item() for x in (asymmetric_shape(), mirrored)}
    assert determinants == {1.0, -1.0}


def test_moment_schedule_decreases_to_zero():
    values = [moments.moment_probability(e) for e in range(0, 300, 5)]
    assert values[0] == 1.0 and values[-1] == 0.0
    assert values == sorted(values, reverse=True)
