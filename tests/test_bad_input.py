"""The catalogue of bad inputs: each gets one clear line and exit status 2 from the CLI, a meaningful
exception from the Python API, and nothing written. docs/troubleshooting.md lists it (docs/generate.py)."""
from __future__ import annotations

import math
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from PIL import Image

import stnlib
from stnlib import RunConfig, learn
from stnlib.errors import ConfigError, DataError, InputShapeError, RunFolderError, StnlibError, UnknownNameError
from stnlib.reproduce import main as reproduce_main
from stnlib.train import fit
from conftest import interrupt_once_checkpointed, write_precomputed
from test_cli import FAST

MNIST = ["-d", "mnist5k", "-e", "1"]


@dataclass
class Case:
    id: str
    args: list[str]  # CLI arguments, without -n
    message: str  # fragment of the one-line error
    error: type = ConfigError  # what the Python API raises for the same options
    setup: str = ""  # what must exist first: "run", "corrupt-weights", "fcn-weights", "corrupt-checkpoint", "file",
    # or a damaged precomputed dataset: "csv-header", "csv-missing-image", "csv-mixed-sizes"
    api: bool = True  # whether fit() is given the same options
    extra: dict = field(default_factory=dict)


CATALOGUE = [
    Case("unknown dataset", ["-d", "imagenet", "-e", "1"], "unknown dataset 'imagenet'", UnknownNameError),
    Case("unknown model", [*MNIST, "-m", "ResNet"], "unknown model 'ResNet'", UnknownNameError),
    Case("unknown localization", [*MNIST, "-l", "Transformer", "-p", "0"], "unknown localization 'Transformer'",
         UnknownNameError),
    Case("placement past the network", [*MNIST, "-l", "FCN", "-p", "9"], "placement 9 is past the CNN classifier"),
    Case("loop with deep", [*MNIST, "-l", "FCN", "-p", "3", "--loop", "--deep"], "--loop and --deep"),
    Case("epochs and iterations", [*MNIST, "-i", "10"], "not allowed with argument", api=False),
    Case("neither epochs nor iterations", ["-d", "mnist5k"], "is required", api=False),
    Case("model parameters of the wrong length", [*MNIST, "--model-parameters", "8"], "takes 2 parameters"),
    Case("localization parameters of the wrong length", [*MNIST, "-l", "FCN", "-p", "0",
                                                         "--localization-parameters", "8"], "takes 3 parameters"),
    Case("zero layer width", [*MNIST, "--model-parameters", "0", "8"], "must be positive"),
    Case("localization without placement", [*MNIST, "-l", "CNN"], "needs a placement"),
    Case("placement without localization", [*MNIST, "-p", "0"], "need a localization"),
    Case("unknown optimizer", [*MNIST, "-o", "rmsprop"], "unknown optimizer 'rmsprop'"),
    Case("NaN learning rate", [*MNIST, "--lr", "nan"], "--lr must be a finite number"),
    Case("negative learning rate", [*MNIST, "--lr", "-0.1"], "--lr must be a finite number >= 0"),
    Case("zero batch size", [*MNIST, "-b", "0"], "--batch-size must be >= 1"),
    Case("negative epochs", ["-d", "mnist5k", "-e", "-3"], "--epochs must be >= 0"),
    Case("momentum with adam", [*MNIST, "-o", "adam", "--momentum", "0.9"], "--momentum has no meaning"),
    Case("nesterov without momentum", [*MNIST, "-o", "nesterov"], "--optimizer nesterov needs a --momentum > 0"),
    Case("iterations shorter than an epoch", ["-d", "mnist5k", "-i", "3"], "--iterations 3 is less than one epoch"),
    Case("decreasing lr switches", [*MNIST, "--switch-after-iterations", "20", "10"], "must be increasing"),
    Case("flat tensor for a feature-map ST", [*MNIST, "-m", "FCN", "-l", "FCN", "-p", "3"], "flat tensor"),
    Case("conv localization on a tiny feature map", [*MNIST, "-l", "CNN", "-p", "6"], "cannot read a tensor"),
    Case("pretrain without an input ST", [*MNIST, "-l", "FCN", "-p", "3", "--pretrain"], "transforms the input"),
    Case("rotation warmup without rotation", [*MNIST, "--rotation-warmup", "30", "4"],
         "--rotation-warmup needs --rotate"),
    Case("rotation warmup past the range", [*MNIST, "--rotate", "--rotation-warmup", "120", "4"],
         "start must lie in [0, 90] degrees"),
    Case("rotation warmup past a wider training range", [*MNIST, "--rotate", "--train-rotation-range", "120",
                                                         "--rotation-warmup", "150", "4"],
         "start must lie in [0, 120] degrees"),
    Case("training rotations without rotation", [*MNIST, "--train-rotation-range", "120"],
         "--train-rotation-range needs --rotate"),
    Case("training rotations past a half-turn", [*MNIST, "--rotate", "--train-rotation-range", "200"],
         "--train-rotation-range must lie in [0, 180] degrees"),
    Case("rotation warmup over part of an epoch", [*MNIST, "--rotate", "--rotation-warmup", "30", "2.5"],
         "whole number >= 1"),
    Case("add-iteration with batchnorm", [*MNIST, "-l", "FCN", "-p", "0", "--batchnorm", "--add-iteration", "5"],
         "cannot be combined with --batchnorm"),
    Case("CUDA without a GPU", [*MNIST, "--device", "cuda:7"], "cuda", api=not torch.cuda.is_available()),
    Case("unknown device", [*MNIST, "--device", "tpu"], "unknown device 'tpu'"),
    Case("resume of a folder without a run", [*MNIST, "--resume"], "cannot resume", RunFolderError),
    Case("resume and overwrite together", [*MNIST, "--resume", "--overwrite"], "exclude each other", RunFolderError,
         setup="run", api=False),
    Case("missing load-model file", [*MNIST, "--load-model", "missing.pt"], "does not exist", RunFolderError),
    Case("corrupt load-model file", [*MNIST, "--load-model", "{tmp}/weights.pt"], "corrupt", RunFolderError,
         setup="corrupt-weights"),
    Case("another model's weights", [*MNIST, "--load-model", "{tmp}/fcn"], "another model", RunFolderError,
         setup="fcn-weights"),
    Case("existing run folder", FAST + ["-e", "1"], "already exists", RunFolderError, setup="run"),
    Case("corrupt checkpoint on resume", FAST + ["-e", "1", "--resume"], "checkpoint.pt is corrupt", RunFolderError,
         setup="corrupt-checkpoint", api=False),
    Case("resume with other options", FAST + ["-e", "1", "--lr", "0.5", "--resume"], "other options (lr)",
         RunFolderError, setup="run", api=False),
    Case("run folder under a file", [*MNIST], "lies inside a file", RunFolderError, setup="file"),
    Case("precomputed CSV with a header row", ["-d", "{tmp}/set/", "-e", "1"],
         "line 1 must hold the per-channel mean and std", DataError, setup="csv-header"),
    Case("precomputed CSV naming a missing image", ["-d", "{tmp}/set/", "-e", "1"], "cannot read image", DataError,
         setup="csv-missing-image"),
    Case("precomputed images of mixed sizes", ["-d", "{tmp}/set/", "-e", "1"],
         "is (20, 20) pixels, the others (16, 16)", DataError, setup="csv-mixed-sizes"),
    Case("seed past the generators' range", [*MNIST, "--seed", "99999999999999999999"], "--seed must lie in [0, "),
    Case("lr switch that is not a number", [*MNIST, "--switch-after-iterations", "nan"],
         "--switch-after-iterations takes whole numbers of iterations, got nan", api=False),
    Case("lr switch at iteration 0", [*MNIST, "--switch-after-iterations", "0"],
         "--switch-after-iterations values must be >= 1"),
    Case("eval passes past the bound", [*MNIST, "--eval-passes", "100000000000"], "--eval-passes must be at most 1000"),
    Case("model too large for memory", [*MNIST, "--model-parameters", "100000", "100000"],
         "out of memory while building the model"),
    Case("precomputed label below 0", ["-d", "{tmp}/set/", "-e", "1"], "labels must be class indices >= 0",
         DataError, setup="csv-negative-label"),
    Case("precomputed CSV that is not UTF-8", ["-d", "{tmp}/set/", "-e", "1"], "train.csv is not UTF-8 text",
         DataError, setup="csv-latin-1"),
    Case("precomputed std of zero", ["-d", "{tmp}/set/", "-e", "1"], "every std must be a number > 0", DataError,
         setup="csv-zero-std"),
    Case("precomputed image too large", ["-d", "{tmp}/set/", "-e", "1"], "is too large to be a training image",
         DataError, setup="csv-image-bomb"),
    Case("resume with another model's checkpoint", FAST + ["-e", "1", "--resume"],
         "holds the weights of another model", RunFolderError, setup="foreign-checkpoint", api=False),
    Case("resume with final.pt over the checkpoint", FAST + ["-e", "1", "--resume"],
         "is not a training checkpoint (no optimizer", RunFolderError, setup="final-as-checkpoint", api=False),
    Case("full MNIST missing", ["-d", "mnist", "-e", "1", "--data-root", "{tmp}/no-data/here"],
         "full MNIST is not in", DataError),
]


SETUPS = {  # what prepare() makes exist before each case's command, in words (docs/troubleshooting.md)
    "run": "the run folder exists", "corrupt-checkpoint": "its checkpoint.pt damaged",
    "foreign-checkpoint": "another architecture's checkpoint.pt copied in",
    "final-as-checkpoint": "final.pt copied over checkpoint.pt", "corrupt-weights": "weights.pt is garbage",
    "fcn-weights": "fcn/ is an FCN run", "file": "-n names a folder inside a file",
    "csv-header": "train.csv starts with a header row", "csv-missing-image": "an image file is gone",
    "csv-mixed-sizes": "one image is 20x20 among 16x16 ones", "csv-negative-label": "a label is -1",
    "csv-latin-1": "train.csv is Latin-1, not UTF-8", "csv-zero-std": "the std row holds 0",
    "csv-image-bomb": "an image past PIL's decompression-bomb limit",
}


def prepare(case: Case, tmp_path) -> str:
    """Create what the case needs; return the run folder to pass as -n."""
    folder = tmp_path / "run"
    if case.setup in ("run", "corrupt-checkpoint", "foreign-checkpoint", "final-as-checkpoint"):
        assert learn.main(FAST + ["-e", "1", "-n", str(folder)]) == 0
        if case.setup != "run":
            (folder / "metrics.json").unlink()
        if case.setup == "corrupt-checkpoint":
            (folder / "checkpoint.pt").write_bytes(b"\0" * 64)
        elif case.setup == "foreign-checkpoint":  # another architecture's, copied in by hand
            assert learn.main(FAST + ["-e", "1", "-m", "CNN", "-n", str(tmp_path / "other")]) == 0
            (folder / "checkpoint.pt").write_bytes((tmp_path / "other" / "checkpoint.pt").read_bytes())
        elif case.setup == "final-as-checkpoint":
            (folder / "checkpoint.pt").write_bytes((folder / "final.pt").read_bytes())
    elif case.setup == "corrupt-weights":
        (tmp_path / "weights.pt").write_bytes(b"garbage")
    elif case.setup == "fcn-weights":
        assert learn.main(FAST + ["-e", "1", "-m", "FCN", "-l", "false", "-p", "-n", str(tmp_path / "fcn")]) == 0
    elif case.setup.startswith("csv-"):
        write_precomputed(tmp_path / "set")
        train_csv = tmp_path / "set" / "train.csv"
        first, rest = train_csv.read_text().split("\n", 1)
        if case.setup == "csv-header":
            train_csv.write_text("path,label\n" + rest)
        elif case.setup == "csv-missing-image":
            (tmp_path / "set" / "images" / "train2.png").unlink()
        elif case.setup == "csv-negative-label":
            train_csv.write_text(first + "\n" + re.sub(r"train1\.png,\d+", "train1.png,-1", rest))
        elif case.setup == "csv-latin-1":
            train_csv.write_bytes((first + "\n" + rest.replace("train1.png", "tr\xe4in1.png", 1)).encode("latin-1"))
        elif case.setup == "csv-zero-std":
            train_csv.write_text("30.0,0.0\n" + rest)
        elif case.setup == "csv-image-bomb":  # past PIL's limit, which the test lowers to spare memory
            Image.new("L", (64, 64)).save(tmp_path / "set" / "images" / "train3.png")
        else:
            Image.new("L", (20, 20)).save(tmp_path / "set" / "images" / "train3.png")
    elif case.setup == "file":
        (tmp_path / "file").write_text("")
        folder = tmp_path / "file" / "run"
    return str(folder)


def snapshot(tmp_path) -> dict:
    return {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}


@pytest.fixture(autouse=True)
def small_image_limit(monkeypatch):
    """PIL's decompression-bomb limit lowered to 4,000 pixels (a 64x64 image passes it twice over)."""
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)


@pytest.mark.parametrize("case", CATALOGUE, ids=lambda c: c.id)
def test_cli(case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = prepare(case, tmp_path)
    capsys.readouterr()
    before = snapshot(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)) for a in case.args] + ["-n", folder]
    try:
        status = learn.main(args)
    except SystemExit as exit:  # argparse
        status = exit.code
    err = capsys.readouterr().err
    assert status == 2, err
    lines = err.strip().replace(str(tmp_path), "TMP").splitlines()  # the message, not the folder, must match
    assert len(lines) == 1 and case.message in lines[0], err
    assert "Traceback" not in err
    assert snapshot(tmp_path) == before, "a bad input must not write anything"


@pytest.mark.parametrize("case", [c for c in CATALOGUE if c.api], ids=lambda c: c.id)
def test_api(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = prepare(case, tmp_path)
    args = learn.build_parser().parse_args([a.replace("{tmp}", str(tmp_path)) for a in case.args] + ["-n", folder])
    config = learn.config_from_args(args)
    with pytest.raises(case.error, match=None) as info:
        fit(config, resume=args.resume, overwrite=args.overwrite, progress=False, log=lambda _: None)
    assert case.message in str(info.value) and "\n" not in str(info.value)


def test_the_catalogue_is_large_and_documented():
    assert len(CATALOGUE) >= 20
    guide = (stnlib.runs.Path(__file__).resolve().parents[1] / "docs" / "troubleshooting.md").read_text()
    missing = [c.id for c in CATALOGUE if f"| {c.id} |" not in guide]
    assert not missing, f"docs/troubleshooting.md lacks: {missing} (python docs/generate.py writes them)"


def test_api_images_of_the_wrong_size_or_channels(tmp_path, tiny):
    fit(RunConfig(dataset="tiny", epochs=1, name=str(tmp_path / "r"), device="cpu", eval_passes=1, seed=0,
                  batch_size=32), data=tiny, progress=False, log=lambda _: None)
    model = stnlib.load_run(tmp_path / "r").model
    for shape in ((2, 3, 28, 28), (2, 1, 32, 32), (1, 28, 28)):
        with pytest.raises(InputShapeError, match=r"expects images of shape \(B, 1, 28, 28\)"):
            model(torch.rand(*shape))


def test_api_errors_share_a_base_class():
    for error in (ConfigError, UnknownNameError, DataError, RunFolderError, InputShapeError):
        assert issubclass(error, StnlibError)
    with pytest.raises(ConfigError):
        RunConfig(epochs=1, iterations=1).validate()
    with pytest.raises(ConfigError):
        RunConfig(epochs=1, lr=math.inf).validate()


@pytest.mark.parametrize("argv, message", [
    (["--profile", "huge"], "unknown profile 'huge'"),
    (["--profile", "smoke", "--notebooks", "."], "no numbered notebooks"),
    (["--profile", "smoke", "--only", "42"], "no notebook numbered 42; choose from 00, 01"),
])
def test_reproduce(argv, message, tmp_path, capsys):
    assert reproduce_main(argv + ["--output", str(tmp_path / "o"), "--figures", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_reproduce_refuses_an_output_that_is_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("keep me")
    assert reproduce_main(["--profile", "smoke", "--output", str(tmp_path / "afile"),
                           "--figures", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a file, not a folder" in err[0] and "Traceback" not in err[0]
    assert (tmp_path / "afile").read_text() == "keep me"


def test_load_run_of_a_plain_file_or_a_missing_folder(tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(RunFolderError, match="is not a run folder: it is a file"):
        stnlib.load_run(tmp_path / "afile")
    with pytest.raises(RunFolderError, match="is not a run folder: it does not exist"):
        stnlib.load_run(tmp_path / "missing")


def test_an_empty_sweep_file_is_named_as_empty(tmp_path, capsys):
    from stnlib.sweep import main as sweep_main

    (tmp_path / "empty.yaml").write_text("")
    assert sweep_main([str(tmp_path / "empty.yaml"), "--out", str(tmp_path / "sw")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "empty.yaml is empty" in err[0]
    assert not (tmp_path / "sw").exists()


def test_the_explorer_names_a_model_folder_that_is_not_a_run(tmp_path):
    from stnlib.explorer import Explorer

    (tmp_path / "notes").mkdir()
    with pytest.raises(RunFolderError, match=f"{tmp_path / 'notes'} is not a run folder"):
        Explorer(roots=[tmp_path], model_folder=str(tmp_path / "notes"))


def test_a_run_folder_is_claimed_in_one_step(tmp_path):
    folder = tmp_path / "race"
    for _ in range(2):  # both trainings find the folder new and empty ...
        stnlib.runs.prepare_folder(folder)
    stnlib.runs.claim_folder(folder, {"config": "first"})
    with pytest.raises(RunFolderError, match="was just claimed by another training"):  # ... only one claims it
        stnlib.runs.claim_folder(folder, {"config": "second"})
    assert stnlib.runs.read_json(folder / "config.json") == {"config": "first"}
    assert [p.name for p in folder.iterdir()] == ["config.json"]


@pytest.mark.slow
def test_two_trainings_started_into_one_new_folder_keep_one_and_refuse_the_other(tmp_path):
    """Started together, either may claim the folder first (interpreter start-up times vary): exactly one
    trains, the other stops with one line, and the folder holds the winner's results."""
    folder = tmp_path / "race"
    args = [sys.executable, "-m", "stnlib.learn", *FAST, "-e", "1", "-n", str(folder)]
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    second = subprocess.run(args, capture_output=True, text=True, timeout=300)
    out, err = first.communicate(timeout=300)
    outcomes = [(first.returncode, out, err), (second.returncode, second.stdout, second.stderr)]
    winners = [o for o in outcomes if o[0] == 0]
    losers = [o for o in outcomes if o[0] != 0]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    (_, won_out, _), (lost_code, lost_out, lost_err) = winners[0], losers[0]
    assert "test accuracy" in won_out
    assert lost_code == 2, lost_err
    lines = lost_err.strip().splitlines()
    assert len(lines) == 1 and ("already exists" in lines[0] or "claimed by another training" in lines[0])
    assert "test accuracy" not in lost_out
    metrics = stnlib.runs.read_json(folder / "metrics.json")
    assert f"test accuracy {metrics['test_accuracy']}" in won_out


@pytest.mark.slow
def test_unicode_and_spaces_in_the_run_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    name = "runs/ünïcödé name ✓"
    assert learn.main(FAST + ["-e", "1", "-n", name]) == 0
    run = stnlib.load_run(name)
    assert run.folder.resolve() == tmp_path / name and run.metrics["test_accuracy"] > 0.1
    assert learn.main(FAST + ["-e", "1", "-n", name, "--resume"]) == 0  # a finished run resumes to nothing
    assert stnlib.load_run(name).metrics == run.metrics
    assert "'runs/ünïcödé name ✓'" in learn.resume_command(FAST + ["-n", name])


@pytest.mark.slow
def test_ctrl_c_then_the_printed_resume_command_finishes_the_run(tmp_path):
    folder = tmp_path / "run"
    returncode, _, err = interrupt_once_checkpointed([*FAST, "-e", "3", "-n", str(folder)], folder, cwd=tmp_path)
    assert returncode == 130, err
    assert len(err.strip().splitlines()) == 1 and "Resume with: python -m stnlib.learn" in err
    command = shlex.split(err.split("Resume with: ", 1)[1])
    assert command[:3] == ["python", "-m", "stnlib.learn"] and command[-1] == "--resume"
    resumed = subprocess.run([sys.executable, *command[1:]], capture_output=True, text=True, cwd=tmp_path,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    history = stnlib.runs.read_json(folder / "history.json")
    assert [e["epoch"] for e in history] == [1, 2, 3] and (folder / "metrics.json").is_file()


READ_ONLY_CHILD = """
import contextlib, io, os, sys, tempfile
from stnlib import learn, load_run
with tempfile.TemporaryDirectory() as scratch, contextlib.redirect_stdout(io.StringIO()):
    # loads every lazily imported module while this process may still read them
    assert learn.main(sys.argv[3:] + ["--limit", "64", "-n", scratch + "/warm-up"]) == 0
if os.geteuid() == 0:  # root writes anywhere: act as an ordinary user
    os.setegid(65534)
    os.seteuid(65534)
folder, mode = sys.argv[1], sys.argv[2]
if mode == "load":
    print(load_run(folder).architecture)
    sys.exit(0)
sys.exit(learn.main(sys.argv[3:] + ["-n", folder, "--" + mode]))
"""


@pytest.mark.slow
def test_a_read_only_run_folder_is_read_and_refused_for_writing():
    import shutil
    import tempfile

    top = Path(tempfile.mkdtemp())  # outside pytest's private tmp folders, so another user can reach it
    try:
        top.chmod(0o755)
        folder = top / "run"
        assert learn.main(FAST + ["-e", "1", "-n", str(folder)]) == 0
        (folder / "metrics.json").unlink()  # as if stopped before the final evaluation
        for path in [folder, *folder.iterdir()]:
            path.chmod(0o555 if path.is_dir() else 0o444)
        before = {p.name: p.read_bytes() for p in folder.iterdir()}
        for mode in ("resume", "overwrite", "load"):
            child = subprocess.run([sys.executable, "-c", READ_ONLY_CHILD, str(folder), mode, *FAST, "-e", "1"],
                                   capture_output=True, text=True, timeout=300)
            if mode == "load":
                assert child.returncode == 0 and child.stdout.strip() == "STN-C0", child.stderr
                continue
            assert child.returncode == 2, child.stderr
            lines = child.stderr.strip().splitlines()
            assert len(lines) == 1 and f"cannot {mode} {folder}" in lines[0] and "read-only" in lines[0]
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    finally:
        for path in top.rglob("*"):
            path.chmod(0o755)
        shutil.rmtree(top)
