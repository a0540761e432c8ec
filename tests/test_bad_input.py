"""The catalogue of bad inputs: each gets one clear line and exit status 2 from the CLI, a meaningful
exception from the Python API, and nothing written. The README's troubleshooting section lists it."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
import torch

import stnlib
from stnlib import RunConfig, learn
from stnlib.errors import ConfigError, DataError, InputShapeError, RunFolderError, StnlibError, UnknownNameError
from stnlib.reproduce import main as reproduce_main
from stnlib.train import fit
from test_cli import FAST

MNIST = ["-d", "mnist5k", "-e", "1"]


@dataclass
class Case:
    id: str
    args: list[str]  # CLI arguments, without -n
    message: str  # fragment of the one-line error
    error: type = ConfigError  # what the Python API raises for the same options
    setup: str = ""  # what must exist first: "run", "corrupt-weights", "fcn-weights", "corrupt-checkpoint", "file"
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
    Case("decreasing lr switches", [*MNIST, "--switch-after-iterations", "20", "10"], "must be increasing"),
    Case("flat tensor for a feature-map ST", [*MNIST, "-m", "FCN", "-l", "FCN", "-p", "3"], "flat tensor"),
    Case("conv localization on a tiny feature map", [*MNIST, "-l", "CNN", "-p", "6"], "cannot read a tensor"),
    Case("pretrain without an input ST", [*MNIST, "-l", "FCN", "-p", "3", "--pretrain"], "transforms the input"),
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
    Case("corrupt checkpoint on resume", FAST + ["-e", "2", "--resume"], "corrupt", RunFolderError,
         setup="corrupt-checkpoint", api=False),
    Case("resume with other options", FAST + ["-e", "1", "--lr", "0.5", "--resume"], "other options (lr)",
         RunFolderError, setup="run", api=False),
    Case("run folder under a file", [*MNIST], "cannot create run folder", RunFolderError, setup="file"),
]


def prepare(case: Case, tmp_path) -> str:
    """Create what the case needs; return the run folder to pass as -n."""
    folder = tmp_path / "run"
    if case.setup in ("run", "corrupt-checkpoint"):
        assert learn.main(FAST + ["-e", "1", "-n", str(folder)]) == 0
        if case.setup == "corrupt-checkpoint":
            (folder / "metrics.json").unlink()
            (folder / "checkpoint.pt").write_bytes(b"\0" * 64)
    elif case.setup == "corrupt-weights":
        (tmp_path / "weights.pt").write_bytes(b"garbage")
    elif case.setup == "fcn-weights":
        assert learn.main(FAST + ["-e", "1", "-m", "FCN", "-l", "false", "-p", "-n", str(tmp_path / "fcn")]) == 0
    elif case.setup == "file":
        (tmp_path / "file").write_text("")
        folder = tmp_path / "file" / "run"
    return str(folder)


def snapshot(tmp_path) -> dict:
    return {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}


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
    lines = err.strip().splitlines()
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
    readme = (stnlib.runs.Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = [c.id for c in CATALOGUE if c.id not in readme]
    assert not missing, f"README troubleshooting lacks: {missing}"


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
])
def test_reproduce(argv, message, tmp_path, capsys):
    assert reproduce_main(argv + ["--output", str(tmp_path / "o"), "--figures", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
