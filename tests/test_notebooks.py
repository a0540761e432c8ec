"""Every notebook runs headlessly (smoke profile) and records sane numbers and figures."""
import dataclasses
import json
import statistics
from pathlib import Path

import nbformat
import pytest
import torch

from stnlib.reproduce import (find_notebooks, main, notebook_workers, reproduce, run_notebook, run_notebooks,
                              select_notebooks)
from stnlib.study import Study
from stnlib.study.plan import planned_runs

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
MAX_CELL_LINES = 25


@pytest.mark.parametrize("path", find_notebooks(NOTEBOOKS), ids=lambda p: p.stem)
def test_notebook_structure(path):
    nb = nbformat.read(path, as_version=4)
    kinds = [cell.cell_type for cell in nb.cells]
    assert kinds[:3] == ["markdown", "code", "code"] and nb.cells[0].source.startswith("# ")
    assert "parameters" in nb.cells[2].metadata.get("tags", [])
    for line in nb.cells[2].source.splitlines():  # plain literals only
        assert "(" not in line.split("#")[0], line
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, "commit notebooks clean"
            assert len(cell.source.splitlines()) <= MAX_CELL_LINES, cell.source[:80]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    committed = {p: p.stat().st_mtime_ns for p in (NOTEBOOKS.parent / "figures").glob("*")}
    timings = reproduce("smoke", out / "results", None, NOTEBOOKS, log=lambda _: None)  # figures: the default
    assert {p: p.stat().st_mtime_ns for p in (NOTEBOOKS.parent / "figures").glob("*")} == committed
    (out / "figures").symlink_to(out / "results" / "figures")  # where a run without --figures puts them
    return out, timings


@pytest.mark.slow
def test_every_notebook_runs_in_the_smoke_profile(smoke_run):
    out, timings = smoke_run
    training, *notebooks = timings  # the planned runs first, side by side, then the notebooks
    assert training[0].startswith("training before the notebooks (") and training[2] == "ok"
    assert [status for _, _, status in notebooks] == ["ok"] * len(find_notebooks(NOTEBOOKS))
    assert all((out / "results" / "notebooks" / f"{name}.ipynb").is_file() for name, _, _ in notebooks)
    summary = (out / "results" / "summary.md").read_text()
    assert "## Claims" in summary and "| 09_claims |" in summary
    assert "| seed | slope | r | std(true − undone) | r without errors > 60° | errors > 60° |" in summary
    side_by_side = "The notebooks ran side by side, so the rows add up to more" in summary
    assert side_by_side == (torch.get_num_threads() > 1)  # one notebook per core


@pytest.mark.slow
def test_every_saved_figure_passes_the_figure_check(smoke_run):
    out, timings = smoke_run
    for name, _, _ in timings[1:]:
        executed = (out / "results" / "notebooks" / f"{name}.ipynb").read_text()
        assert "figure check:" not in executed, name  # Study.save_figure warns about each problem


@pytest.mark.slow
def test_the_plan_names_every_run_the_notebooks_train(smoke_run):
    out, timings = smoke_run  # a run the plan missed would be trained by a notebook, and show up here
    planned, _ = planned_runs(Study("smoke", output=str(out / "results")), [name for name, _, _ in timings[1:]])
    trained = {p.parent.resolve() for p in (out / "results" / "runs").rglob("metrics.json")}
    assert {Path(config.name).resolve() for config in planned} == trained


@pytest.mark.slow
def test_recorded_accuracies_are_shares(smoke_run):
    out, _ = smoke_run
    results = {p.stem: json.loads(p.read_text()) for p in (out / "results" / "results" / "smoke").glob("*.json")}
    assert {"00_quickstart", "01_feature_alignment", "02_placement", "03_localization_depth", "04_iterations",
            "05_what_decides_c4_c5", "07_translation_scale", "08_equivariant", "09_claims"} <= set(results)
    assert results["08_equivariant"]["quarter_turn_logit_change"] < 1e-4  # invariant up to float rounding
    assert all(0 <= a <= 1 for a in results["00_quickstart"]["test_accuracy"])
    for key in ("02_placement", "03_localization_depth", "04_iterations", "08_equivariant"):
        for accuracies in results[key]["accuracy"].values():
            assert accuracies and all(0 <= a <= 1 for a in accuracies)
        for comparison in results[key]["comparisons"]:
            assert comparison["low"] <= comparison["difference"] <= comparison["high"]
            assert 0 < comparison["p_value"] <= 1 and len(comparison["per_seed"]) == 2
    control = results["07_translation_scale"]
    assert control["datasets"] == {"translate": "translate5k-28", "scale": "scale5k-28"}
    for kind in ("translate", "scale"):
        assert [(c["a"], c["b"]) for c in control["comparisons"][kind]] == [("STN-C0", "STN-C1")]
        assert [row["index"] for row in control["alignment"][kind]] == [0, 3]
    assert max(row["residual"] for row in control["alignment"]["translate"]) < 1e-4  # shifts align exactly
    assert {r["profile"] for r in results.values()} == {"smoke"}


@pytest.mark.slow
def test_the_readings_of_notebooks_00_and_08_are_written_beside_the_figures(smoke_run):
    out, _ = smoke_run
    readings = (out / "figures" / "readings.md").read_text()
    results = {p.stem: json.loads(p.read_text()) for p in (out / "results" / "results" / "smoke").glob("*.json")}
    quick = results["00_quickstart"]
    assert readings.startswith("**Notebook 00, the input ST.** STN-C0 classifies ")
    assert f"{statistics.mean(quick['test_accuracy']):.1%}" in readings
    assert "come back more than 60° off" in readings and "**Notebook 08, the equivariant baseline.**" in readings


@pytest.mark.slow
def test_figures_are_written_as_png_and_pdf(smoke_run):
    out, _ = smoke_run
    pngs = {p.stem for p in (out / "figures").glob("*.png")}
    assert pngs == {p.stem for p in (out / "figures").glob("*.pdf")}
    for prefix in ("00_", "01_", "02_", "03_", "04_", "05_", "07_", "08_"):
        assert any(name.startswith(prefix) for name in pngs), prefix
    assert "02_predicted_vs_true_angle" in pngs and "01_misalignment_after_best_spatial_rotation" in pngs


@pytest.mark.slow
def test_the_claims_table_covers_every_claim(smoke_run):
    out, _ = smoke_run
    claims = json.loads((out / "results" / "results" / "smoke" / "09_claims.json").read_text())["claims"]
    assert [c["claim"] for c in claims] == ["C1", "C2", "C3", "C4", "C5", "C6"]
    assert all(c["verdict"] != "not measured" and c["measured"] for c in claims)


def test_the_quick_profile_leaves_out_its_optional_notebooks_unless_asked():
    found = find_notebooks(NOTEBOOKS)
    names = lambda paths: [p.name[:2] for p in paths]  # noqa: E731
    chosen, left_out = select_notebooks(found, "quick")
    assert names(left_out) == ["05", "08"] and not {"05", "08"} & set(names(chosen)) and names(chosen)[-1] == "09"
    assert names(select_notebooks(found, "quick", run_all=True)[0]) == names(found)
    assert select_notebooks(found, "quick", only=["08", "02"]) == ([found[2], found[names(found).index("08")]], [])
    assert names(select_notebooks(found, "smoke")[0]) == names(found)  # the tests run every notebook


@pytest.mark.slow
def test_reproduce_lists_left_out_notebooks_in_the_summary(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name in ("00_first", "08_left_out"):  # names no plan knows: nothing is trained
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), folder / f"{name}.ipynb")
    timings = reproduce("quick", tmp_path / "out", None, folder, log=lambda _: None)
    assert [(name, status.split(":")[0]) for name, _, status in timings] == [("00_first", "ok"),
                                                                            ("08_left_out", "left out")]
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| 08_left_out |  | left out: not in the quick profile's time budget (--only 08 runs it) |" \
        in summary
    assert main(["--profile", "quick", "--notebooks", str(folder), "--output", str(tmp_path / "out2"),
                 "--only", "08"]) == 0
    assert (tmp_path / "out2" / "notebooks" / "08_left_out.ipynb").is_file()
    assert not (tmp_path / "out2" / "notebooks" / "00_first.ipynb").exists()
    assert not (tmp_path / "out" / "runs").exists() and not (tmp_path / "out2" / "runs").exists()


@pytest.mark.slow
def test_a_notebook_runs_without_the_kernels_unencrypted_transport_warning(tmp_path, capfd):
    notebook = tmp_path / "tiny.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")]), notebook)
    run_notebook(notebook, tmp_path / "executed.ipynb", {})
    executed = nbformat.read(tmp_path / "executed.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "42\n"
    assert "without encryption" not in capfd.readouterr().err


def test_reproduce_rejects_an_unknown_profile(capsys):
    assert main(["--profile", "huge", "--output", "/tmp/unused"]) == 2
    assert "unknown profile 'huge'" in capsys.readouterr().err


def waiting_notebook(name: str, other: str, folder: Path) -> nbformat.NotebookNode:
    """A notebook that marks its start, waits for ``other``'s start and records its thread settings: it
    can only finish when the two run at the same time."""
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"import os, pathlib, time\nfolder = pathlib.Path({str(folder)!r})\n"
        f"(folder / '{name}.started').write_text(os.environ.get('OMP_NUM_THREADS', 'unset'))\n"
        f"deadline = time.time() + 120\nwhile not (folder / '{other}.started').exists():\n"
        f"    assert time.time() < deadline, 'the other notebook never started'\n    time.sleep(0.05)\n"
        f"(folder / '{name}.done').touch()")])


@pytest.mark.slow
def test_notebooks_run_side_by_side_on_one_thread_each_and_the_claims_after_them(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbformat.write(waiting_notebook("a", "b", tmp_path), folder / "00_a.ipynb")
    nbformat.write(waiting_notebook("b", "a", tmp_path), folder / "01_b.ipynb")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"import pathlib\nassert all((pathlib.Path({str(tmp_path)!r}) / f'{{n}}.done').exists() for n in 'ab')")]),
        folder / "09_claims.ipynb")
    notebooks = sorted(folder.glob("*.ipynb"))
    timings = run_notebooks(notebooks, tmp_path / "executed", {}, workers=2, log=lambda _: None)
    assert [(name, status) for name, _, status in timings] == [("00_a", "ok"), ("01_b", "ok"), ("09_claims", "ok")]
    assert (tmp_path / "a.started").read_text() == (tmp_path / "b.started").read_text() == "1"
    assert all((tmp_path / "executed" / path.name).is_file() for path in notebooks)


@pytest.mark.slow
def test_a_lone_notebook_runs_on_one_thread_where_notebooks_run_side_by_side(tmp_path):
    notebook = tmp_path / "02_threads.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"import os, pathlib\npathlib.Path({str(tmp_path / 'threads')!r}).write_text(os.environ.get('OMP_NUM_THREADS', 'unset'))")]),
        notebook)
    assert run_notebooks([notebook], tmp_path / "executed", {}, workers=2, log=lambda _: None)[0][2] == "ok"
    assert (tmp_path / "threads").read_text() == "1"


def test_notebooks_run_one_at_a_time_where_they_may_train(monkeypatch):
    from stnlib.study import profiles

    monkeypatch.setitem(profiles.PROFILES, "local", dataclasses.replace(profiles.PROFILES["smoke"], runner="local"))
    assert notebook_workers("local", None) is None  # each notebook trains its own runs
    assert notebook_workers("quick", ("training before the notebooks", 3.0, "failed: ConfigError: x")) is None
    monkeypatch.setattr("torch.get_num_threads", lambda: 2)
    assert notebook_workers("quick", None) == notebook_workers("quick", ("training (3 runs)", 3.0, "ok")) == 2
    assert notebook_workers("smoke", None) == 2  # the tests' study runs its notebooks side by side too
