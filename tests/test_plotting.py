"""The house style: colours that stay with an architecture, and the figure check that every saved
study figure passes."""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from stnlib.evaluation import (PairedComparison, plot_accuracy_over_seeds, plot_angle_histogram, plot_paired_differences,
                               plot_st_learning)
from stnlib.plotting import ARCHITECTURE_COLORS, color_of, figure_problems, image_panel, palette


def test_an_architecture_keeps_its_colour_everywhere():
    assert color_of("STN-C0") == color_of("STN-C0 (3 seeds)") == ARCHITECTURE_COLORS["STN-C0"]
    assert len(set(ARCHITECTURE_COLORS.values())) == len(ARCHITECTURE_COLORS)
    assert color_of("some recipe") == color_of("some recipe")  # unknown names: fixed, not by position
    assert palette(["no ST", "STN-C1"]) == {"no ST": ARCHITECTURE_COLORS["no ST"], "STN-C1": ARCHITECTURE_COLORS["STN-C1"]}


def test_a_complete_figure_has_no_problems():
    fig, axes = plt.subplots(1, 3, sharey=True)
    for ax in axes:
        ax.plot([0, 1], [0, 1], color="C0")
        ax.set_xlabel("x")
    axes[0].set_ylabel("y")  # the row's other plots share it
    axes[0].set_title("a title")
    assert figure_problems(fig) == []


def test_the_check_finds_missing_labels_titles_and_invisible_lines():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], color=ax.get_facecolor(), label="perfect")
    problems = figure_problems(fig)
    assert "no title on the figure or any of its axes" in problems
    assert any("the x axis has no label" in p for p in problems) and any("the y axis has no label" in p for p in problems)
    assert any("'perfect'" in p and "background colour" in p for p in problems)


def test_image_panels_and_colour_bars_need_no_axis_labels():
    fig, axes = plt.subplots(1, 2)
    shown = image_panel(axes[0], torch.rand(5, 5).numpy(), "an image", vmin=0, vmax=1)
    image_panel(axes[1], torch.rand(5, 5).numpy(), "another", vmin=0, vmax=1)
    fig.colorbar(shown, ax=list(axes))
    assert figure_problems(fig) == []


def test_the_statistical_plots_pass_the_check_and_show_every_seed():
    ax = plot_accuracy_over_seeds({"STN-C0": [0.93, 0.94, 0.935], "no ST": [0.90, 0.89, 0.905]})
    assert figure_problems(ax.figure) == []
    dots = [c for c in ax.collections if len(c.get_offsets()) == 3]
    assert len(dots) == 2  # every seed of both architectures
    comparison = PairedComparison("STN-C0", "no ST", 0.035, 0.02, 0.05, 0.001, [0.03, 0.04, 0.035], [0.01] * 3)
    ax = plot_paired_differences([comparison])
    assert figure_problems(ax.figure) == []
    assert any(len(c.get_offsets()) == 3 for c in ax.collections)



def test_the_p_value_stands_right_of_the_dots_and_of_the_zero_line():
    below_zero = PairedComparison("STN-SL2", "STN-C0x2", -0.04, -0.065, -0.005, 0.005, [-0.06, -0.06, -0.004], [0.01] * 3)
    above_zero = PairedComparison("STN-C0", "no ST", 0.035, 0.02, 0.05, 0.001, [0.03, 0.06, 0.035], [0.01] * 3)
    ax = plot_paired_differences([below_zero, above_zero])
    labels = {t.get_text(): t for t in ax.texts if t.get_text().startswith("p = ")}
    assert labels["p = 0.005"].xy[0] == 0.0 and labels["p = 0.001"].xy[0] == 0.06
    assert all(t.xyann[0] >= 10 for t in labels.values())  # points to the right of the anchor

def test_the_angle_histogram_has_a_colour_bar_and_a_visible_diagonal():
    true = torch.linspace(-90, 90, 400)
    ax = plot_angle_histogram(true, 0.8 * true, title="STN-C0")
    assert figure_problems(ax.figure) == []
    assert any(other.get_label() == "<colorbar>" for other in ax.figure.axes)
    diagonal = next(line for line in ax.get_lines() if line.get_label() == "undoes exactly the true angle")
    assert diagonal.get_color() != ax.get_facecolor()
    assert "slope 0.80" in ax.get_legend().get_texts()[1].get_text()


def test_the_st_learning_legend_stands_below_the_panels_clear_of_every_curve():
    history = [{"epoch": e, "angle_slope": 0.05 * e, "angle_r": 0.06 * e} for e in range(1, 11)]
    flat = [{"epoch": e, "angle_slope": 0.0, "angle_r": 0.1} for e in range(1, 11)]
    axes = plot_st_learning({"quick": [history, history], "slow": [flat]}, images_per_epoch=4000)
    fig = axes[0].figure
    fig.canvas.draw()
    legend = fig.legends[0].get_window_extent()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["quick", "slow", "target: slope 0.8, r 0.9"]
    assert all(ax.get_legend() is None and legend.y1 <= ax.get_window_extent().y0 for ax in axes)
    assert not figure_problems(fig)
    plt.close(fig)
