"""The evaluation toolkit: every helper's data, and that every plot draws."""
import pytest
import torch

import stnlib
from stnlib import geometry
from stnlib.data import Batch, RandomRotation
from stnlib.evaluation import (Predictions, accuracy_by_angle, angle_error_by_true_angle, channel_correspondence,
                               collect_predictions, correlation_breakdown, plot_large_errors_by_label, compare_transformations, confusion_matrix, edge_responses,
                               feature_maps_around_st, feature_misalignment, first_layer_filters,
                               gradient_magnitudes, orthogonal_fit, per_label_angle_statistics, plot_accuracy_by_angle,
                               plot_accuracy_vs_training_size, plot_angle_error_by_true_angle, plot_angle_histogram,
                               plot_channel_correspondence,
                               plot_compare_transformations, plot_confusion_matrix, plot_digits, plot_edge_responses,
                               plot_feature_maps, plot_filters, plot_gradient_magnitudes, plot_history,
                               plot_misalignment, plot_rotated_feature_maps, plot_st_views,
                               plot_transformation_statistics, predicted_angles, rotated_feature_maps,
                               self_match_rate, st_views, transformation_statistics)
from stnlib.evaluation import test_accuracy as accuracy_of_passes
from stnlib.models import STNetwork
from stnlib.study import accuracy_vs_training_size
from stnlib.train import fit
from test_training import config


def st_model(undo_degrees: float = 0.0, stn_placement=(0,), **kwargs) -> STNetwork:
    torch.manual_seed(0)
    model = STNetwork("CNN", (1, 28, 28), localization="FCN", stn_placement=stn_placement, **kwargs)
    if stn_placement:
        with torch.no_grad():
            model.localizations[0].set_constant_theta(geometry.theta_from_angle(torch.tensor([-undo_degrees])))
    return model.eval()


@pytest.fixture
def predictions(tiny):
    return collect_predictions(st_model(30.0), tiny.test_images, tiny.test_labels, RandomRotation(90), passes=2)


def test_collect_predictions_keeps_every_theta_and_true_angle(predictions, tiny):
    n = 2 * len(tiny.test_images)
    assert predictions.labels.shape == (n,) and predictions.thetas.shape == (n, 1, 2, 3)
    assert predictions.true_angle.abs().max() <= 90 and predictions.st_index == [0]
    torch.testing.assert_close(predictions_angles := predicted_angles(predictions), torch.full((n,), 30.0))
    assert predictions_angles.dtype == torch.float32


def test_test_accuracy_is_a_share_per_pass(tiny):
    model = st_model()
    passes = accuracy_of_passes(model, tiny.test_images, tiny.test_labels, RandomRotation(90), passes=3)
    assert len(passes) == 3 and all(0 <= p <= 1 for p in passes)
    # the same shares, counted by hand on the same rotated images
    generator = torch.Generator().manual_seed(0)
    by_hand = []
    with torch.no_grad():
        for _ in range(3):
            batch = RandomRotation(90)(Batch(tiny.test_images, tiny.test_labels, torch.arange(32)), generator)
            by_hand.append((model(batch.images).argmax(1) == batch.labels).float().mean().item())
    assert passes == pytest.approx(by_hand)


def test_accuracy_by_angle_and_confusion_matrix():
    labels = torch.tensor([0, 1, 2, 2, 1, 0])
    predicted = torch.tensor([0, 1, 1, 2, 1, 2])
    angles = torch.tensor([-80.0, -40.0, -10.0, 10.0, 40.0, 80.0])
    p = Predictions(labels, predicted, angles, torch.zeros(6, 0, 2, 3), [])
    curve = accuracy_by_angle(p, bins=3)
    assert curve.count.tolist() == [2, 2, 2] and curve.accuracy.tolist() == [1.0, 0.5, 0.5]
    matrix = confusion_matrix(p, 3)
    assert matrix.sum() == 6 and matrix.diagonal().tolist() == [1, 2, 1] and matrix[2, 1] == 1


def test_orthogonal_fit():
    x = torch.linspace(-90, 90, 50)
    fit = orthogonal_fit(x, 2 * x + 3)
    assert fit.slope == pytest.approx(2.0) and fit.intercept == pytest.approx(3.0) and fit.correlation == pytest.approx(1)
    noisy = orthogonal_fit(x, x + torch.randn(50, generator=torch.Generator().manual_seed(0)))
    assert noisy.slope == pytest.approx(1.0, abs=0.05) and noisy.mean_abs_error < 2


def test_per_label_angle_statistics(predictions):
    rows = per_label_angle_statistics(predictions)
    assert len(rows) == 10 and sum(r["count"] for r in rows) == len(predictions.labels)
    row = next(r for r in rows if r["count"] > 1)
    assert row["mean_error"] == pytest.approx(30 - predictions.true_angle[predictions.labels == row["label"]].mean().item(),
                                              abs=1e-3)


def test_correlation_breakdown_traces_r_to_half_turn_errors_on_symmetric_digits():
    true = torch.linspace(-90, 90, 200)
    labels = torch.arange(200) % 10
    flipped = (labels == 1) & (true.abs() > 60)  # ones near +-90 degrees undone the other way round
    undone = torch.where(flipped, true - 180 * true.sign(), true)
    thetas = geometry.theta_from_angle(-undone)[:, None]  # theta that undoes `undone` degrees
    p = Predictions(labels, labels, true, thetas, [0])
    breakdown = correlation_breakdown(p)
    assert breakdown["r"] < 0.9
    assert breakdown["r_without_symmetric"] == pytest.approx(1.0) and breakdown["r_without_large"] == pytest.approx(1.0)
    assert breakdown["large_share"] == pytest.approx(flipped.float().mean().item())
    assert breakdown["large_symmetric_share"] == 1.0
    rows = per_label_angle_statistics(p)
    assert rows[1]["large_share"] == pytest.approx(flipped.sum().item() / (labels == 1).sum().item())
    assert all(row["large_share"] == 0 for row in rows if row["label"] != 1)
    ax = plot_large_errors_by_label({"seed 0": rows, "seed 1": rows})
    heights = [bar.get_height() for bar in ax.patches if bar.get_width() < 0.5]  # the bars, not the shading
    assert len(heights) == 20 and heights[1] == pytest.approx(100 * rows[1]["large_share"])


def test_transformation_statistics_of_an_identity_st(tiny):
    p = collect_predictions(st_model(), tiny.test_images, tiny.test_labels, RandomRotation(0))
    stats = transformation_statistics(p, true_scale=torch.ones(len(p.labels)), true_shift=torch.zeros(len(p.labels), 2))
    torch.testing.assert_close(stats.scale, torch.ones(len(p.labels)))
    assert stats.distance.abs().max() < 1e-6 and stats.true_distance.abs().max() == 0


def test_feature_misalignment_input_space_aligns_exactly_at_90_degrees(tiny):
    rows = feature_misalignment(st_model(stn_placement=()), tiny.test_images[:8], 90.0, indices=[0, 3])
    assert rows[0].residual < 1e-5 and rows[0].best_angle == -90
    assert rows[1].residual > 0.05 and rows[1].unaligned > rows[1].residual


def test_edge_channels_swap_after_a_quarter_turn(tiny):
    responses = edge_responses(tiny.test_images[0], angle=90.0)
    vertical_before, horizontal_back = responses["original"][0], responses["rotated back"][1]
    torch.testing.assert_close(horizontal_back, vertical_before, atol=1e-4, rtol=0)
    assert not torch.allclose(responses["rotated back"][0], vertical_before, atol=1e-2)


def test_channel_correspondence(tiny):
    matrix = channel_correspondence(st_model(stn_placement=()), tiny.test_images[:8], index=3)
    assert matrix.shape == (64, 64) and matrix.diagonal().max() <= 1.0 + 1e-4
    assert self_match_rate(torch.eye(5)) == 1.0 and self_match_rate(torch.eye(5).flip(1)) == pytest.approx(0.2)


def test_filters_gradients_views_and_feature_maps(tiny):
    model = st_model(stn_placement=(0, 0))
    assert first_layer_filters(model).shape == (64, 1, 9, 9)
    norms = dict(gradient_magnitudes(model, tiny.test_images[:8], tiny.test_labels[:8]))
    assert "localizations.0.affine.weight" in norms and all(v >= 0 for v in norms.values())
    views = st_views(model, tiny.test_images[:4])
    assert [name for name, _ in views] == ["input", "ST on input, it. 1", "ST on input, it. 2"]
    c1 = st_model(stn_placement=(3,))
    before, after = feature_maps_around_st(c1, tiny.test_images[:4])
    assert before.shape == after.shape == (4, 64, 10, 10)
    outputs = compare_transformations({"a": model, "b": c1}, tiny.test_images[:4])
    assert outputs["a"].shape == (4, 1, 28, 28) and outputs["b"].shape == (4, 64, 10, 10)


def test_accuracy_vs_training_size_reuses_finished_runs(tmp_path, tiny):
    cfg = config(tmp_path, epochs=1)
    rows = accuracy_vs_training_size(cfg, tiny, [16, 32])
    assert [r["examples"] for r in rows] == [16, 32]
    for row in rows:  # the numbers of the run folders, each trained on its own number of images
        folder = tmp_path / "run" / f"n{row['examples']}"
        assert row["test_accuracy"] == stnlib.runs.read_json(folder / "metrics.json")["test_accuracy"]
        assert stnlib.runs.read_json(folder / "metrics.json")["train_images_per_second"] > 0
    stamp = (tmp_path / "run" / "n16" / "final.pt").stat().st_mtime_ns
    assert accuracy_vs_training_size(cfg, tiny, [16]) == rows[:1]
    assert (tmp_path / "run" / "n16" / "final.pt").stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_every_plot_draws(tmp_path, tiny, predictions):
    model = st_model(stn_placement=(0, 3))
    history = fit(config(tmp_path, epochs=2), data=tiny, progress=False, log=lambda _: None)[0].history
    images = tiny.test_images[:6]
    axes = [
        plot_accuracy_by_angle({"m": accuracy_by_angle(predictions)}),
        plot_confusion_matrix(confusion_matrix(predictions, 10)),
        plot_angle_histogram(predictions.true_angle, predicted_angles(predictions)),
        plot_transformation_statistics(transformation_statistics(predictions)),
        plot_history({"m": history}),
        plot_accuracy_vs_training_size({"m": [{"examples": 10, "test_accuracy": 0.5},
                                              {"examples": 20, "test_accuracy": 0.6}]}),
        plot_st_views(st_views(model, images)),
        plot_feature_maps(*feature_maps_around_st(model, images, st=1)),
        plot_compare_transformations(images, compare_transformations({"m": model}, images)),
        plot_gradient_magnitudes(gradient_magnitudes(model, images, tiny.test_labels[:6])),
        plot_filters(first_layer_filters(model)),
        plot_misalignment(feature_misalignment(model, images, 90.0, [0, 3])),
        plot_rotated_feature_maps(rotated_feature_maps(model, images[0], 45.0, 3)),
        plot_channel_correspondence(channel_correspondence(model, images, 3)),
        plot_edge_responses(edge_responses(images[0])),
        plot_digits(images, ["a"] * 6),
    ]
    for drawn in axes:
        first = drawn.flat[0] if hasattr(drawn, "flat") else drawn
        first.figure.savefig(tmp_path / "figure.png")
        assert (tmp_path / "figure.png").stat().st_size > 1000


def test_angle_error_by_true_angle_bins_the_error_and_finds_the_large_ones():
    true = torch.tensor([-80.0, -70.0, -10.0, 0.0, 10.0, 75.0, 85.0])
    undone = torch.tensor([-80.0, 0.0, -10.0, 5.0, 10.0, -100.0, 85.0])  # -70 left in place, 75 turned the wrong way
    table = angle_error_by_true_angle(true, undone, limit=90.0, bins=3)
    torch.testing.assert_close(table.centres, torch.tensor([-60.0, 0.0, 60.0], dtype=torch.float64))
    assert table.count.tolist() == [2, 3, 2]
    torch.testing.assert_close(table.mean, torch.tensor([35.0, 5 / 3, -87.5], dtype=torch.float64))
    torch.testing.assert_close(table.large_share, torch.tensor([0.5, 0.0, 0.5], dtype=torch.float64))
    inner, outer = table.large_share_where(outer_than=30.0)
    assert inner == 0.0 and outer == pytest.approx(0.5)
    empty = angle_error_by_true_angle(torch.tensor([80.0, 85.0]), torch.tensor([80.0, 80.0]), bins=3)
    assert empty.count.tolist() == [0, 0, 2] and empty.mean[:2].isnan().all() and empty.std[2] > 0


def test_plot_angle_error_by_true_angle_draws_every_curve():
    true = torch.linspace(-90, 90, 200)
    curves = {f"seed {k}": angle_error_by_true_angle(true, 0.8 * true + k) for k in range(2)}
    axes = plot_angle_error_by_true_angle(curves)
    assert len(axes[0].lines) == 2 + 2 and len(axes[1].lines) == 2
    assert not stnlib.plotting.figure_problems(axes[0].figure)
