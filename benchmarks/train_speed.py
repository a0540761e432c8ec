"""Training speed of the flagship STN-C0 on mnist5k: the original's data path against stnlib's.

(a) the original's path, re-created: a torchvision ``RandomRotation(90, bilinear)``
    + ``ToTensor`` pipeline on PIL images in a DataLoader with 4 workers, fp32, training
    the original's layers (plain ``nn.Conv2d`` in NCHW memory; ``--same-model`` gives it
    stnlib's layers instead, ``ImageConv2d`` and ``FourierConv2d``, so that only the data path differs);
(b) stnlib's path: ``stnlib.train.Trainer`` (device-resident data, batched
    rotation, its default precision).

Both train the same architecture (CNN classifier, CNN localization, ST at 0, Adam
0.001, batch 256) for the same number of epochs, alternating a/b per seed, and
both are scored by the same evaluator (10 passes of freshly rotated test
digits, fp32). Prints images/s (median over seeds), accuracy (mean and std),
their ratio, and the share of the machine's measured matmul FLOP/s reached.

End to end, each path also runs what its whole command runs: a test pass after every epoch and
the final 10 rotated passes (the original's through its PIL DataLoader, stnlib's through
``Trainer.run``); the header names the CPU and the precision, and the bf16 matmul peak is measured
only where the CPU has native bf16.

Every measurement runs in a fresh interpreter, so neither path inherits the other's allocator
settings (``stnlib.device.keep_freed_memory_for_reuse``), caches or warm-up. To measure a laptop's
AVX2 CPU on a newer one, pass ``--avx2`` (ATen, oneDNN and MKL capped at AVX2; the header says which caps
held).
"""
from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from stnlib import RunConfig
from stnlib.data import RandomRotation, load_dataset
from stnlib.device import cpu_has_bf16, cpu_model_name
from stnlib.evaluation import test_accuracy
from stnlib.models import build_model
from stnlib.train import Trainer

import isa_stand_in

FLAGSHIP = dict(dataset="mnist5k", model="CNN", localization="CNN", stn_placement=[0], rotate=True,
                optimizer="adam", lr=0.001, batch_size=256, device="cpu", eval_passes=10)


class PILDigits(Dataset):
    """The original's per-image path: PIL image -> RandomRotation -> ToTensor, in a worker."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        from PIL import Image
        from torchvision import transforms

        self.images = [Image.fromarray((img[0] * 255).round().byte().numpy(), mode="L") for img in images]
        self.labels = labels.tolist()
        self.transform = transforms.Compose([
            transforms.RandomRotation(90, interpolation=transforms.InterpolationMode.BILINEAR),
            transforms.ToTensor(),
        ])

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.labels[i]


def worker_context():
    """How the original's DataLoader workers start: forked, Python's default on Linux. (A process started by
    ``in_fresh_process`` would otherwise spawn them, each a fresh interpreter importing torch.)"""
    return multiprocessing.get_context("fork") if sys.platform.startswith("linux") else None


def original_test_pass(model, images, labels) -> float:
    """One rotated pass over the test digits through the original's PIL DataLoader path."""
    loader = DataLoader(PILDigits(images, labels), batch_size=256, num_workers=4,
                        multiprocessing_context=worker_context())
    model.eval()
    with torch.no_grad():
        hits = sum(int((model(x).argmax(1) == y).sum()) for x, y in loader)
    model.train()
    return hits / len(labels)


def in_fresh_process(function, *args):
    """``function(*args)`` run in a new interpreter (spawned, not forked)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def original_whole_command(epochs: int, seed: int, same_model: bool = False) -> float:
    """Seconds for the original's whole command: training, a test pass per epoch, 10 final passes."""
    data = load_dataset("mnist5k")
    start = time.perf_counter()
    model, _ = train_original_path(data, epochs, seed, same_model, after_epoch=lambda m: original_test_pass(
        m, data.test_images, data.test_labels))
    for _ in range(10):
        original_test_pass(model, data.test_images, data.test_labels)
    return time.perf_counter() - start


def stnlib_whole_command(epochs: int, seed: int, precision: str) -> float:
    """Seconds for stnlib's whole run (``Trainer.run``: training, a test pass per epoch, the final
    10 passes), without writing a run folder."""
    data = load_dataset("mnist5k")
    config = RunConfig(**FLAGSHIP, epochs=epochs, seed=seed, precision=precision)
    start = time.perf_counter()
    Trainer(config, data, torch.device("cpu"), seed, log=lambda _: None, progress=False).run()
    return time.perf_counter() - start


def train_original_path(data, epochs: int, seed: int, same_model: bool = False, after_epoch=lambda model: None):
    torch.manual_seed(seed)
    config = RunConfig(**FLAGSHIP, epochs=epochs, seed=seed)
    model = build_model(config, data.spec, cpu_fast_paths=same_model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    loader = DataLoader(PILDigits(data.train_images, data.train_labels), batch_size=256, shuffle=True,
                        num_workers=4, generator=torch.Generator().manual_seed(seed), persistent_workers=True,
                        multiprocessing_context=worker_context())
    seen, start = 0, time.perf_counter()
    for _ in range(epochs):
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen += len(y)
        after_epoch(model)
    return model, seen / (time.perf_counter() - start)


def original_path_speed(epochs: int, seed: int, same_model: bool = False) -> tuple[float, float]:
    """(training images/s, final accuracy) of the original's path."""
    data = load_dataset("mnist5k")
    model, speed = train_original_path(data, epochs, seed, same_model)
    return speed, score(model, data, seed)


def stnlib_path_speed(epochs: int, seed: int, precision: str) -> tuple[float, float, str]:
    """(training images/s, final accuracy, precision used) of stnlib's path."""
    data = load_dataset("mnist5k")
    model, speed, precision = train_stnlib_path(data, epochs, seed, precision)
    return speed, score(model, data, seed), precision


def train_stnlib_path(data, epochs: int, seed: int, precision: str):
    config = RunConfig(**FLAGSHIP, epochs=epochs, seed=seed, precision=precision)
    trainer = Trainer(config, data, torch.device("cpu"), seed, log=lambda _: None, progress=False)
    seen, start = 0, time.perf_counter()
    for _ in range(epochs):  # the epoch loop of Trainer.run, without the per-epoch test pass
        progress = trainer.train_epoch()
        trainer.epoch, trainer.current = trainer.epoch + 1, None
        seen += progress.seen
    return trainer.model, seen / (time.perf_counter() - start), trainer.precision


def score(model, data, seed: int) -> float:
    passes = test_accuracy(model, data.test_images, data.test_labels, RandomRotation(90.0), 10, seed=10_000 + seed)
    return sum(passes) / len(passes)


def matmul_flops(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times)


def training_flops_per_image(data, original_layers: bool = False) -> float:
    """Forward + backward FLOPs of one training image (convolutions and matmuls, as counted by torch), with
    stnlib's layers (the second convolution's products in the Fourier domain) or the original's."""
    model = build_model(RunConfig(**FLAGSHIP, epochs=1), data.spec, cpu_fast_paths=not original_layers)
    x, y = data.train_images[:64], data.train_labels[:64]
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() / len(x)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--precision", default="auto", help="stnlib's precision: auto, fp32 or bf16")
    parser.add_argument("--no-end-to-end", dest="end_to_end", action="store_false",
                        help="measure training only, not the whole commands")
    parser.add_argument("--same-model", action="store_true",
                        help="the original's path trains stnlib's layers (ImageConv2d, FourierConv2d), so only the "
                             "data path differs")
    isa_stand_in.add_flag(parser)
    args = parser.parse_args()
    isa_stand_in.rerun_as_avx2_if_asked(args)

    data = load_dataset("mnist5k")
    print(f"{cpu_model_name()}, native bf16: {'yes' if cpu_has_bf16() else 'no'}; stnlib precision {args.precision}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; mnist5k: "
          f"{len(data.train_images)} training images, {args.epochs} epochs, seeds 0..{args.seeds - 1}; "
          f"{isa_stand_in.header()}")
    rows = {"original": [], "stnlib": []}
    precision = args.precision
    for seed in range(args.seeds):
        rows["original"].append(in_fresh_process(original_path_speed, args.epochs, seed, args.same_model))
        speed, accuracy, precision = in_fresh_process(stnlib_path_speed, args.epochs, seed, args.precision)
        rows["stnlib"].append((speed, accuracy))
        print(f"seed {seed}: original {rows['original'][-1][0]:,.0f} img/s acc {rows['original'][-1][1]:.4f} | "
              f"stnlib {rows['stnlib'][-1][0]:,.0f} img/s acc {rows['stnlib'][-1][1]:.4f}", flush=True)

    print(f"\n{'path':<34}{'images/s (median)':>18}{'accuracy mean':>15}{'std':>8}")
    medians = {}
    original_label = "(a) original: PIL, 4 workers, fp32" + (", stnlib's layers" if args.same_model else "")
    for name, label in (("original", original_label), ("stnlib", f"(b) stnlib ({precision})")):
        speeds, accuracies = zip(*rows[name])
        medians[name] = statistics.median(speeds)
        spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
        print(f"{label:<34}{medians[name]:>18,.0f}{statistics.mean(accuracies):>15.4f}{spread:>8.4f}")
    print(f"speed ratio stnlib / original: {medians['stnlib'] / medians['original']:.2f}x (training only)")

    if args.end_to_end:
        whole = {"original": [], "stnlib": []}
        for seed in range(args.seeds):
            whole["original"].append(in_fresh_process(original_whole_command, args.epochs, seed, args.same_model))
            whole["stnlib"].append(in_fresh_process(stnlib_whole_command, args.epochs, seed, args.precision))
        seconds = {name: statistics.median(values) for name, values in whole.items()}
        print(f"end to end (training, a test pass per epoch, 10 final passes), median over seeds: original "
              f"{seconds['original']:.0f} s, stnlib {seconds['stnlib']:.0f} s: "
              f"{seconds['original'] / seconds['stnlib']:.2f}x")

    per_image = training_flops_per_image(data)
    direct = training_flops_per_image(data, original_layers=True)
    for dtype in (torch.float32, torch.bfloat16) if cpu_has_bf16() else (torch.float32,):
        peak = matmul_flops(dtype)
        print(f"matmul peak {str(dtype).split('.')[-1]:>8}: {peak / 1e9:,.0f} GFLOP/s; stnlib's training runs "
              f"{per_image * medians['stnlib'] / 1e9:,.1f} GFLOP/s = {per_image * medians['stnlib'] / peak:.1%} "
              f"(its images/s at the direct convolutions' FLOPs: {direct * medians['stnlib'] / peak:.1%}; "
              f"original path: {direct * medians['original'] / peak:.1%})")
    print(f"training FLOPs per image (forward + backward): stnlib {per_image / 1e6:.1f} MFLOP, "
          f"direct convolutions (the original's layers) {direct / 1e6:.1f} MFLOP")


if __name__ == "__main__":
    main()
