"""Sweeps on a local Ray: a 2-point grid, a second invocation that skips, and a failing run."""
import csv
import json

import pytest

from conftest import require
from stnlib.errors import ConfigError
from stnlib.ray_sweep import expand, grouped_table, load_grid, markdown, run_name, summary_table
from stnlib.sweep import main


GRID = """
base: {dataset: mnist5k, model: FCN, localization: small, epochs: 1, rotate: true, seed: 0, eval_passes: 1,
       optimizer: adam, lr: 0.003}
grid: {stn_placement: [[0], [0, 0]]}
"""


@pytest.fixture(scope="module")
def local_ray():
    require("Ray")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_grid_expansion_and_names(tmp_path):
    (tmp_path / "g.yaml").write_text(GRID)
    base, grid = load_grid(tmp_path / "g.yaml")
    points = expand(base, grid, tmp_path / "out")
    assert [p.folder.name for p in points] == ["stn_placement=0", "stn_placement=0-0"]
    assert points[1].config.stn_placement == [0, 0] and points[1].config.model == "FCN"
    assert run_name({"seed": 1, "lr": 0.01}) == "seed=1,lr=0.01"


@pytest.mark.parametrize("text, message", [
    ("base: {dataset: mnist5k}\ngrid: {learning_rate: [1]}", "unknown option(s)"),
    ("base: {dataset: mnist5k, epochs: 1}\ngrid: {seed: 3}", "must be a non-empty list"),
    ("base: [1, 2", "not valid YAML"),
    ("base: {epochs: 1, loop: true, deep: true, localization: FCN, stn_placement: [3]}", "exclude each other"),
])
def test_bad_grids_are_refused(tmp_path, text, message):
    (tmp_path / "g.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        expand(*load_grid(tmp_path / "g.yaml"), tmp_path / "out")


@pytest.mark.slow
def test_sweep_runs_skips_and_reports_failures(tmp_path, local_ray, capsys):
    (tmp_path / "g.yaml").write_text(GRID)
    out = tmp_path / "out"
    assert main([str(tmp_path / "g.yaml"), "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out / "summary.csv")))
    assert [r["status"] for r in rows] == ["done", "done"]
    for row in rows:  # the summary holds each run folder's own numbers
        metrics = json.loads((out / row["run"] / "metrics.json").read_text())
        assert float(row["test_accuracy"]) == pytest.approx(metrics["test_accuracy"])
    assert (out / "stn_placement=0-0" / "final.pt").is_file() and "Over seeds" in (out / "summary.md").read_text()
    stamp = (out / "stn_placement=0" / "final.pt").stat().st_mtime_ns

    assert main([str(tmp_path / "g.yaml"), "--out", str(out)]) == 0  # second invocation: nothing to train
    assert "2 finished before, 0 to train" in capsys.readouterr().out
    assert (out / "stn_placement=0" / "final.pt").stat().st_mtime_ns == stamp

    failing = GRID.replace("grid: {stn_placement: [[0], [0, 0]]}",
                           "grid: {load_model: ['', '/nonexistent/weights.pt']}").replace("seed: 0,", "seed: 0, "
                                                                                           "stn_placement: [0],")
    (tmp_path / "f.yaml").write_text(failing)
    assert main([str(tmp_path / "f.yaml"), "--out", str(tmp_path / "f")]) == 1
    err = capsys.readouterr().err
    assert "failed: load_model=_nonexistent_weights.pt: RunFolderError" in err and "does not exist" in err
    rows = {r["run"]: r for r in csv.DictReader(open(tmp_path / "f" / "summary.csv"))}
    assert rows["load_model="]["status"] == "done" and rows["load_model=_nonexistent_weights.pt"]["status"] == "failed"


@pytest.mark.slow
def test_an_unfinished_run_is_resumed(tmp_path, local_ray):
    from stnlib import learn

    (tmp_path / "g.yaml").write_text(GRID.replace("epochs: 1", "epochs: 2").replace(
        "grid: {stn_placement: [[0], [0, 0]]}", "grid: {stn_placement: [[0]]}"))
    folder = tmp_path / "out" / "stn_placement=0"
    # a run cut short after its first epoch: config and checkpoint but no metrics
    assert learn.main(["-d", "mnist5k", "-m", "FCN", "-l", "small", "-p", "0", "-e", "2", "--rotate", "--seed", "0",
                       "--eval-passes", "1", "-o", "adam", "--lr", "0.003", "-q", "-n", str(folder)]) == 0
    (folder / "metrics.json").unlink()
    (folder / "final.pt").unlink()
    assert main([str(tmp_path / "g.yaml"), "--out", str(tmp_path / "out")]) == 0
    assert (folder / "metrics.json").is_file()


def test_the_seeds_of_a_point_share_a_task_and_train_as_one_group(tmp_path, local_ray, capsys):
    (tmp_path / "g.yaml").write_text(GRID.replace("seed: 0,", "run_group: together, limit: 512,").replace(
        "grid: {stn_placement: [[0], [0, 0]]}", "grid: {stn_placement: [[0], [0, 0]], seed: [0, 1, 2]}"))
    out = tmp_path / "out"
    assert main([str(tmp_path / "g.yaml"), "--out", str(out), "--group-size", "2"]) == 0
    assert "6 runs in 4 tasks of up to 2" in capsys.readouterr().out
    sizes = {p.name: json.loads((p / "metrics.json").read_text())["group_size"] for p in out.iterdir() if p.is_dir()}
    assert sizes == {"stn_placement=0,seed=0": 2, "stn_placement=0,seed=1": 2, "stn_placement=0,seed=2": 1,
                     "stn_placement=0-0,seed=0": 2, "stn_placement=0-0,seed=1": 2, "stn_placement=0-0,seed=2": 1}
    assert main([str(tmp_path / "g.yaml"), "--out", str(out), "--group-size", "0"]) == 2


@pytest.mark.slow
def test_the_paper_profile_trains_through_ray(tmp_path, local_ray):
    from stnlib.study import NO_ST, Study, accuracy_table

    study = Study("paper", dataset="mnist5k", epochs=1, seeds=2, device="cpu", output=str(tmp_path),
                  log=lambda _: None)
    rows = accuracy_table(study.trained([NO_ST]))
    assert len(rows[0]["accuracies"]) == 2 and all(0 <= a <= 1 for a in rows[0]["accuracies"])
    assert study.profile_key == "paper-dataset=mnist5k-epochs=1"
    assert all((tmp_path / "runs" / study.profile_key / "mnist5k" / "no_ST" / f"seed{s}" / "metrics.json").is_file()
               for s in (0, 1))


def test_summary_tables_group_over_seeds_and_leave_missing_numbers_empty(tmp_path):
    grid = {"lr": [0.1, 0.01], "seed": [0, 1]}
    points = expand({"dataset": "mnist5k", "epochs": 1}, grid, tmp_path)
    for point, accuracy in zip(points, (None, 0.6, 0.7, 0.8)):
        point.status = "failed" if accuracy is None else "done"
        point.metrics = {} if accuracy is None else {"test_accuracy": accuracy, "wall_seconds": 3.0}
    table = summary_table(points, grid)
    assert list(table["run"]) == ["lr=0.1,seed=0", "lr=0.1,seed=1", "lr=0.01,seed=0", "lr=0.01,seed=1"]
    grouped = grouped_table(table, grid)
    assert list(grouped["lr"]) == ["0.1", "0.01"] and list(grouped["runs"]) == [1, 2]
    assert grouped["mean_accuracy"].tolist() == pytest.approx([0.6, 0.75])
    assert grouped["std_accuracy"].isna().tolist() == [True, False]
    text = markdown(table, "Runs")
    assert "| lr=0.1,seed=0  | 0.1  | 0      | failed   |" in text and "nan" not in text
    assert "| 0.01 | 2      | 0.7500          | 0.0707         |" in markdown(grouped, "Over seeds")
