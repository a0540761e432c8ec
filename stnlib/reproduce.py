"""Re-run the study notebooks headlessly with papermill: ``python -m stnlib.reproduce --profile quick``.

Runs every numbered notebook except those the profile leaves out of its time budget (the quick
profile: 08, the equivariant baseline); ``--only 08`` runs just those named, ``--all`` every one.

Writes the executed notebooks to ``<output>/notebooks/``, figures to ``--figures`` (default
``<output>/figures``; ``make study`` passes the committed ``figures/``), each
notebook's numbers to ``<output>/results/``, and ``<output>/summary.md``: the claims table
and how long each notebook took. Runs trained by one notebook are reused by the others. Where the
profile trains runs together (the quick profile: side by side on the CPU, one process and one thread
each; the paper profile: one Ray sweep), the runs the chosen notebooks need (``stnlib.study.plan``)
are trained first, all at once, and the notebooks load them; they then run side by side, one kernel per
core with one thread each, and ``09_claims``, which reads the others' numbers, after them.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from .errors import StnlibError
from .runs import check_writable_folder, ensure_folder, save_text
from .study import PROFILES, Study, claims_markdown, claims_table
from .study.readings import readings_markdown
from .study.plan import CLAIMS_NOTEBOOK, planned_runs

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
# Thread settings of a kernel that runs beside others: one thread each, so that the notebooks' numbers
# do not depend on the core count, as the runs' do not (stnlib.study.parallel).
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def find_notebooks(folder: Path) -> list[Path]:
    notebooks = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise StnlibError(f"no numbered notebooks in {folder}; pass --notebooks")
    return notebooks


def select_notebooks(found: list[Path], profile: str, only: list[str] | None = None,
                     run_all: bool = False) -> tuple[list[Path], list[Path]]:
    """(to run, left out): ``only`` (two-digit numbers) picks notebooks by number; otherwise every
    notebook except the profile's optional ones, unless ``run_all``."""
    numbers = {path.name[:2]: path for path in found}
    if only:
        unknown = [number for number in only if number not in numbers]
        if unknown:
            raise StnlibError(f"no notebook numbered {', '.join(unknown)}; choose from {', '.join(numbers)}")
        return [path for number, path in numbers.items() if number in only], []
    optional = () if run_all else PROFILES[profile].optional_notebooks
    return ([path for number, path in numbers.items() if number not in optional],
            [path for number, path in numbers.items() if number in optional])


def run_notebook(notebook: Path, executed: Path, parameters: dict) -> float:
    """Execute one notebook with papermill; returns the seconds it took."""
    import papermill

    start = time.perf_counter()
    declared = papermill.inspect_notebook(str(notebook))  # pass only what the notebook declares
    parameters = {k: v for k, v in parameters.items() if k in declared}
    papermill.execute_notebook(str(notebook), str(executed), parameters=parameters, cwd=str(notebook.parent),
                               kernel_name="python3", progress_bar=False, log_output=False,
                               kernel_manager_class=encrypting_kernel_manager())
    return time.perf_counter() - start


def run_notebook_reporting(notebook: Path, executed: Path, parameters: dict) -> tuple[float, str]:
    """``run_notebook``, reporting a failure as its status instead of raising: (seconds, status)."""
    start = time.perf_counter()
    try:
        return run_notebook(notebook, executed, parameters), "ok"
    except Exception as error:  # a failing notebook is reported; the others still run
        return time.perf_counter() - start, failure_status(error)


def _start_notebook_worker() -> None:
    os.environ.update(ONE_THREAD)  # read by the kernels this process starts


def run_notebooks(notebooks: list[Path], executed: Path, parameters: dict, workers: int | None,
                  log=print) -> list[tuple[str, float, str]]:
    """Execute ``notebooks`` into the folder ``executed``: (name, seconds, status) for each, in the
    order given. ``workers`` ``None``: one after another in this process. A number: up to that many at
    once, each kernel on one thread (even a lone one, so that its numbers are the same), and
    ``CLAIMS_NOTEBOOK`` after all the others; only safe when every run they load is trained, since
    two notebooks that trained the same missing run at once would collide."""
    ensure_folder(executed, "notebooks folder")
    timings = {}
    first = [notebook for notebook in notebooks if notebook.stem != CLAIMS_NOTEBOOK]
    if workers is not None and first:
        workers = max(1, min(workers, len(first)))
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_start_notebook_worker) as pool:
            log(f"running {len(first)} notebook{'s' * (len(first) > 1)}, {workers} at a time, one thread each")
            futures = {pool.submit(run_notebook_reporting, notebook, executed / notebook.name, parameters): notebook
                       for notebook in first}
            for future in as_completed(futures):
                notebook = futures[future]
                timings[notebook] = future.result()
                log(f"  {notebook.name}: {timings[notebook][1]} in {timings[notebook][0]:.0f} s")
    for notebook in (n for n in notebooks if n not in timings):
        log(f"running {notebook.name} ({parameters.get('profile')})")
        timings[notebook] = run_notebook_reporting(notebook, executed / notebook.name, parameters)
        log(f"  {timings[notebook][1]} in {timings[notebook][0]:.0f} s")
    return [(notebook.stem, *timings[notebook]) for notebook in notebooks]


def notebook_workers(profile: str, training: tuple[str, float, str] | None) -> int | None:
    """How many notebooks may run at once (``run_notebooks``): one per core where the profile's runner
    has trained every run they load beforehand; ``None`` (one after another, here) where the notebooks
    train their own (the ``local`` runner) or the training failed."""
    import torch

    if PROFILES[profile].runner == "local" or (training is not None and training[2] != "ok"):
        return None
    return torch.get_num_threads()  # the cores the training used, one run per core


@functools.cache
def encrypting_kernel_manager() -> type:
    """jupyter_client's ``KernelManager``, asking for CurveZMQ transport encryption where the kernel
    supports it (``transport_encryption = "auto"``): ipykernel 7.3 and later warn on every start of a
    kernel whose local TCP sockets are unencrypted. Older jupyter_client has no such policy, and
    gets its plain ``KernelManager``."""
    from jupyter_client.manager import KernelManager
    from traitlets import default

    if "transport_encryption" not in KernelManager.class_trait_names():
        return KernelManager

    class EncryptingKernelManager(KernelManager):
        @default("transport_encryption")
        def _encrypt_where_supported(self):
            return "auto"

    return EncryptingKernelManager


def machine_line(profile: str) -> str:
    """The processor, threads and precision the run used, for the summary's header."""
    import torch

    from .device import cpu_model_name

    cuda = PROFILES[profile].device != "cpu" and torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    processor = (torch.cuda.get_device_name(device) if cuda
                 else f"{cpu_model_name()}, {torch.get_num_threads()} threads")
    precision = PROFILES[profile].precision
    if precision == "auto":
        precision = "auto (the faster of fp32 and bf16, measured per model; each run's metrics.json records it)"
    return f"{processor}; precision {precision}"


def input_st_lines(results: dict) -> list[str]:
    """Per seed, how much of each rotation STN-C0 undoes on the held-out digits."""
    fits = results.get("02_placement", {}).get("angle_fits", {}).get("STN-C0")
    if not fits:
        return ["(notebook 02 recorded no STN-C0 angle fits)"]
    # notebook 00's breakdown of r: without the digits whose undone angle errs by more than its threshold
    breakdown = results.get("00_quickstart", {}).get("correlation_breakdown", {})
    broken_down = all(f"seed {seed}" in breakdown for seed in range(len(fits)))
    threshold = f"{breakdown['seed 0']['large_error']:g}°" if broken_down else ""
    extra_columns = f" r without errors > {threshold} | errors > {threshold} |" if broken_down else ""
    lines = ["| seed | slope | r | std(true − undone) |" + extra_columns,
             "|---|---|---|---|" + ("---|---|" if broken_down else "")]
    for seed, f in enumerate(fits):
        line = f"| {seed} | {f['slope']:.2f} | {f['correlation']:.2f} | {f['original_std']:.1f}° |"
        if broken_down:
            b = breakdown[f"seed {seed}"]
            line += f" {b['r_without_large']:.2f} | {b['large_share']:.1%} |"
        lines.append(line)
    return lines


CLAIMS_FILE = "claims.md"
READINGS_FILE = "readings.md"  # the readings the claims table does not give (notebooks 00 and 08)


def built_claims(results: dict[str, dict]) -> tuple[str | None, str]:
    """The claims table of ``results`` (``Study.results()``) in Markdown and ``""``; or ``None`` and why
    not, where a claim's numbers are missing."""
    try:
        return claims_markdown(claims_table(results)), ""
    except StnlibError as error:
        return None, str(error)


def summary_markdown(profile: str, timings: list[tuple[str, float | None, str]], study: Study,
                     wall_seconds: float | None = None, results: dict[str, dict] | None = None) -> str:
    """``summary.md``: the machine, STN-C0's fits, the claims table, each notebook's time and the figures;
    ``results``: ``study.results()``, where the caller has read them already."""
    results = study.results() if results is None else results
    claims, why_not = built_claims(results)
    claims = claims if claims is not None else f"not built: {why_not}"
    lines = [f"# Study reproduction: {profile} profile", "", f"{PROFILES[profile].description}.", "",
             f"Machine: {machine_line(profile)}.", "",
             "## STN-C0 undoes the rotation (held-out digits, per seed)", "", *input_st_lines(results), "",
             "## Claims", "", claims, "",
             "## Notebooks", "", "| notebook | seconds | status |", "|---|---|---|"]
    lines += [f"| {name} | {'' if seconds is None else f'{seconds:.0f}'} | {status} |"
              for name, seconds, status in timings]
    rows = sum(s for _, s, _ in timings if s is not None)
    total = f"Total: {rows:.0f} s." if wall_seconds is None else f"Total: {wall_seconds:.0f} s."
    if wall_seconds is not None and rows > 1.05 * wall_seconds:
        total += f" The notebooks ran side by side, so the rows add up to more ({rows:.0f} s)."
    lines += ["", total, ""]
    figures = sorted(p.name for p in study.figures.glob("*.png"))
    lines += ["## Figures", ""] + [f"- `{study.figures / name}`" for name in figures]
    return "\n".join(lines) + "\n"


def failure_status(error: Exception) -> str:
    """A summary row's status for ``error``: ``failed: Type: its last line``."""
    return f"failed: {type(error).__name__}: {str(error).strip().splitlines()[-1][:200]}"


def train_planned_runs(profile: str, output: Path, notebooks: list[str], log=print) -> tuple[str, float, str] | None:
    """Train the runs the ``notebooks`` will ask for (``stnlib.study.plan``) all at once, where the
    profile's runner trains runs together (``processes``, ``ray``): a (row name, seconds, status)
    for the summary, or ``None`` where there was nothing to train or the runner trains one at a time."""
    study = Study(profile, output=str(output), log=log)
    if study.profile.runner == "local":
        return None
    configs, datasets = planned_runs(study, notebooks)
    start = time.perf_counter()
    try:
        trained = study.train(configs, datasets)
    except Exception as error:  # the notebooks still run, and train what is missing themselves
        status = failure_status(error)
        log(f"training before the notebooks {status}")
        return "training before the notebooks", time.perf_counter() - start, status
    if not trained:
        return None
    seconds = time.perf_counter() - start
    log(f"  trained {trained} runs in {seconds:.0f} s")
    return f"training before the notebooks ({trained} runs)", seconds, "ok"


def reproduce(profile: str, output: Path, figures: Path | None, notebooks: Path, log=print,
              only: list[str] | None = None, run_all: bool = False,
              workers: int | None | str = "auto") -> list[tuple[str, float | None, str]]:
    """Run the numbered notebooks headlessly under ``profile`` (see ``select_notebooks``); figures go
    to ``figures`` (default ``<output>/figures``: the committed ``figures/`` only when asked for).
    ``workers``: notebooks at once (``run_notebooks``; default: ``notebook_workers``). Returns (notebook, seconds, status)
    per notebook: status ``ok``, ``failed: ...`` or ``left out: ...`` (seconds ``None``)."""
    if profile not in PROFILES:
        raise StnlibError(f"unknown profile {profile!r}; choose from {', '.join(PROFILES)}")
    chosen, left_out = select_notebooks(find_notebooks(notebooks), profile, only, run_all)
    output = output.resolve()
    figures = (figures or output / "figures").resolve()
    with exclusive_use(ensure_folder(output, "--output folder")):
        ensure_folder(figures, "--figures folder")
        for folder, what in ((figures, "--figures folder"), (output / "notebooks", "notebooks folder"),
                             (output / "runs", "runs folder"), (output / "results", "results folder")):
            check_writable_folder(folder, what)  # before any training, not after it
        if not _writable_file(output / "summary.md"):
            raise StnlibError(f"cannot write {output / 'summary.md'}: it is read-only")
        return _reproduce(profile, output, figures, chosen, left_out, log, workers)


def _reproduce(profile: str, output: Path, figures: Path, chosen: list[Path], left_out: list[Path], log,
               workers: int | None | str) -> list[tuple[str, float | None, str]]:
    parameters = {"profile": profile, "output": str(output), "figures": str(figures), "interactive": False,
                  "progress": False}
    start = time.perf_counter()
    training = train_planned_runs(profile, output, [notebook.stem for notebook in chosen], log)
    workers = notebook_workers(profile, training) if workers == "auto" else workers
    timings = ([training] if training else []) + run_notebooks(chosen, output / "notebooks", parameters, workers, log)
    wall_seconds = time.perf_counter() - start
    for notebook in left_out:
        status = f"left out: not in the {profile} profile's time budget (--only {notebook.name[:2]} runs it)"
        log(f"{notebook.name}: {status}")
        timings.append((notebook.stem, None, status))
    study = Study(profile, output=str(output), figures=str(figures))
    results = study.results()  # every notebook's numbers, read once
    save_text(output / "summary.md", summary_markdown(profile, timings, study, wall_seconds, results))
    log(f"summary: {output / 'summary.md'}")
    claims, _ = built_claims(results)
    if claims is not None:  # beside the figures, for the README's table (docs/generate.py)
        save_text(figures / CLAIMS_FILE, claims + "\n")
    readings = readings_markdown(results)
    if readings:  # beside them too, for docs/study.md
        save_text(figures / READINGS_FILE, readings + "\n")
    return timings


LOCK_FILE = ".reproduce.lock"


@contextlib.contextmanager
def exclusive_use(output: Path):
    """Hold ``output`` for this reproduction: a second one into the same folder, while this one runs,
    is refused (a ``StnlibError``) instead of overwriting its runs. The lock is the operating system's
    (``flock``), so it ends with the process, however that ends."""
    import fcntl

    try:
        handle = open(output / LOCK_FILE, "a+")
    except OSError as error:
        raise StnlibError(f"cannot write into --output folder {output}: {error.strerror or error}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise StnlibError(f"{output} is in use by another reproduction ({holder}); wait for it to finish, "
                          f"or choose another --output") from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}")
        handle.flush()
        yield output
    finally:
        handle.close()


def _writable_file(path: Path) -> bool:
    return not path.exists() or os.access(path, os.W_OK)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stnlib.reproduce", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="quick", help=f"one of {', '.join(PROFILES)}")
    parser.add_argument("--output", default="results", help="executed notebooks, runs, numbers and summary.md")
    parser.add_argument("--figures", default=None,
                        help="where figures are saved (default: OUTPUT/figures; make study writes the committed figures/)")
    parser.add_argument("--notebooks", default=None, help="folder of numbered notebooks (default: the project's)")
    selection = parser.add_mutually_exclusive_group()
    selection.add_argument("--only", nargs="+", metavar="NN",
                           help="run only these notebooks, by number (e.g. --only 08)")
    selection.add_argument("--all", action="store_true", dest="run_all",
                           help="also run the notebooks the profile leaves out of its time budget")
    args = parser.parse_args(argv)
    notebooks = Path(args.notebooks) if args.notebooks else (
        Path("notebooks") if Path("notebooks").is_dir() else PACKAGE_ROOT / "notebooks")
    try:
        timings = reproduce(args.profile, Path(args.output), Path(args.figures) if args.figures else None, notebooks,
                            only=args.only, run_all=args.run_all)
    except StnlibError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failed = [name for name, _, status in timings if status.startswith("failed")]
    if failed:
        print(f"error: {len(failed)} notebook(s) failed: {', '.join(failed)} (see {args.output}/summary.md)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
