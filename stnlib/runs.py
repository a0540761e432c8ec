"""Run folders: configuration, history, checkpoints and metrics on disk.

Layout of a run folder (``--name``)::

    config.json       the RunConfig, the model's readable name, library versions
    history.json      one entry per finished epoch
    checkpoint.pt     the latest state (model, optimizer, scheduler, RNG, epoch, position)
    final.pt          the final model weights (a state dict)
    metrics.json      final test accuracy, images per second, wall time
    test_correct.pt   (passes, N) bool: per rotated test image, right or wrong (for paired tests)

With ``--runs N`` (N > 1) the top folder holds ``config.json`` and a summary
``metrics.json``, and each run has the files above in ``run-<i>/``.
Every file is written to a temporary name and renamed, so a crash never
leaves a half-written file behind; files get the permissions the user's umask gives
new files (``0644`` under the usual ``022``), so others on a shared file system can
read the runs.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import RunConfig
from .device import pick_device
from .errors import ConfigError, RunFolderError, StnlibError
from .files import atomic_write

CONFIG, HISTORY, CHECKPOINT, FINAL, METRICS = "config.json", "history.json", "checkpoint.pt", "final.pt", "metrics.json"
CORRECT = "test_correct.pt"  # (passes, N) bool: which rotated test images the final evaluation got right
# The passes of an interrupted final evaluation ({"correct": (k, N) bool, "generator": its state}), which
# --resume continues; removed once the evaluation is complete.
PARTIAL_CORRECT = "test_correct.partial.pt"


def save_json(path: Path, value, exclusive: bool = False) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(value, indent=2, default=_json_default).encode()), exclusive)


def claim_folder(folder: Path, config: dict) -> None:
    """Write ``config.json`` into the prepared, empty ``folder``, failing if another training wrote
    one first: of two trainings started into the same new folder, the second is refused."""
    try:
        save_json(Path(folder) / CONFIG, config, exclusive=True)
    except FileExistsError:
        raise RunFolderError(f"run folder {folder} was just claimed by another training; "
                             f"choose another --name") from None


def save_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def save_torch(path: Path, value) -> None:
    atomic_write(path, lambda f: torch.save(value, f))


def _json_default(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RunFolderError(f"{path} does not exist") from None
    except PermissionError:
        raise RunFolderError(f"cannot read {path}: permission denied") from None
    except IsADirectoryError:
        raise RunFolderError(f"{path} is a folder, not a file") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RunFolderError(f"{path} is corrupt (not valid JSON)") from None


def read_run_config(folder: Path) -> dict:
    """``config.json`` of a run folder, checked to be a run's: a mapping with the ``config`` (a valid
    ``RunConfig``), ``architecture`` and ``data`` (a ``DataSpec``) that ``python -m stnlib.learn`` writes."""
    path = Path(folder) / CONFIG
    saved = read_json(path)
    if not isinstance(saved, dict):
        raise RunFolderError(f"{path} is not a run's configuration (it holds a {type(saved).__name__})")
    missing = [key for key in ("config", "data") if not isinstance(saved.get(key), dict)]
    if missing:
        raise RunFolderError(f"{path} is not a run's configuration (no {' or '.join(repr(k) for k in missing)})")
    data = saved["data"]
    if not (isinstance(data.get("image_shape"), list) and len(data["image_shape"]) == 3
            and isinstance(data.get("num_classes"), int)):
        raise RunFolderError(f"{path} is damaged: its 'data' lacks the image shape or the class count")
    try:
        RunConfig.from_dict(saved["config"])
    except (ConfigError, TypeError) as error:
        raise RunFolderError(f"{path} is damaged: {error}") from None
    return saved


def read_torch(path: Path, what: str = "checkpoint"):
    """``torch.load`` with one-line errors for missing and corrupt files."""
    path = Path(path)
    if not path.is_file():
        raise RunFolderError(f"{what} {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError:
        raise RunFolderError(f"cannot read {what} {path}: permission denied") from None
    except Exception as exc:  # truncated zip, pickle garbage, wrong format
        raise RunFolderError(f"{what} {path} is corrupt or not a PyTorch file ({type(exc).__name__})") from None


def load_model_state(model: torch.nn.Module, saved, path: Path) -> None:
    """Load ``saved`` (a ``final.pt`` or checkpoint read from ``path``) into ``model``; a
    ``RunFolderError`` naming the file when it holds no weights or another model's."""
    if not isinstance(saved, dict) or not isinstance(saved.get("model"), dict):
        raise RunFolderError(f"{path} holds no model weights")
    try:
        model.grow_to_added_iterations(int(saved.get("extra_iterations", 0)))
        model.load_state_dict(saved["model"])
    except (RuntimeError, KeyError, TypeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        detail = "tensors of other shapes" if "size mismatch" in str(error) else first[:160]
        raise RunFolderError(f"{path} holds the weights of another model than {path.parent / CONFIG} "
                             f"describes ({detail})") from None


def weights_file(run_dir: Path) -> Path:
    """``final.pt`` of a run folder when training finished, else its latest checkpoint."""
    return run_dir / FINAL if (run_dir / FINAL).is_file() else run_dir / CHECKPOINT


def versions() -> dict[str, str]:
    """The versions a run was trained with. torchvision's is read from its installed metadata, without
    importing it (which costs seconds, since it imports torch's compiler)."""
    from importlib.metadata import PackageNotFoundError, version

    import numpy

    from .version import __version__

    try:
        torchvision = version("torchvision")
    except PackageNotFoundError:
        torchvision = "not installed"
    return {"stnlib": __version__, "torch": torch.__version__, "torchvision": torchvision,
            "numpy": numpy.__version__, "python": platform.python_version()}


def run_dirs(folder: Path, runs: int) -> list[Path]:
    """Folders of each run: ``folder`` itself for one run, ``folder/run-<i>`` for several."""
    return [Path(folder)] if runs == 1 else [Path(folder) / f"run-{i}" for i in range(runs)]


def ensure_folder(path: Path, what: str) -> Path:
    """Create the folder ``path`` (and its parents); a one-line error when a file is in the way."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise RunFolderError(f"{what} {path} is a file, not a folder") from None
    except NotADirectoryError:
        raise RunFolderError(f"{what} {path} lies inside a file, not a folder") from None
    except OSError as exc:
        raise RunFolderError(f"cannot create {what} {path}: {exc.strerror}") from None
    return path


def check_writable_folder(path: Path, what: str) -> Path:
    """A one-line ``RunFolderError`` unless ``path`` is, or could be created as, a folder this process
    can write in; creates nothing."""
    path = Path(path)
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        relation = "is a file" if existing == path else f"lies inside a file ({existing})"
        raise RunFolderError(f"{what} {path} {relation}, not a folder")
    if not _writable(existing):
        raise RunFolderError(f"cannot write into {what} {path}: {existing} is read-only")
    return path


def prepare_folder(folder: Path, resume: bool = False, overwrite: bool = False) -> None:
    """Make ``folder`` ready for a new run; refuse to touch an existing one unless asked."""
    folder = Path(folder)
    if resume:
        if not (folder / CONFIG).is_file():
            raise RunFolderError(f"cannot resume: {folder} holds no run ({CONFIG} is missing)")
        _refuse_read_only(folder, "resume")
        for leftover in folder.rglob(".*.tmp"):  # a write cut short by a hard kill
            leftover.unlink()
        return
    if folder.exists() and any(folder.iterdir()):
        if not overwrite:
            raise RunFolderError(f"run folder {folder} already exists; pass --resume to continue it, "
                                 f"--overwrite to replace it, or choose another --name")
        if not (folder / CONFIG).is_file():
            raise RunFolderError(f"refusing to --overwrite {folder}: it is not a run folder (no {CONFIG})")
        _refuse_read_only(folder, "overwrite")
        if not _writable(folder.resolve().parent):
            raise RunFolderError(f"cannot overwrite {folder}: the folder holding it is read-only")
        shutil.rmtree(folder)
    ensure_folder(folder, "run folder")
    _refuse_read_only(folder, "train into")


def release_unstarted_folder(folder: Path) -> None:
    """Remove a run folder this process claimed when no run in it has saved anything yet (it holds
    only ``config.json``, empty run folders and unfinished temporary files), so that it does not
    block the corrected command; a folder with any checkpoint or result is left as it is."""
    folder = Path(folder)
    try:
        entries = list(folder.rglob("*"))
    except OSError:
        return
    unstarted = all(p.is_dir() or p.name == CONFIG and p.parent == folder or p.name.endswith(".tmp")
                    for p in entries)
    if unstarted and folder.is_dir():
        shutil.rmtree(folder, ignore_errors=True)


def _refuse_read_only(folder: Path, action: str) -> None:
    """Refuse before any work when ``folder`` or a folder inside it cannot be written, so that no
    epoch is trained for nothing and an ``--overwrite`` never deletes only part of a run."""
    for path in [folder, *(p for p in folder.rglob("*") if p.is_dir())]:
        if not _writable(path):
            raise RunFolderError(f"cannot {action} {folder}: {path} is read-only")


def _writable(folder: Path) -> bool:
    """Whether this process may create and delete files in ``folder`` (by its effective user)."""
    effective = os.access in os.supports_effective_ids
    return os.access(folder, os.W_OK | os.X_OK, effective_ids=effective)


@dataclass
class Run:
    """A trained run: ``model`` (eval mode), its ``config``, ``history`` and ``metrics``."""

    folder: Path
    config: RunConfig
    model: torch.nn.Module
    history: list[dict]
    metrics: dict
    architecture: str
    test_correct: torch.Tensor | None = None  # (passes, N) bool, see CORRECT


def load_run(folder, run: int = 0, device: str = "cpu") -> Run:
    """Open a run folder written by ``python -m stnlib.learn``.

    ``run.model(x)`` takes ``x``: float ``(B, C, H, W)`` pixel intensities in
    ``[0, 1]`` and returns logits ``(B, num_classes)``; normalisation, if the run
    used it, happens inside. Uses ``final.pt``, else the latest checkpoint.
    """
    from .data import DataSpec
    from .models import build_model

    folder = Path(folder)
    if not folder.is_dir():
        raise RunFolderError(f"{folder} is not a run folder: "
                             f"{'it is a file' if folder.exists() else 'it does not exist'}")
    saved = read_run_config(folder)
    config = RunConfig.from_dict(saved["config"])
    if not 0 <= run < config.runs:
        raise RunFolderError(f"{folder} has {config.runs} run(s); run {run} does not exist")
    run_dir = run_dirs(folder, config.runs)[run]
    weights = read_torch(weights_file(run_dir), "weights")
    try:
        model = build_model(config, DataSpec.from_dict(saved["data"]))
    except (StnlibError, TypeError, ValueError) as error:
        raise RunFolderError(f"{folder / CONFIG} describes no model stnlib can build: "
                             f"{str(error).splitlines()[0]}") from None
    load_model_state(model, weights, weights_file(run_dir))
    model.to(pick_device(device), memory_format=torch.channels_last).eval()  # as trained: faster convolutions
    history = read_json(run_dir / HISTORY) if (run_dir / HISTORY).is_file() else []
    metrics = read_json(run_dir / METRICS) if (run_dir / METRICS).is_file() else {}
    correct = read_torch(run_dir / CORRECT, "test results") if (run_dir / CORRECT).is_file() else None
    return Run(run_dir, config, model, history, metrics, model.architecture, correct)
