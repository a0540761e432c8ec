"""The explorer widget: sliders and pickers on the left, live views on the right (ipywidgets)."""
from __future__ import annotations

import html
import random
import threading
import time
from pathlib import Path

import ipywidgets as widgets

from .. import runs
from ..config import RunConfig
from ..errors import StnlibError
from ..data import load_dataset
from .figure import ExplorerFigure
from .runs import BUILTIN_NAME, explorable_run, find_runs, search_roots, train_builtin
from .state import ExplorerState

TRAIN_BUILTIN = "(train a small model on mnist5k, about a minute)"



def shown_path(folder: Path) -> str:
    """``folder`` as the picker shows it: relative to the working folder where it lies inside it."""
    try:
        return str(Path(folder).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(folder)

class Explorer:
    """Rotate a test digit with a slider and watch the STN respond.

    ``Explorer(roots=["runs"])`` lists the run folders found there (and in
    ``$STNLIB_RUNS``); ``.widget`` is what to display. Every control calls
    ``refresh``, which recomputes the view and redraws the one figure in place.
    """

    def __init__(self, roots=(), model_folder: str | None = None, builtin_folder: str | None = None):
        self.roots = search_roots(roots)
        self.builtin_folder = Path(builtin_folder) if builtin_folder else self.roots[0] / BUILTIN_NAME
        data = load_dataset("mnist5k")
        self.images, self.labels = data.test_images, data.test_labels
        self.figure = ExplorerFigure(data.num_classes)
        self.state: ExplorerState | None = None
        self.training: threading.Thread | None = None  # the built-in model's training, when running
        self.redraw_seconds: list[float] = []
        self._build_controls()
        folders = find_runs(self.roots)
        if model_folder is not None:  # any run folder, searched or not
            chosen = explorable_run(model_folder)
            folders = [chosen] + [f for f in folders if f.resolve() != chosen.resolve()]
            model_folder = chosen
        self.model_picker.options = [(self._run_label(f), str(f)) for f in folders] + [(TRAIN_BUILTIN, TRAIN_BUILTIN)]
        self.model_picker.value = str(model_folder) if model_folder else (str(folders[0]) if folders else None)
        self.model_picker.observe(self._on_model, names="value")
        if self.model_picker.value:
            self.load(self.model_picker.value)

    # ----- construction -----
    def _build_controls(self) -> None:
        slider = dict(continuous_update=True, readout_format=".0f", layout=widgets.Layout(width="360px"))
        self.angle = widgets.FloatSlider(0, min=-180, max=180, step=1, description="rotation °", **slider)
        self.scale = widgets.FloatLogSlider(1.0, base=2, min=-1, max=1, step=0.05, description="scale",
                                            continuous_update=True, layout=widgets.Layout(width="360px"))
        self.shift_x = widgets.FloatSlider(0, min=-0.5, max=0.5, step=0.01, description="shift x",
                                           continuous_update=True, readout_format=".2f",
                                           layout=widgets.Layout(width="360px"))
        self.shift_y = widgets.FloatSlider(0, min=-0.5, max=0.5, step=0.01, description="shift y",
                                           continuous_update=True, readout_format=".2f",
                                           layout=widgets.Layout(width="360px"))
        self.digit = widgets.BoundedIntText(0, min=0, max=len(self.images) - 1, description="test digit")
        self.random_digit = widgets.Button(description="random digit")
        self.model_picker = widgets.Dropdown(description="model", layout=widgets.Layout(width="560px"))
        self.progress = widgets.IntProgress(0, min=0, max=1, description="training", layout=widgets.Layout(
            visibility="hidden"))
        self.prediction = widgets.HTML("<b>no model yet</b>")
        self.image = widgets.Image(format="png")
        for control in (self.angle, self.scale, self.shift_x, self.shift_y, self.digit):
            control.observe(self.refresh, names="value")
        self.random_digit.on_click(lambda _: setattr(self.digit, "value", random.randrange(len(self.images))))
        controls = widgets.VBox([self.model_picker, self.progress, self.angle, self.scale, self.shift_x,
                                 self.shift_y, widgets.HBox([self.digit, self.random_digit]), self.prediction])
        self.widget = widgets.VBox([controls, self.image])

    @staticmethod
    def _run_label(folder: Path) -> str:
        saved = runs.read_run_config(folder)
        try:
            metrics = runs.read_json(folder / runs.METRICS) if (folder / runs.METRICS).is_file() else {}
        except runs.RunFolderError:  # a damaged metrics.json costs the label its accuracy, nothing more
            metrics = {}
        accuracy = metrics.get("test_accuracy") if isinstance(metrics, dict) else None
        accuracy = f", acc {accuracy:.3f}" if isinstance(accuracy, (int, float)) else ""
        localization = RunConfig.from_dict(saved["config"]).localization
        st = f"{localization} loc" if localization else "no ST"
        return f"{saved.get('architecture', '?')} ({st}){accuracy}: {shown_path(folder)}"

    # ----- models -----
    def _on_model(self, change) -> None:
        if change["new"] == TRAIN_BUILTIN:
            self.train_builtin()
        elif change["new"]:
            self.load(change["new"])

    def load(self, folder: str) -> None:
        """Show the model of the run in ``folder``; one that cannot be loaded is named in the widget,
        and the model shown before stays."""
        try:
            model = runs.load_run(folder).model
        except StnlibError as error:
            self.prediction.value = f"<b>cannot show this run:</b> {html.escape(str(error))}"
            return
        if self.state is None:
            self.state = ExplorerState(model, self.images, self.labels)
        else:
            self.state.set_model(model)
        self.refresh()

    def train_builtin(self) -> None:
        """Train the built-in model in a background thread, so the kernel and the other widgets stay
        responsive while the progress bar moves; then save it as a run and select it."""
        if self.training is not None and self.training.is_alive():
            return
        self.progress.layout.visibility = "visible"
        self.progress.value = 0
        self.prediction.value = "<b>training the built-in model…</b>"
        self.training = threading.Thread(target=self._train_builtin_now, name="stnlib-builtin-training", daemon=True)
        self.training.start()

    def _train_builtin_now(self) -> None:
        def on_epoch(done: int, total: int) -> None:
            self.progress.max, self.progress.value = total, done
        try:
            folder = train_builtin(self.builtin_folder, on_epoch)
        except Exception as error:  # shown in the widget: a thread's exception would go unseen
            self.prediction.value = f"<b>training failed:</b> {type(error).__name__}: {error}"
            return
        finally:
            self.progress.layout.visibility = "hidden"
        self.model_picker.options = [(self._run_label(folder), str(folder))] + [
            o for o in self.model_picker.options if o[1] != str(folder)]
        self.model_picker.value = str(folder)

    def wait_for_training(self, timeout: float | None = None) -> None:
        """Block until a built-in training started from the picker has finished (scripts, tests)."""
        if self.training is not None:
            self.training.join(timeout)

    # ----- updates -----
    def refresh(self, change=None) -> None:
        """Recompute the view from the controls and redraw (the slider callback)."""
        if self.state is None:
            return
        start = time.perf_counter()
        view = self.state.set(angle=self.angle.value, scale=self.scale.value,
                              shift=(self.shift_x.value, self.shift_y.value), digit=self.digit.value)
        self.image.value = self.figure.render(view, self.state.trail)
        undone = "—" if view.predicted_angle is None else f"{view.predicted_angle:+.1f}°"
        self.prediction.value = (f"<span class='stn-prediction'>rotation {view.angle:+.0f}°, "
                                 f"ST undoes <b>{undone}</b>, class <b>{int(view.probabilities.argmax())}</b> "
                                 f"(p = {view.probabilities.max():.2f})</span>")
        self.redraw_seconds.append(time.perf_counter() - start)
