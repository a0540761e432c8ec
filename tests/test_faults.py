"""Training survives faults: hard kill, SIGTERM, a diverging loss, a full disk."""
import errno
import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from stnlib import learn, runs

# On the CPU: the signals below are timed against CPU epochs of a second or more (a GPU trains the
# 5,000 digits in a tenth of a second, so training would end before the signal).
ARGS = ["-d", "mnist5k", "-m", "CNN", "-l", "FCN", "-p", "0", "--rotate", "-o", "adam", "--lr", "0.001",
        "--seed", "0", "-q", "--eval-passes", "1", "-b", "128", "--device", "cpu"]
TIMING = {"train_seconds", "images_per_second"}

pytestmark = pytest.mark.slow  # every test here trains in a subprocess or for several epochs


def history(folder):
    return [{k: v for k, v in e.items() if k not in TIMING} for e in json.loads((folder / "history.json").read_text())]


def start(args):
    return subprocess.Popen([sys.executable, "-m", "stnlib.learn", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_epoch(folder, epoch, process, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        try:
            if torch.load(folder / "checkpoint.pt", weights_only=True)["epoch"] >= epoch:
                return
        except Exception:  # not there yet, or being replaced
            pass
        time.sleep(0.05)
    raise AssertionError(f"epoch {epoch} never finished")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whole") / "run"
    assert learn.main(ARGS + ["-e", "3", "-n", str(folder)]) == 0
    return folder


def test_kill_9_mid_epoch_then_resume_gives_the_uninterrupted_history(tmp_path, uninterrupted):
    folder = tmp_path / "run"
    process = start(ARGS + ["-e", "3", "-n", str(folder)])
    wait_for_epoch(folder, 1, process)
    time.sleep(0.4)  # well inside epoch 2
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert torch.load(folder / "checkpoint.pt", weights_only=True)["epoch"] in (1, 2)
    assert not (folder / "metrics.json").exists()
    resumed = subprocess.run([sys.executable, "-m", "stnlib.learn", *ARGS, "-e", "3", "-n", str(folder), "--resume"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert [e["epoch"] for e in history(folder)] == [1, 2, 3]
    assert history(folder) == history(uninterrupted)
    assert not list(folder.glob(".*.tmp"))


def test_sigterm_saves_a_checkpoint_at_a_batch_boundary(tmp_path):
    folder = tmp_path / "run"
    process = start(ARGS + ["-e", "3", "-n", str(folder)])
    wait_for_epoch(folder, 1, process)
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert len(err.strip().splitlines()) == 1 and "checkpoint saved" in err and "--resume" in err
    state = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert state["current"] is None or state["current"]["position"] > 0  # mid-epoch state when inside an epoch


def test_a_diverging_loss_stops_with_epoch_and_batch_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    folder = tmp_path / "run"
    # After 40 batches (epoch 2 of 32 batches each) the lr is multiplied by 1e12.
    status = learn.main(ARGS + ["-e", "3", "-o", "sgd", "--lr", "0.01", "--switch-after-iterations", "40",
                                "--divide-lr-by", "1e-12", "-n", str(folder)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1
    assert "epoch 2, batch" in err[0] and "the checkpoint of epoch 1 is kept" in err[0]
    checkpoint = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 1 and all(torch.isfinite(v).all() for v in checkpoint["model"].values())
    assert not (folder / "final.pt").exists() and not (folder / "metrics.json").exists()


def test_a_full_disk_gives_one_line_and_keeps_earlier_checkpoints(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "run"
    real_write, calls = runs.atomic_write, {"checkpoints": 0}

    def full_after_first_checkpoint(path, write, exclusive=False):
        if path.name == runs.CHECKPOINT:
            calls["checkpoints"] += 1
            if calls["checkpoints"] >= 2:
                def partial(handle):
                    handle.write(b"half a checkpoint")
                    raise OSError(errno.ENOSPC, "No space left on device", str(path))
                return real_write(path, partial)
        return real_write(path, write, exclusive)
    monkeypatch.setattr(runs, "atomic_write", full_after_first_checkpoint)
    status = learn.main(ARGS + ["-e", "3", "-n", str(folder)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1 and "No space left on device" in err[0]
    assert torch.load(folder / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert not list(folder.glob(".*.tmp"))
