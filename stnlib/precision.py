"""``--precision auto``: the faster of fp32 and bf16 for the model at hand, measured on this machine.

Whether bf16 autocast pays depends on the processor, its libraries and the model: on a CPU with
AVX-512 BF16 but no AMX it trains the flagship about 3x slower than fp32, and on an H100 these small
networks train faster in fp32 too. So ``auto`` times a few training steps (forward and backward on
random images of the run's batch size, the two precisions alternating) and keeps the faster, fp32 on
a tie. The choice is cached in ``precision.json`` in the data root (beside the mnist5k cache), keyed
by the processor, its thread count and instruction-set caps, the library versions, and the model's
architecture, parameter shapes, input shape and batch size, so each machine measures a model once.
"""
from __future__ import annotations

import copy
import hashlib
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .device import autocast, cpu_model_name, isa_caps
from .files import atomic_write

MEASURED = ("fp32", "bf16")
CACHE_FILE = "precision.json"
TIMED_ROUNDS = 3  # timed steps per precision, after one untimed warm-up step each
CLEARLY_SLOWER = 1.5  # after the first round, a precision this many times slower is not timed further


@dataclass(frozen=True)
class PrecisionChoice:
    """What ``auto`` became: ``precision``, the median ``seconds`` per training step of each
    precision measured, the ``batch_size`` they were measured at, and whether the choice was read
    from ``cache`` (a path) or measured now (``cache`` then says where it was stored, or ``None``)."""

    precision: str
    seconds: dict[str, float]
    batch_size: int
    cache: Path | None
    cached: bool = False

    def reason(self) -> str:
        """One line for the run's log: which precision and why."""
        timings = ", ".join(f"{name} {seconds * 1000:,.0f} ms" for name, seconds in self.seconds.items())
        origin = f"measured earlier on this machine ({self.cache})" if self.cached else "measured now"
        return (f"precision auto: {self.precision}, the faster here (a training step of {self.batch_size} "
                f"images: {timings}; {origin})")


def faster(seconds: dict[str, float]) -> str:
    """The precision with the fewest seconds per step; fp32 on a tie or where only it was measured."""
    return min(seconds, key=lambda name: (seconds[name], name != "fp32"))


def _step_seconds(model: torch.nn.Module, images: torch.Tensor, precision: str) -> float:
    """Seconds of one forward and backward pass of ``model`` on ``images`` under ``precision``."""
    device = images.device
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    with autocast(device, precision):
        loss = model(images).float().square().mean()
    loss.backward()
    model.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def measure(model: torch.nn.Module, in_shape: tuple[int, ...], batch_size: int,
            rounds: int = TIMED_ROUNDS) -> dict[str, float]:
    """Median seconds per training step of a copy of ``model`` in fp32 and in bf16, on random
    ``(batch_size, *in_shape)`` images on the model's device. A precision more than
    ``CLEARLY_SLOWER`` times slower than the other in the first round is timed no further (its one
    step stands). ``model`` itself and every random stream are left as they were."""
    device = next(model.parameters()).device
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        trial = copy.deepcopy(model).train()
        generator = torch.Generator().manual_seed(0)
        images = torch.rand(batch_size, *in_shape, generator=generator).to(device, memory_format=torch.channels_last)
        for name in MEASURED:
            _step_seconds(trial, images, name)  # warm-up: kernels chosen, memory allocated
        times: dict[str, list[float]] = {name: [] for name in MEASURED}
        timing = list(MEASURED)
        for round_ in range(rounds):
            for name in timing:
                times[name].append(_step_seconds(trial, images, name))
            if round_ == 0:
                best = min(t[0] for t in times.values())
                timing = [name for name in MEASURED if times[name][0] <= CLEARLY_SLOWER * best]
    return {name: statistics.median(t) for name, t in times.items()}


def cache_key(model: torch.nn.Module, in_shape: tuple[int, ...], batch_size: int) -> str:
    """What the measured choice depends on: this machine (processor or GPU, threads, instruction-set
    caps, library versions) and the model (architecture, parameter shapes, input shape, batch size)."""
    device = next(model.parameters()).device
    machine = (torch.cuda.get_device_name(device) if device.type == "cuda"
               else f"{cpu_model_name()}, {torch.get_num_threads()} threads, ISA caps {isa_caps()}")
    shapes = ";".join(f"{name}:{tuple(p.shape)}" for name, p in model.state_dict().items())
    digest = hashlib.sha256(shapes.encode()).hexdigest()[:12]
    versions = f"torch {torch.__version__}"
    architecture = getattr(model, "architecture", type(model).__name__)
    return f"{machine} | {versions} | {architecture} {digest} | {tuple(in_shape)} x {batch_size}"


def _read_cache(path: Path) -> dict:
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):  # missing, unreadable or damaged: measure again
        return {}
    return stored if isinstance(stored, dict) else {}


def _write_cache(path: Path, key: str, entry: dict) -> bool:
    """Add ``entry`` under ``key`` to the cache at ``path``, written whole or not at all; whether it
    was stored (a folder that cannot be written is left alone)."""
    stored = {**_read_cache(path), key: entry}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda handle: handle.write(json.dumps(stored, indent=1, sort_keys=True).encode()),
                     mode=0o644)
    except OSError:
        return False
    return True


def choose_precision(model: torch.nn.Module, in_shape: tuple[int, ...], batch_size: int,
                     cache_folder: Path | None) -> PrecisionChoice:
    """What ``--precision auto`` means for ``model`` (on its training device, in training layout) at
    ``batch_size``: the cached choice for this machine and model, else the faster of fp32 and bf16
    measured now (``measure``) and cached in ``cache_folder / CACHE_FILE`` (``None``: not cached)."""
    path = Path(cache_folder) / CACHE_FILE if cache_folder is not None else None
    key = cache_key(model, in_shape, batch_size)
    entry = _read_cache(path).get(key) if path is not None else None
    if isinstance(entry, dict) and isinstance(entry.get("seconds"), dict) and entry["seconds"].get("fp32"):
        seconds = {name: float(entry["seconds"][name]) for name in MEASURED if name in entry["seconds"]}
        return PrecisionChoice(faster(seconds), seconds, batch_size, path, cached=True)
    seconds = measure(model, in_shape, batch_size)
    stored = path is not None and _write_cache(path, key, {"seconds": seconds, "chosen": faster(seconds),
                                                           "measured": time.strftime("%Y-%m-%d")})
    return PrecisionChoice(faster(seconds), seconds, batch_size, path if stored else None)
