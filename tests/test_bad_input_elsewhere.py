"""The bad-input catalogue beyond the training command's options (``test_bad_input.py``): interrupted and
damaged run folders, full disks, the explorer, sweep files, dataset preparation, notebook parameters,
permissions and reproductions. Each gets one line (exit status 2 from a command for bad input, a
``StnlibError`` from the API), leaves nothing behind that blocks the corrected command, and loses nothing
already written."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time

import pytest
import torch

import stnlib
from stnlib import RunConfig, learn, runs
from stnlib.errors import ConfigError, RunFolderError
from stnlib.train import Interrupted, fit
from test_cli import FAST
from test_training import config

SMALL = FAST + ["--limit", "256"]


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


@pytest.fixture
def finished(tmp_path):
    """A finished two-epoch run folder of ``SMALL``."""
    folder = tmp_path / "run"
    assert learn.main(SMALL + ["-e", "2", "-n", str(folder)]) == 0
    return folder


def as_if_stopped_after_training(folder) -> None:
    """Remove what the final evaluation writes, as a kill between the last checkpoint and it would."""
    for name in (runs.FINAL, runs.METRICS, runs.CORRECT):
        (folder / name).unlink()


# ----- interruptions and kills -----
def test_a_kill_between_the_last_checkpoint_and_its_history_is_repaired_on_resume(finished, capsys):
    as_if_stopped_after_training(finished)
    history = json.loads((finished / runs.HISTORY).read_text())
    (finished / runs.HISTORY).write_text(json.dumps(history[:1]))  # the last epoch's history never written
    capsys.readouterr()
    assert learn.main(SMALL + ["-e", "2", "-n", str(finished), "--resume"]) == 0
    assert "all 2 epochs are trained; the final evaluation is left" in capsys.readouterr().out
    assert [e["epoch"] for e in json.loads((finished / runs.HISTORY).read_text())] == [1, 2]
    assert [e["epoch"] for e in stnlib.load_run(finished).history] == [1, 2]


@pytest.mark.parametrize("state", ["finished", "stopped after training"])
def test_resume_over_a_corrupt_history_writes_it_again_from_the_checkpoint(finished, state):
    if state != "finished":
        as_if_stopped_after_training(finished)
    (finished / runs.HISTORY).write_text("{garbage")
    assert learn.main(SMALL + ["-e", "2", "-n", str(finished), "--resume"]) == 0
    assert [e["epoch"] for e in stnlib.load_run(finished).history] == [1, 2]


def test_ctrl_c_before_the_run_folder_is_claimed_offers_no_resume(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(stnlib.train.invocation, "load_dataset", interrupted)
    assert learn.main(SMALL + ["-e", "1", "-n", str(tmp_path / "run")]) == 130
    line = one_line(capsys)
    assert "nothing was written" in line and "Resume with" not in line
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_ctrl_c_while_starting_prints_one_line(tmp_path):
    # Ctrl-C's default action in the child even when this test runs as a background job, which ignores SIGINT.
    process = subprocess.Popen([sys.executable, "-m", "stnlib.learn", *SMALL, "-e", "1", "-n", "never"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(0.4)  # importing torch
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "nothing was written" in err and not (tmp_path / "never").exists()


def test_a_stop_in_the_final_evaluation_keeps_the_finished_passes_for_resume(tiny, tmp_path, monkeypatch):
    import stnlib.evaluation.accuracy as accuracy

    settings = config(tmp_path, epochs=1, eval_passes=6)
    whole = fit(config(tmp_path, epochs=1, eval_passes=6, name=str(tmp_path / "whole")), data=tiny,
                progress=False, log=lambda _: None)[0]
    real_evaluate, calls = accuracy.evaluate, []

    def sigterm_during_the_third_pass(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            signal.raise_signal(signal.SIGTERM)  # the trainer's handler asks it to stop
        return real_evaluate(*args, **kwargs)
    monkeypatch.setattr(accuracy, "evaluate", sigterm_during_the_third_pass)
    with pytest.raises(Interrupted, match="stopped in the final evaluation after 3 of 6 passes"):
        fit(settings, data=tiny, progress=False, log=lambda _: None)
    folder = tmp_path / "run"
    assert len(runs.read_torch(folder / runs.PARTIAL_CORRECT)["correct"]) == 3
    assert not (folder / runs.METRICS).exists()
    monkeypatch.setattr(accuracy, "evaluate", real_evaluate)
    resumed = fit(settings, data=tiny, resume=True, progress=False, log=lambda _: None)[0]
    assert torch.equal(runs.read_torch(folder / runs.CORRECT), runs.read_torch(tmp_path / "whole" / runs.CORRECT))
    assert resumed.metrics["test_accuracy"] == whole.metrics["test_accuracy"]
    assert not (folder / runs.PARTIAL_CORRECT).exists()


@pytest.mark.slow
def test_sigterm_in_a_long_final_evaluation_stops_within_seconds(tmp_path):
    folder = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "stnlib.learn", *SMALL, "-e", "1", "--eval-passes", "1000",
                                "-n", str(folder)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (folder / runs.CHECKPOINT).exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # into the 1,000 passes
    process.send_signal(signal.SIGTERM)
    sent = time.time()
    _, err = process.communicate(timeout=60)
    assert time.time() - sent < 3 and process.returncode == 130, err
    assert "stopped in the final evaluation after" in err and "the passes are kept" in err
    assert (folder / runs.PARTIAL_CORRECT).is_file()


def test_a_diverged_first_epoch_keeps_nothing_and_the_corrected_command_runs(tmp_path, capsys):
    folder = str(tmp_path / "run")
    assert learn.main(SMALL + ["-e", "1", "-b", "16", "-o", "sgd", "--lr", "1e12", "-n", folder]) == 1
    assert "no epoch had finished, so nothing is kept" in one_line(capsys)
    assert not os.path.exists(folder)
    assert learn.main(SMALL + ["-e", "1", "-n", folder]) == 0


def test_a_full_disk_while_torch_saves_gives_one_line(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "run"
    real_save, saves = torch.save, []

    def disk_full_at_the_second_checkpoint(value, handle, *args, **kwargs):
        saves.append(1)
        if isinstance(value, dict) and "optimizer" in value and len(saves) > 1:
            handle.write(b"part of a checkpoint")
            raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 1024 vs 0")
        return real_save(value, handle, *args, **kwargs)
    monkeypatch.setattr(torch, "save", disk_full_at_the_second_checkpoint)
    assert learn.main(SMALL + ["-e", "2", "-n", str(folder)]) == 1
    line = one_line(capsys)
    assert line.startswith(f"error: cannot write {folder / runs.CHECKPOINT}: writing failed")
    assert runs.read_torch(folder / runs.CHECKPOINT)["epoch"] == 1
    assert not list(folder.glob(".*.tmp"))


# ----- damaged run folders -----
@pytest.mark.parametrize("damage, message", [
    ("another architecture", "holds the weights of another model than"),
    ("a list", "is not a run's configuration (it holds a list)"),
    ("no data", "is not a run's configuration (no 'data')"),
    ("a wrong type", "is damaged: epochs must be a whole number, got 'two'"),
])
def test_load_run_of_a_damaged_config_names_it_in_one_line(finished, tmp_path, damage, message):
    saved = json.loads((finished / runs.CONFIG).read_text())
    if damage == "another architecture":
        saved["config"].update(model="CNN")
    elif damage == "a list":
        saved = [1, 2]
    elif damage == "no data":
        del saved["data"]
    else:
        saved["config"]["epochs"] = "two"
    (finished / runs.CONFIG).write_text(json.dumps(saved))
    with pytest.raises(RunFolderError) as info:
        stnlib.load_run(finished)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_explorer_opens_beside_damaged_runs_and_names_one_it_cannot_show(finished, tmp_path):
    from stnlib.explorer import Explorer

    root = tmp_path / "roots"
    for name, damage in (("list", [1, 2]), ("no-data", "drop data"), ("other-model", "CNN")):
        copy = root / name
        copy.mkdir(parents=True)
        for file in finished.iterdir():
            (copy / file.name).write_bytes(file.read_bytes())
        saved = json.loads((copy / runs.CONFIG).read_text())
        if damage == "drop data":
            del saved["data"]
        elif damage == "CNN":
            saved["config"]["model"] = "CNN"
        else:
            saved = damage
        (copy / runs.CONFIG).write_text(json.dumps(saved))
    (root / "good").mkdir()
    for file in finished.iterdir():
        (root / "good" / file.name).write_bytes(file.read_bytes())
    explorer = Explorer(roots=[root])
    listed = {os.path.basename(value) for _, value in explorer.model_picker.options if value.startswith(str(root))}
    assert listed == {"good", "other-model"}  # the damaged configurations are passed over
    shown = explorer.state.model
    explorer.model_picker.value = str(root / "other-model")
    assert "cannot show this run" in explorer.prediction.value and explorer.state.model is shown


# ----- sweep files -----
@pytest.mark.parametrize("text, message", [
    ('base: {epochs: "two"}\ngrid: {seed: [0]}', "epochs must be a whole number, got 'two'"),
    ("base: {epochs: 1, lr: fast}\ngrid: {seed: [0]}", "lr must be a number, got 'fast'"),
    ("base: [1, 2]\ngrid: {seed: [0]}", "'base:' in"),
    ("base: {epochs: 1, batch_size: true}\ngrid: {seed: [0]}", "batch_size must be a whole number, got True"),
    ("base: {epochs: 1}\ngrid: seed", "'grid:' in"),
])
def test_a_sweep_file_of_wrong_types_is_refused_in_one_line(tmp_path, capsys, text, message):
    from stnlib.sweep import main as sweep_main

    (tmp_path / "grid.yaml").write_text(text)
    assert sweep_main([str(tmp_path / "grid.yaml"), "--out", str(tmp_path / "sw")]) == 2
    assert message in one_line(capsys)
    assert not (tmp_path / "sw").exists()


# ----- dataset preparation -----
def test_prepare_refuses_a_corrupt_archive_and_leaves_no_half_filled_folder(tmp_path, capsys):
    from stnlib.prepare import main as prepare_main

    (tmp_path / "train.tar.gz").write_bytes(b"\x1f\x8b" + os.urandom(200))
    (tmp_path / "test.tar.gz").write_bytes(b"not an archive")
    assert prepare_main(["svhn", str(tmp_path), str(tmp_path / "out" / "svhn")]) == 2
    assert "train.tar.gz is not a readable .tar.gz archive" in one_line(capsys)
    assert not (tmp_path / "out" / "svhn").exists() and not list((tmp_path / "out").iterdir())


def test_prepare_refuses_a_junk_image_and_leaves_no_half_filled_folder(tmp_path, capsys):
    from PIL import Image

    from stnlib.prepare import main as prepare_main

    folder = tmp_path / "kaggle" / "train" / "copepod"
    folder.mkdir(parents=True)
    Image.new("L", (20, 20), 255).save(folder / "0.jpg")
    (folder / "1.jpg").write_bytes(b"this is no jpeg")
    out = tmp_path / "data" / "plankton"
    assert prepare_main(["plankton", str(tmp_path / "kaggle"), str(out)]) == 2
    line = one_line(capsys)
    assert "cannot read image" in line and "1.jpg" in line
    assert not out.exists() and not list(out.parent.iterdir())
    (folder / "1.jpg").unlink()
    assert prepare_main(["plankton", str(tmp_path / "kaggle"), str(out)]) == 0  # the corrected command
    capsys.readouterr()
    assert prepare_main(["plankton", str(tmp_path / "kaggle"), str(out)]) == 2  # and never over a dataset
    assert "already exists" in one_line(capsys)


@pytest.mark.slow
def test_prepare_of_a_real_but_corrupt_tar_gz(tmp_path, capsys):
    """A gzip stream cut short: tarfile's and gzip's errors both end in one line."""
    from stnlib.prepare import main as prepare_main

    source = tmp_path / "member.bin"
    source.write_bytes(os.urandom(1 << 16))
    with tarfile.open(tmp_path / "whole.tar.gz", "w:gz") as tar:
        tar.add(source, arcname="train/1.png")
    (tmp_path / "train.tar.gz").write_bytes((tmp_path / "whole.tar.gz").read_bytes()[:5000])
    assert prepare_main(["svhn", str(tmp_path), str(tmp_path / "out")]) == 2
    assert "is not a readable .tar.gz archive" in one_line(capsys)


# ----- notebook parameters -----
@pytest.mark.parametrize("override, message", [
    ({"seeds": 0}, "seeds must be a whole number >= 1, got 0"),
    ({"epochs": 1.5}, "epochs must be a whole number >= 1, got 1.5"),
    ({"rotation_range": 0}, "rotation_range must be a number above 0 and at most 180"),
])
def test_a_notebook_parameter_no_run_could_use_is_refused(override, message):
    from stnlib.study import Study

    with pytest.raises(ConfigError, match=message):
        Study("smoke", **override)


def test_a_fractional_epoch_count_is_refused():
    with pytest.raises(ConfigError, match="epochs must be a whole number, got 1.5"):
        RunConfig(epochs=1.5).validate()


# ----- permissions -----
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_run_files_follow_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        runs.save_json(tmp_path / "a.json", {"a": 1})
        runs.save_torch(tmp_path / "a.pt", {"a": torch.ones(1)})
    finally:
        os.umask(previous)
    assert {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {"a.json": mode, "a.pt": mode}


UNREADABLE_CHILD = """
import os, sys
from stnlib import load_run
from stnlib.errors import RunFolderError
load_run(sys.argv[1])  # as root, which reads anything: loads every module while they are readable
os.setegid(65534); os.seteuid(65534)
try:
    load_run(sys.argv[1])
except RunFolderError as error:
    print(error)
"""


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_load_run_of_an_unreadable_run_names_it(tmp_path_factory):
    import shutil
    import tempfile
    from pathlib import Path

    top = Path(tempfile.mkdtemp())  # outside pytest's private folders, so another user can reach it
    try:
        top.chmod(0o755)
        assert learn.main(SMALL + ["-e", "1", "-n", str(top / "run")]) == 0
        (top / "run" / runs.FINAL).chmod(0o600)
        child = subprocess.run([sys.executable, "-c", UNREADABLE_CHILD, str(top / "run")], capture_output=True,
                               text=True, timeout=120)
        assert child.returncode == 0 and "Traceback" not in child.stderr, child.stderr
        assert "final.pt: permission denied" in child.stdout
    finally:
        shutil.rmtree(top)


# ----- reproductions -----
def test_a_second_reproduction_into_a_folder_in_use_is_refused(tmp_path, capsys):
    from stnlib.reproduce import exclusive_use
    from stnlib.reproduce import main as reproduce_main

    (tmp_path / "out").mkdir()
    with exclusive_use(tmp_path / "out"):
        assert reproduce_main(["--profile", "smoke", "--output", str(tmp_path / "out"),
                               "--figures", str(tmp_path / "f")]) == 2
    assert "is in use by another reproduction (process" in one_line(capsys)
    assert not (tmp_path / "out" / "runs").exists()


def test_a_reproduction_checks_its_output_folders_before_training(tmp_path, capsys):
    from stnlib.reproduce import main as reproduce_main

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notebooks").write_text("a file where the executed notebooks go")
    start = time.perf_counter()
    assert reproduce_main(["--profile", "smoke", "--output", str(tmp_path / "out"),
                           "--figures", str(tmp_path / "f")]) == 2
    assert "notebooks folder" in one_line(capsys) and time.perf_counter() - start < 10
    assert not (tmp_path / "out" / "runs").exists()
