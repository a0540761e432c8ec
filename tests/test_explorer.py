"""The explorer as plain Python: setting a control updates the data behind the views."""
import pytest
import torch

from stnlib import geometry
from stnlib.explorer import (ExplorerFigure, ExplorerState, find_runs, plot_views_at_angles, redraw_milliseconds, views_at_angles,
                             train_builtin)
from stnlib.models import STNetwork
from stnlib.train import fit
from test_training import config


def undoing_model(degrees_undone: float, stn_placement=(0,)) -> STNetwork:
    torch.manual_seed(0)
    model = STNetwork("CNN", (1, 28, 28), localization="FCN", stn_placement=stn_placement)
    with torch.no_grad():
        model.localizations[0].set_constant_theta(geometry.theta_from_angle(torch.tensor([-degrees_undone])))
    return model


@pytest.fixture
def state(tiny):
    return ExplorerState(undoing_model(25.0), tiny.test_images, tiny.test_labels)


def test_setting_the_angle_updates_the_view(state):
    before = state.view.input.clone()
    view = state.set(angle=60.0)
    assert view.angle == 60.0 and not torch.equal(view.input, before)
    torch.testing.assert_close(view.input, geometry.rotate(state.images[0][None], 60.0)[0, 0])
    assert view.predicted_angle == pytest.approx(25.0, abs=1e-3)
    assert view.probabilities.shape == (10,) and view.probabilities.sum().item() == pytest.approx(1.0)
    assert [title for title, _ in view.st_outputs] == ["after ST on input"]
    assert state.trail[-1] == (60.0, pytest.approx(25.0, abs=1e-3))


def test_scale_shift_and_digit(state):
    view = state.set(scale=2.0, shift=(0.2, 0.0), digit=5)
    assert view.digit == 5 and view.label == int(state.labels[5]) and view.scale == 2.0
    centre_of_mass = (view.input.sum(0) * torch.arange(28)).sum() / view.input.sum()
    upright = state.images[5, 0]
    assert centre_of_mass > (upright.sum(0) * torch.arange(28)).sum() / upright.sum()  # moved right


def test_feature_map_st_shows_the_channel_before_and_after(tiny):
    state = ExplorerState(undoing_model(0.0, stn_placement=(3,)), tiny.test_images, tiny.test_labels)
    view = state.set(angle=90.0)
    assert len(view.features) == 3 and all(t.shape == (10, 10) for t in view.features.values())
    assert view.st_outputs[0][0] == "after ST on layer 3"


def test_figure_is_reused_between_moves(state):
    figure = ExplorerFigure()
    first = figure.render(state.view, state.trail)
    axes = list(figure.figure.axes)
    second = figure.render(state.set(angle=120.0), state.trail)
    assert first[:4] == b"\x89PNG" and first != second and figure.figure.axes == axes
    assert redraw_milliseconds(state, figure, moves=3) > 0


def test_views_at_a_series_of_angles(state):
    views = views_at_angles(state, range(-180, 181, 90))
    assert [v.angle for v in views] == [-180, -90, 0, 90, 180]
    figure = plot_views_at_angles(views)
    assert len(figure.axes) == 2 * len(views) + 2  # two rows of images, their colour bar, the angle plot
    assert [ax.get_label() for ax in figure.axes].count("<colorbar>") == 1
    assert {tuple(image.get_clim()) for ax in figure.axes for image in ax.images} == {(0.0, 1.0)}


def test_find_runs_lists_finished_28x28_runs_only(tmp_path, tiny):
    fit(config(tmp_path / "runs" / "a", epochs=1), data=tiny, progress=False, log=lambda _: None)
    (tmp_path / "runs" / "unfinished").mkdir()
    (tmp_path / "runs" / "unfinished" / "config.json").write_text("{}")
    assert find_runs([tmp_path / "runs", tmp_path / "missing"]) == [tmp_path / "runs" / "a" / "run"]


def test_widget_controls_drive_the_views(tmp_path, tiny, monkeypatch):
    from stnlib.explorer import Explorer
    from stnlib.explorer.widget import TRAIN_BUILTIN

    fit(config(tmp_path / "runs", epochs=1), data=tiny, progress=False, log=lambda _: None)
    monkeypatch.setenv("STNLIB_RUNS", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path)
    explorer = Explorer()
    labels = [label for label, _ in explorer.model_picker.options]
    assert "STN-C0 (FCN loc)" in labels[0] and labels[-1] == TRAIN_BUILTIN
    image, text = explorer.image.value, explorer.prediction.value
    explorer.angle.value = 45
    assert explorer.state.view.angle == 45 and explorer.image.value != image and explorer.prediction.value != text
    assert "rotation +45°" in explorer.prediction.value
    explorer.digit.value = 7
    assert explorer.state.view.digit == 7
    assert len(explorer.redraw_seconds) >= 3


@pytest.mark.slow
def test_builtin_model_is_trained_and_saved_as_a_run(tmp_path):
    seen = []
    folder = train_builtin(tmp_path / "builtin", lambda done, total: seen.append((done, total)), epochs=1)
    assert seen == [(1, 1)] and (folder / "final.pt").is_file()
    assert find_runs([tmp_path]) == [folder]


@pytest.mark.slow
def test_choosing_the_builtin_model_in_the_picker_trains_it_with_a_moving_progress_bar(tmp_path, monkeypatch):
    import stnlib.explorer.widget as widget
    from stnlib.explorer import Explorer

    seen = []
    monkeypatch.setattr(widget, "train_builtin", lambda folder, on_epoch: train_builtin(
        folder, lambda done, total: (seen.append((done, total)), on_epoch(done, total)), epochs=2))
    monkeypatch.setenv("STNLIB_RUNS", str(tmp_path / "none"))
    monkeypatch.chdir(tmp_path)
    explorer = Explorer(builtin_folder=str(tmp_path / "builtin"))
    assert explorer.state is None and explorer.model_picker.value is None
    explorer.model_picker.value = widget.TRAIN_BUILTIN
    assert explorer.training.is_alive() or seen  # training runs beside the kernel, not inside the callback
    explorer.angle.value = 30  # other widgets keep working meanwhile
    explorer.wait_for_training(timeout=300)
    assert seen == [(1, 2), (2, 2)]
    assert (explorer.progress.value, explorer.progress.max) == (2, 2)
    assert explorer.model_picker.value == str(tmp_path / "builtin") and explorer.state is not None
    assert "STN-C0" in explorer.model_picker.options[0][0] and (tmp_path / "builtin" / "final.pt").is_file()


def test_the_explorer_opens_a_run_folder_outside_the_searched_places(tmp_path, tiny, monkeypatch):
    from stnlib.explorer import Explorer

    fit(config(tmp_path / "elsewhere", epochs=1), data=tiny, progress=False, log=lambda _: None)
    monkeypatch.setenv("STNLIB_RUNS", str(tmp_path / "none"))
    monkeypatch.chdir(tmp_path)
    explorer = Explorer(roots=[tmp_path / "none"], model_folder=str(tmp_path / "elsewhere" / "run"))
    assert explorer.model_picker.value == str(tmp_path / "elsewhere" / "run") and explorer.state is not None


@pytest.mark.slow
def test_the_builtin_model_undoes_rotations_at_every_angle(tmp_path, mnist5k):
    """The explorer's own model (the study's STN-C0 under the quick recipe) visibly responds: over
    the training range the rotation it undoes follows the input's."""
    from stnlib import load_run
    from stnlib.evaluation import orthogonal_fit

    folder = train_builtin(tmp_path / "builtin")
    state = ExplorerState(load_run(folder).model, mnist5k.test_images[:50], mnist5k.test_labels[:50])
    angles = list(range(-75, 76, 15))
    fits = []
    for digit in range(5):
        views = views_at_angles(state, angles, digit=digit)
        fits.append(orthogonal_fit(torch.tensor(angles, dtype=torch.float32),
                                   torch.tensor([v.predicted_angle for v in views])))
    assert sorted(f.slope for f in fits)[2] > 0.6 and sorted(f.correlation for f in fits)[2] > 0.8


def test_the_picker_shows_a_run_under_the_working_folder_by_its_relative_path(tmp_path, monkeypatch):
    from stnlib.explorer.widget import shown_path

    monkeypatch.chdir(tmp_path)
    inside = tmp_path / "runs" / "quick" / "STN-C0" / "seed0"
    assert shown_path(inside) == "runs/quick/STN-C0/seed0"
    outside = tmp_path.parent / "elsewhere" / "c0"
    assert shown_path(outside) == str(outside)  # no ../.. climbing: where it lies, as given
