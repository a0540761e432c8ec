import torch

from stnlib import geometry, moments


def asymmetric_shape():
    image = torch.zeros(1, 1, 41, 41)
    image[..., 8:33, 18:23] = 1.0  # a vertical bar...
    image[..., 8:13, 18:30] = 1.0  # ...with a flag at the top: a "7"-like shape
    return image


def test_orientation_follows_rotation():
    image = asymmetric_shape()
    base = moments.moment_orientation(image)
    for angle in (-120.0, -45.0, 30.0, 100.0):
        turned = geometry.rotate(image, angle)
        delta = moments.wrap_degrees(moments.moment_orientation(turned) - base)
        assert abs(delta.item() - angle) < 3.0


def test_canonicalizing_angle_brings_rotated_copies_to_one_pose():
    image = asymmetric_shape()
    poses = []
    for angle in (-90.0, 0.0, 60.0):
        turned = geometry.rotate(image, angle)
        poses.append(geometry.rotate(turned, moments.canonicalizing_angle(turned)))
    assert (poses[0] - poses[1]).abs().mean() < 0.03
    assert (poses[1] - poses[2]).abs().mean() < 0.03


def test_moment_schedule_decreases_to_zero():
    values = [moments.moment_probability(e) for e in range(0, 300, 5)]
    assert values[0] == 1.0 and values[-1] == 0.0
    assert values == sorted(values, reverse=True)
