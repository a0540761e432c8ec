"""One lent GPU session's work in one command, each part under its own time limit, so that what finished
comes back even when time runs out:

1. the quick profile's study on CUDA, as ``make study`` runs it (every notebook it runs, timed; its
   summary, claims and readings, to set against the CPU's ``figures/``);
2. the run groups' throughput (``gpu_throughput.py``: R = 1, 5, 10, 20 eagerly in fp32, TF32 and bf16,
   then the compiled step in TF32 for R = 10 and 20);
3. the paper profile's rotation runs at the original code's schedule (SGD, lr 0.01, batch 256, 150,000
   steps, lr / 10 after 50,000 and 100,000), each variant's 5 seeds as one run group, most informative
   first: STN-C0, STN-C1, STN-SL2, STN-DL2, STN-C0x2. A group stopped by the time limit checkpoints (SIGTERM)
   and a later session continues it with ``--runs-from`` (the ``paper-*.tar.gz`` this one wrote).

Everything lands in ``OUT`` as at most 8 files, none over 16 MiB: ``session.log``, ``study.tar.gz``,
``throughput.tar.gz`` (the benchmark's tables and JSON) and one ``paper-VARIANT.tar.gz`` per variant trained
(its runs' folders, as the study lays them out under ``runs/``).
Full MNIST is used where it is present in the data root, else the embedded mnist5k (the log says which).
The study needs papermill and ipykernel; without them part 1 says so and is skipped.

    python benchmarks/gpu_session.py "$OUT" --seconds 540      # on the GPU machine
    python benchmarks/gpu_session.py /tmp/out --tiny           # a check of the script on the CPU, in minutes
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PAPER_VARIANTS = ("STN-C0", "STN-C1", "STN-SL2", "STN-DL2", "STN-C0x2")  # most informative first


def log(out: Path, line: str) -> None:
    print(line, flush=True)
    with open(out / "session.log", "a") as file:
        file.write(line + "\n")


def run_for(out: Path, command: list[str], seconds: float, output: Path | None = None) -> tuple[int | None, float]:
    """Run ``command`` for at most ``seconds`` (then SIGTERM, and SIGKILL 60 s later); its output goes to
    ``output`` (else to the session log). Returns its exit status (``None``: stopped) and its seconds."""
    start = time.perf_counter()
    with open(output or out / "session.log", "a") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT,
                                   env=dict(os.environ, PYTHONUNBUFFERED="1",
                                            PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])))
        try:
            status = process.wait(timeout=max(seconds, 1))
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            status = None
    return status, time.perf_counter() - start


def study(out: Path, work: Path, args) -> None:
    missing = [name for name in ("papermill", "ipykernel") if importlib.util.find_spec(name) is None]
    if missing:
        log(out, f"study: skipped, {' and '.join(missing)} missing (carry their wheels)")
        return
    profile = "smoke" if args.tiny else "quick"
    command = [sys.executable, "-m", "stnlib.reproduce", "--profile", profile, "--output", str(work / "study"),
               "--figures", str(work / "study" / "figures")]
    status, seconds = run_for(out, command, args.study_seconds)
    log(out, f"study ({profile} profile): {'stopped at its limit' if status is None else f'exit {status}'} "
             f"after {seconds:.0f} s")
    with tarfile.open(out / "study.tar.gz", "w:gz") as tar:
        for path in sorted((work / "study").rglob("*")):
            if path.suffix in (".md", ".json", ".csv") and path.is_file():
                tar.add(path, arcname=path.relative_to(work))


def throughput(out: Path, work: Path, args) -> None:
    script = str(HERE / "gpu_throughput.py")
    if args.tiny:
        tiny = ["--device", "cpu", "--precisions", "fp32", "--batch-size", "16", "--steps", "2", "--warmup", "1",
                "--repeats", "1"]
        parts = [("gpu_throughput", [*tiny, "--groups", "1", "2", "--no-compile"]), ("gpu_throughput_compiled", [*tiny, "--groups", "2"])]
    else:
        parts = [("gpu_throughput", ["--no-compile"]), ("gpu_throughput_compiled", ["--precisions", "tf32", "--groups", "10", "20"])]
    for (name, options), seconds in zip(parts, (args.throughput_seconds, args.compiled_seconds)):
        command = [sys.executable, script, *options, "--json", str(work / f"{name}.json")]
        status, spent = run_for(out, command, seconds, work / f"{name}.txt")
        log(out, f"{name}: {'stopped at its limit' if status is None else f'exit {status}'} after {spent:.0f} s")
    with tarfile.open(out / "throughput.tar.gz", "w:gz") as tar:
        for name, _ in parts:
            for path in (work / f"{name}.txt", work / f"{name}.json"):
                if path.is_file():
                    tar.add(path, arcname=path.name)


def paper(out: Path, work: Path, args, deadline: float) -> None:
    for earlier in args.runs_from:
        with tarfile.open(earlier) as tar:
            tar.extractall(work, filter="data")
    for variant in PAPER_VARIANTS:
        seconds = deadline - time.perf_counter()
        if seconds < 20:  # a group needs about 10 s to start
            log(out, f"paper: no time left for {variant}")
            break
        command = [sys.executable, str(Path(__file__)), "--train-paper-variant", variant, "--work", str(work)]
        if args.tiny:
            command.append("--tiny")
        status, spent = run_for(out, command, seconds)
        log(out, f"paper {variant}: {'stopped at its limit, checkpointed' if status is None else f'exit {status}'} "
                 f"after {spent:.0f} s")
        with tarfile.open(out / f"paper-{variant.removeprefix('STN-')}.tar.gz", "w:gz") as tar:
            for folder in sorted((work / "runs").glob(f"*/*/{variant}")):
                finished = all((seed / "metrics.json").is_file() for seed in folder.iterdir())
                tar.add(folder, arcname=str(folder.relative_to(work)),  # a finished run needs no checkpoint
                        filter=lambda member: None if finished and member.name.endswith("checkpoint.pt") else member)
        if status is None:
            break


def paper_study(work: Path, tiny: bool):
    """The paper profile's study in ``work``: on full MNIST where it loads, else on mnist5k (``--tiny``:
    mnist5k, one epoch, two seeds, on the CPU)."""
    from stnlib.errors import DataError
    from stnlib.study import Study

    if tiny:
        return Study("paper", dataset="mnist5k", epochs=1, seeds=2, device="cpu", output=str(work), log=print)
    study = Study("paper", output=str(work), log=print)
    try:
        study.data
    except DataError as error:
        print(f"{error}; the paper profile's runs train on mnist5k", flush=True)
        study = Study("paper", dataset="mnist5k", output=str(work), log=print)
    return study


def train_paper_variant(label: str, work: Path, tiny: bool) -> None:
    """Train (or continue) the paper profile's seeds of the variant ``label`` as one run group in ``work/runs``."""
    from dataclasses import replace

    from stnlib.study.variants import ITERATION_VARIANTS, LOCALIZATION_DEPTH_VARIANTS, PLACEMENT_VARIANTS
    from stnlib.train import fit_together

    variants = {v.label: v for v in (*PLACEMENT_VARIANTS, *LOCALIZATION_DEPTH_VARIANTS, *ITERATION_VARIANTS)}
    study = paper_study(work, tiny)
    configs = [replace(c, compile_step=not tiny) for c in study.configs(variants[label])]
    length = f"{configs[0].iterations:,} steps" if configs[0].iterations else f"{configs[0].epochs} epochs"
    print(f"paper {label}: {len(configs)} seeds on {study.profile.dataset}, {length} each, in "
          f"{Path(configs[0].name).parent}", flush=True)
    for config, outcome in zip(configs, fit_together(configs, study.data, log=print)):
        metrics = getattr(outcome, "metrics", None)
        print(f"seed {config.seed}: " + (f"test accuracy {metrics['test_accuracy']:.4f}, "
                                         f"{metrics['train_images_per_second']:,.0f} images/s, group of "
                                         f"{metrics['group_size']}" if metrics else str(outcome)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, nargs="?")
    parser.add_argument("--seconds", type=float, default=540, help="the whole session's time")
    parser.add_argument("--study-seconds", type=float, default=200)
    parser.add_argument("--throughput-seconds", type=float, default=120)
    parser.add_argument("--compiled-seconds", type=float, default=100)
    parser.add_argument("--runs-from", type=Path, nargs="*", default=[],
                        help="paper-*.tar.gz of an earlier session, to continue")
    parser.add_argument("--skip", nargs="*", default=[], choices=["study", "throughput", "paper"])
    parser.add_argument("--tiny", action="store_true", help="a few steps of everything, on the CPU")
    parser.add_argument("--train-paper-variant", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train_paper_variant:
        return train_paper_variant(args.train_paper_variant, args.work, args.tiny)
    if args.out is None:
        parser.error("name the folder the results go to (on the GPU machine: \"$OUT\")")
    deadline = time.perf_counter() + args.seconds
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(os.environ.get("TMPDIR", "/tmp")) / "stnlib-gpu-session"
    work.mkdir(parents=True, exist_ok=True)
    import torch

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"
    log(args.out, f"{time.strftime('%Y-%m-%d %H:%M')}: {device}, torch {torch.__version__}, {os.cpu_count()} CPUs")
    if "study" not in args.skip:
        study(args.out, work, args)
    if "throughput" not in args.skip:
        throughput(args.out, work, args)
    if "paper" not in args.skip:
        paper(args.out, work, args, deadline)


if __name__ == "__main__":
    main()
