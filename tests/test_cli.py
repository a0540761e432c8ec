"""``python -m stnlib.learn`` end to end, in temporary folders."""
import json

import pytest
import torch

from conftest import interrupt_once_checkpointed, run_cli

FAST = ["-d", "mnist5k", "-m", "FCN", "-l", "small", "-p", "0", "--rotate", "-o", "adam", "--lr", "0.001",
        "--seed", "0", "-q", "--eval-passes", "2"]


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.slow
def test_train_end_to_end(tmp_path):
    folder = tmp_path / "runs" / "fcn"
    result = run_cli(*FAST, "-e", "2", "-n", str(folder))
    assert result.returncode == 0, result.stderr
    assert "FCN classifier, STN-C0" in result.stdout and "epoch 2/2" in result.stdout
    assert {p.name for p in folder.iterdir()} == {"config.json", "history.json", "checkpoint.pt", "final.pt",
                                                   "metrics.json", "test_correct.pt"}
    metrics = json.loads((folder / "metrics.json").read_text())
    assert 0.2 < metrics["test_accuracy"] <= 1 and metrics["train_images_per_second"] > 0
    assert [e["epoch"] for e in json.loads((folder / "history.json").read_text())] == [1, 2]


@pytest.mark.slow
def test_help_explains_every_flag():
    result = run_cli("-h")
    assert result.returncode == 0
    for flag in ("--dataset", "--stn-placement", "--loop", "--deep", "--moment-sched", "--hook-llr", "--onlyloc",
                 "--switch-after-iterations", "--resume", "--overwrite", "--device", "--data-root",
                 "--rotation-range", "mnist5k"):
        assert flag in result.stdout


@pytest.mark.slow
def test_an_existing_folder_is_refused_unless_asked(tmp_path):
    folder = tmp_path / "run"
    assert run_cli(*FAST, "-e", "1", "-n", str(folder)).returncode == 0
    before = (folder / "final.pt").read_bytes()
    refused = run_cli(*FAST, "-e", "1", "-n", str(folder))
    assert_one_line_error(refused, "already exists", "--resume", "--overwrite")
    assert (folder / "final.pt").read_bytes() == before
    replaced = run_cli(*FAST, "-e", "1", "--seed", "1", "-n", str(folder), "--overwrite")
    assert replaced.returncode == 0 and (folder / "final.pt").read_bytes() != before


@pytest.mark.slow
def test_sigint_saves_a_checkpoint_and_resume_finishes_the_run(tmp_path):
    folder = tmp_path / "run"
    args = ["-d", "mnist5k", "-m", "CNN", "-l", "CNN", "-p", "0", "--rotate", "-o", "adam", "--lr", "0.001",
            "--seed", "0", "-q", "--eval-passes", "1", "-e", "4", "-b", "64", "-n", str(folder)]
    returncode, out, err = interrupt_once_checkpointed(args, folder)
    assert returncode == 130, err
    assert "checkpoint saved" in err and "--resume" in err and "Traceback" not in err
    checkpoint = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] < 4
    resumed = run_cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert [e["epoch"] for e in json.loads((folder / "history.json").read_text())] == [1, 2, 3, 4]


@pytest.mark.slow
@pytest.mark.parametrize("args, fragments", [
    (["-d", "imagenet", "-e", "1"], ["unknown dataset 'imagenet'", "mnist5k"]),
    (["-d", "mnist5k", "-m", "ResNet", "-e", "1"], ["unknown model 'ResNet'"]),
    (["-d", "mnist5k", "-l", "Transformer", "-p", "0", "-e", "1"], ["unknown localization 'Transformer'"]),
    (["-d", "mnist5k", "-l", "CNN", "-p", "9", "-e", "1"], ["placement 9 is past the CNN classifier"]),
    (["-d", "mnist5k", "-l", "FCN", "-p", "3", "--loop", "--deep", "-e", "1"], ["--loop and --deep"]),
    (["-d", "mnist5k", "-e", "1", "-i", "10"], ["not allowed with argument"]),
    (["-d", "mnist5k"], ["one of the arguments --epochs/-e --iterations/-i is required"]),
    (["-d", "mnist5k", "--model-parameters", "8", "-e", "1"], ["takes 2 parameters"]),
    (["-d", "mnist5k", "-l", "CNN", "-e", "1"], ["needs a placement"]),
    (["-d", "mnist5k", "-o", "rmsprop", "-e", "1"], ["unknown optimizer 'rmsprop'"]),
    (["-d", "mnist5k", "--lr", "nan", "-e", "1"], ["--lr must be a finite number"]),
    (["-d", "mnist5k", "-b", "0", "-e", "1"], ["--batch-size must be >= 1"]),
    (["-d", "mnist5k", "-e", "1", "--resume"], ["cannot resume", "holds no run"]),
    (["-d", "mnist5k", "-e", "1", "--load-model", "missing.pt"], ["missing.pt does not exist"]),
    (["-d", "mnist5k", "-e", "1", "--device", "cuda:7"], ["cuda"]),
])
def test_bad_input_gets_one_line_and_writes_nothing(tmp_path, args, fragments):
    folder = tmp_path / "run"
    result = run_cli(*args, "-n", str(folder), cwd=tmp_path)
    assert_one_line_error(result, *fragments)
    assert not folder.exists()


@pytest.mark.slow
def test_a_corrupt_load_model_file_is_refused(tmp_path):
    bad = tmp_path / "weights.pt"
    bad.write_bytes(b"not a checkpoint at all")
    result = run_cli(*FAST, "-e", "1", "--load-model", str(bad), "-n", str(tmp_path / "run"))
    assert_one_line_error(result, "corrupt")


@pytest.mark.slow
def test_a_corrupt_checkpoint_is_refused_on_resume(tmp_path):
    folder = tmp_path / "run"
    assert run_cli(*FAST, "-e", "1", "-n", str(folder)).returncode == 0
    (folder / "metrics.json").unlink()
    (folder / "checkpoint.pt").write_bytes(b"\x00" * 100)
    result = run_cli(*FAST, "-e", "1", "-n", str(folder), "--resume")
    assert_one_line_error(result, "corrupt")


@pytest.mark.slow
def test_resume_with_other_options_is_refused(tmp_path):
    folder = tmp_path / "run"
    assert run_cli(*FAST, "-e", "1", "-n", str(folder)).returncode == 0
    result = run_cli(*FAST, "-e", "1", "--lr", "0.5", "-n", str(folder), "--resume")
    assert_one_line_error(result, "other options (lr)")
