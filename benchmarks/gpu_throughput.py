"""Training throughput of run groups, and what it makes of the paper profile's wall time.

For R runs of the flagship STN-C0 under the paper profile's recipe (the original code's defaults: SGD,
lr 0.01, batch 256, rotated MNIST-sized digits), trained as one group (``stnlib.train.group``): images/s
per run and in total, eagerly and with the compiled step (``--compile-step``: CUDA graphs on CUDA), in
fp32, TF32 and bf16. R = 1 eager is a run trained alone by ``Trainer``, today's path. Also: the share
of the device's peak the total reaches (a training image's FLOPs counted by torch, against the
data-sheet peak on CUDA and the measured matmul rate on the CPU), the time to make a step's R batches
run by run and in one warp, and the projected wall time of the paper profile's 31 rotation runs and of
all its runs at the best rate. The mnist5k digits are tiled, so no
download is needed. Medians of ``--repeats`` timings of ``--steps`` steps, after warm-up.

    python benchmarks/gpu_throughput.py                       # CUDA: R = 1 5 10 20, fp32 tf32 bf16
    python benchmarks/gpu_throughput.py --device cpu --groups 1 2 4 --steps 5 --precisions fp32 bf16
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from stnlib import RunConfig
from stnlib.data import load_dataset
from stnlib.device import cpu_model_name, pick_device
from stnlib.models import build_model
from stnlib.train import RunGroup, Trainer

PAPER_IMAGES_PER_RUN = 150_000 * 256  # the paper profile: 150,000 steps of 256
ROTATION_RUNS = 31  # 5 seeds each of no ST, STN-C0, STN-C1, STN-SL2, STN-DL2, STN-C0x2, and one more
CONTROL_RUNS = 30  # notebook 07's, on 60x60 and 112x112 canvases: counted here at a digit's cost, a lower bound
# Dense data-sheet peaks, FLOP/s (SXM parts): fp32 on CUDA cores, TF32 and bf16 on tensor cores.
PEAKS = {"H100": {"fp32": 67e12, "tf32": 495e12, "bf16": 990e12},
         "H200": {"fp32": 67e12, "tf32": 495e12, "bf16": 990e12},
         "A100": {"fp32": 19.5e12, "tf32": 156e12, "bf16": 312e12}}


def flagship(batch_size: int, precision: str, device: str) -> RunConfig:
    return RunConfig(dataset="mnist5k", model="CNN", localization="CNN", stn_placement=[0], rotate=True,
                     optimizer="sgd", lr=0.01, batch_size=batch_size, epochs=1, seed=0, device=device,
                     precision="bf16" if precision == "bf16" else "fp32")


@contextlib.contextmanager
def tf32(enabled: bool):
    """TF32 for matmuls and convolutions on (``tf32``) or off (``fp32``: CUDA's true fp32)."""
    previous = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_second(data, device, runs: int, precision: str, compiled: bool, args) -> float:
    """Total training images/s of ``runs`` runs trained as one group (one run alone by ``Trainer`` when
    ``runs == 1`` and not ``compiled``)."""
    config = flagship(args.batch_size, precision, str(device))
    trainers = [Trainer(config, data, device, seed=s, log=lambda _: None, progress=False) for s in range(runs)]
    alone = runs == 1 and not compiled
    group = None if alone else RunGroup(trainers, log=print, progress=False, compile_step=compiled)
    fresh_orders(trainers)

    def steps(count: int) -> None:
        for _ in range(count):
            if trainers[0].current.position + args.batch_size > len(trainers[0].current.order):
                fresh_orders(trainers)  # every timed batch is a full one
            if alone:
                trainers[0].train_step(trainers[0].next_batch(trainers[0].current))
            else:
                group.train_step(*group.next_batches())
            advance(trainers, args.batch_size)

    steps(args.warmup)
    seconds = statistics.median(timed(lambda: steps(args.steps), device) for _ in range(args.repeats))
    return runs * args.batch_size * args.steps / seconds


def fresh_orders(trainers) -> None:
    """Start every run on a fresh epoch's sample order."""
    for trainer in trainers:
        trainer.current = None
        trainer.begin_epoch()


def advance(trainers, batch_size: int) -> None:
    """Count one batch of ``batch_size`` as made in every run's epoch."""
    for trainer in trainers:
        trainer.current.position += batch_size


def timed(work, device) -> float:
    """Seconds that ``work()`` takes, the device's queue drained at both ends."""
    synchronize(device)
    start = time.perf_counter()
    work()
    synchronize(device)
    return time.perf_counter() - start


def batch_milliseconds(data, device, runs: int, args) -> dict[str, float]:
    """Milliseconds to make one step's batches of ``runs`` runs (the sample gather and the rotation):
    run by run (``Trainer.next_batch``) and all in one warp (``RunGroup.next_batches``)."""
    config = flagship(args.batch_size, "fp32", str(device))
    trainers = [Trainer(config, data, device, seed=s, log=lambda _: None, progress=False) for s in range(runs)]
    group = RunGroup(trainers, log=print, progress=False)
    ways = {"run_by_run": lambda: [t.next_batch(t.current) for t in trainers], "one_warp": group.next_batches}

    def steps(make) -> None:
        for _ in range(args.steps):
            make()
            advance(trainers, args.batch_size)

    times = {way: [] for way in ways}
    for _ in range(args.repeats):  # the two ways alternate
        for way, make in ways.items():
            fresh_orders(trainers)  # the same number of full batches each time
            make()  # warm-up
            times[way].append(timed(lambda: steps(make), device) / args.steps * 1e3)
    return {way: statistics.median(values) for way, values in times.items()}


def flops_per_image(spec) -> float:
    """Forward + backward FLOPs of one training image of the flagship with the paper's layers (as torch
    counts them; on the CPU a run alone computes some in the Fourier domain, with fewer)."""
    model = build_model(flagship(64, "fp32", "cpu"), spec, cpu_fast_paths=False)
    x = torch.rand(16, *spec.image_shape)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), torch.zeros(16, dtype=torch.long)).backward()
    return counter.get_total_flops() / len(x)


def peak(device: torch.device, precision: str) -> tuple[float | None, str]:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for part, peaks in PEAKS.items():
            if part in name:
                return peaks[precision], f"{part} data sheet, dense"
        return None, "no data-sheet peak known for this device"
    n = 2048
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times), f"measured {n}x{n} matmul, {torch.get_num_threads()} threads"


def hours(images: float, rate: float) -> float:
    return images / rate / 3600


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--groups", type=int, nargs="+", default=[1, 5, 10, 20], help="runs per group, R")
    parser.add_argument("--precisions", nargs="+", default=None, choices=["fp32", "tf32", "bf16"],
                        help="default: fp32 tf32 bf16 on CUDA, fp32 bf16 on the CPU")
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="eager steps only")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 100 on CUDA, 5 on the CPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 20 / 2)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = parser.parse_args()

    device = pick_device(args.device)
    cuda = device.type == "cuda"
    args.steps = args.steps or (100 if cuda else 5)
    args.warmup = args.warmup if args.warmup is not None else (20 if cuda else 2)
    precisions = args.precisions or (["fp32", "tf32", "bf16"] if cuda else ["fp32", "bf16"])
    if not cuda and "tf32" in precisions:
        parser.error("tf32 exists on CUDA only")
    name = torch.cuda.get_device_name(device) if cuda else cpu_model_name()
    data = load_dataset("mnist5k")
    tiles = -(-12_800 // len(data.train_images))  # enough distinct batches for any step count here
    data = dataclasses.replace(data, train_images=data.train_images.repeat(tiles, 1, 1, 1),
                               train_labels=data.train_labels.repeat(tiles)).to(device)
    per_image = flops_per_image(data.spec)
    print(f"{name}, torch {torch.__version__}, {torch.get_num_threads()} threads; STN-C0, batch {args.batch_size}, "
          f"{per_image / 1e6:.1f} MFLOP per training image")
    rows = []
    for precision in precisions:
        device_peak, source = peak(device, precision)
        for compiled in ([False, True] if args.compile else [False]):
            for runs in args.groups:
                with tf32(precision == "tf32"):
                    total = images_per_second(data, device, runs, precision, compiled, args)
                share = total * per_image / device_peak if device_peak else None
                rows.append({"precision": precision, "compiled": compiled, "runs": runs, "total": total,
                             "per_run": total / runs, "share_of_peak": share, "peak": device_peak,
                             "peak_source": source})
                print(f"{precision:5} {'compiled' if compiled else 'eager':8} R={runs:3}: {total:12,.0f} images/s in "
                      f"total, {total / runs:10,.0f} per run"
                      + (f", {100 * share:.2f} % of peak ({source})" if share else ""), flush=True)
    print("\nmaking a step's batches (gather and rotation, fp32), milliseconds:")
    batches = []
    for runs in [r for r in args.groups if r > 1]:
        made = batch_milliseconds(data, device, runs, args)
        batches.append({"runs": runs, **made})
        print(f"R={runs:3}: run by run {made['run_by_run']:.2f}, in one warp {made['one_warp']:.2f} "
              f"({made['run_by_run'] / made['one_warp']:.1f}x)", flush=True)
    best = max(rows, key=lambda row: row["total"])
    rotation = ROTATION_RUNS * PAPER_IMAGES_PER_RUN
    everything = (ROTATION_RUNS + CONTROL_RUNS) * PAPER_IMAGES_PER_RUN
    alone = next((r for r in rows if r["runs"] == 1 and not r["compiled"] and r["precision"] == best["precision"]), None)
    print(f"\nbest: {best['precision']}, {'compiled' if best['compiled'] else 'eager'}, R={best['runs']}: "
          f"{best['total']:,.0f} images/s"
          + (f", {best['total'] / alone['total']:.1f}x one run alone" if alone else ""))
    print(f"paper profile at that rate: the {ROTATION_RUNS} rotation runs {hours(rotation, best['total']):.2f} h; "
          f"all {ROTATION_RUNS + CONTROL_RUNS} runs at least {hours(everything, best['total']):.2f} h (the controls' larger "
          f"canvases cost more)")
    if alone:
        print(f"one run at a time ({alone['total']:,.0f} images/s): rotation runs {hours(rotation, alone['total']):.2f} h")
    if args.json:
        args.json.write_text(json.dumps({
            "device": name, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "batch_size": args.batch_size, "steps": args.steps, "repeats": args.repeats,
            "flops_per_image": per_image, "rows": rows, "batch_milliseconds": batches, "best": best,
            "projected_hours": {"rotation_runs": hours(rotation, best["total"]),
                                "all_runs": hours(everything, best["total"]),
                                "rotation_runs_one_at_a_time": hours(rotation, alone["total"]) if alone else None},
            "date": time.strftime("%Y-%m-%d")}, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
