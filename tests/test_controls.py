"""The theory's control (notebook 07, C6): shifted and zoomed digits, what an ST undoes, and the
feature-map measure that tells a shift (alignable) from a zoom (not)."""
import pytest
import torch

from stnlib import RunConfig
from stnlib.data import Batch, load_dataset
from stnlib.data.transforms import augmentation_for
from stnlib.evaluation import Predictions, orthogonal_fit, spatial_misalignment, transform_images, true_and_undone
from stnlib.geometry import theta_from_angle
from stnlib.models import STNetwork
from stnlib.study import C1, Study


def digits(n: int = 24) -> torch.Tensor:
    """Blobs of random strokes well inside a 28x28 canvas: ``(n, 1, 28, 28)``."""
    generator = torch.Generator().manual_seed(0)
    images = torch.zeros(n, 1, 28, 28)
    images[:, :, 8:20, 8:20] = torch.rand(n, 1, 12, 12, generator=generator)
    return images


def test_shifting_by_whole_pixels_moves_every_pixel_exactly():
    images = digits(4)
    moved = transform_images(images, "translate", 3.0)
    assert torch.allclose(moved[:, :, 3:, 3:], images[:, :, :-3, :-3], atol=1e-5)
    assert moved[:, :, :3].abs().max() == 0 and moved[:, :, :, :3].abs().max() == 0


def test_zooming_keeps_the_centre_and_enlarges_the_content():
    images = torch.zeros(1, 1, 28, 28)
    images[..., 12:16, 12:16] = 1.0
    zoomed = transform_images(images, "scale", 2.0)
    assert zoomed[..., 10:18, 10:18].mean() > 0.8 and zoomed.sum().item() == pytest.approx(4 * images.sum().item(), rel=0.1)


def test_with_unknown_kind_transform_images_refuses():
    with pytest.raises(ValueError, match="translate"):
        transform_images(digits(1), "rotate", 1.0)


def test_a_shift_is_undone_exactly_in_the_maps_a_zoom_is_not():
    torch.manual_seed(0)
    model = STNetwork("CNN", (1, 28, 28)).eval()  # untrained: the argument holds for any filters
    images = digits()
    shift = {r.index: r for r in spatial_misalignment(model, images, "translate", 4.0, (0, 3))}
    zoom = {r.index: r for r in spatial_misalignment(model, images, "scale", 1.41, (0, 3))}
    assert shift[0].residual < 1e-5 and shift[3].residual < 1e-5  # 4 input px = 2 px of the pooled map
    assert shift[0].best == 4.0 and shift[3].best == 2.0 and shift[3].unaligned > 0.3
    assert zoom[0].residual == pytest.approx(zoom[0].floor, abs=1e-4)  # the input zooms back as well as it can
    assert zoom[0].best == pytest.approx(2 ** -0.5, rel=1e-3)
    assert zoom[3].residual - zoom[3].floor > 0.1  # the maps cannot: the receptive fields saw other things


def test_true_and_undone_read_a_perfect_st_as_the_diagonal():
    shifts = torch.linspace(-0.4, 0.4, 9)
    zooms = 2 ** torch.linspace(-1, 0.5, 9)
    true_shift = torch.stack([shifts, -shifts], 1)
    undo_shift = torch.cat([torch.eye(2).expand(9, 2, 2), true_shift[:, :, None]], -1)  # reads the centre at the shift
    undo_zoom = theta_from_angle(torch.zeros(9), 1 / zooms)  # linear part zoom * I: reads zoom times farther out
    for kind, thetas in (("translate", undo_shift), ("scale", undo_zoom)):
        predictions = Predictions(torch.zeros(9), torch.zeros(9), torch.zeros(9), thetas[:, None], [0],
                                  true_scale=zooms, true_shift=true_shift)
        true, undone = true_and_undone(predictions, kind)
        fit = orthogonal_fit(true, undone)
        assert fit.slope == pytest.approx(1.0, abs=1e-4) and fit.correlation == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("name, kind", [("translate5k-28", "translate"), ("scale5k-28", "scale")])
def test_compact_controls_keep_the_canvas_and_stay_in_range(name, kind):
    data = load_dataset(name)
    assert data.image_shape == (1, 28, 28) and data.kind == kind and data.st_downsample == 1
    transform = augmentation_for(RunConfig(epochs=1), data)
    batch = transform(Batch(data.test_images[:200], data.test_labels[:200], torch.arange(200)),
                      torch.Generator().manual_seed(0))
    if kind == "translate":
        pixels = batch.true.shift * 14
        assert batch.true.scale.eq(1).all() and pixels.abs().max() <= 7 and pixels.abs().max() > 6
        # no clutter: what is drawn is the digit itself, moved
        assert torch.allclose(batch.images, transform._place(data.test_images[:200], batch.true.scale, batch.true.shift))
    else:
        assert batch.true.shift.eq(0).all()
        assert 0.5 <= batch.true.scale.min() < 0.55 and 1.35 < batch.true.scale.max() <= 2 ** 0.5
        assert torch.allclose(batch.images, transform._place(data.test_images[:200], batch.true.scale, batch.true.shift))


def test_control_study_uses_the_profiles_control_data_without_rotation(tmp_path):
    study = Study("quick", output=str(tmp_path))
    shifted, zoomed = study.control_study("translate"), study.control_study("scale")
    assert (shifted.profile.dataset, zoomed.profile.dataset) == ("translate5k-28", "scale5k-28")
    assert shifted.profile.epochs == study.profile.control_epochs == 8
    config = shifted.config(C1)
    assert not config.rotate and config.dataset == "translate5k-28" and "quick-dataset=translate5k-28" in config.name
    batch = zoomed.rotated_examples(8)
    assert batch.true.scale is not None and not batch.true.scale.eq(1).all()
    assert Study("quick", output=str(tmp_path), epochs=2).control_study("scale").profile.epochs == 2
    assert Study("paper", output=str(tmp_path)).profile.control_datasets == ("translate", "scale")
    with pytest.raises(ValueError, match="translate"):
        study.control_study("rotate")


@pytest.mark.parametrize("name", ["mnist5k", "translate5k", "scale5k", "translate5k-28", "scale5k-28"])
def test_a_datasets_kind_is_known_without_loading_it(name):
    from stnlib.data.registry import dataset_kind

    assert dataset_kind(name) == load_dataset(name).kind
