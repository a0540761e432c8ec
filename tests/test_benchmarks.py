"""The benchmarks' stand-in for a laptop's CPU: ``--avx2`` caps every kernel library, and the header says so;
the benchmark that chose how the quick profile trains its runs still runs, and the run groups' throughput
benchmark prints its table on the CPU."""
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

SCRIPT = """
import argparse, isa_stand_in
parser = argparse.ArgumentParser()
parser.add_argument("--n", type=int, default=0)
isa_stand_in.add_flag(parser)
args = parser.parse_args()
isa_stand_in.rerun_as_avx2_if_asked(args)
print(args.n, isa_stand_in.header())
"""


def run(tmp_path, *args, **env_changes):
    script = tmp_path / "bench.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items()
           if k not in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")}
    env.update(env_changes, PYTHONPATH=os.pathsep.join([str(BENCHMARKS), env.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, str(script), *args], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_avx2_flag_reruns_with_every_library_capped(tmp_path):
    assert run(tmp_path, "--n", "3") == "3 instruction-set caps: none"
    assert run(tmp_path, "--avx2", "--n", "3") == "3 instruction-set caps: AVX2 (ATen, oneDNN, MKL)"


@pytest.mark.slow
def test_the_three_ways_to_train_a_notebooks_runs_are_timed_back_to_back():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(BENCHMARKS), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, str(BENCHMARKS / "parallel_runs.py"), "--epochs", "1", "--variants", "no-st"],
                         env=env, capture_output=True, text=True, check=True).stdout
    header, _, row, pool = [line for line in out.splitlines() if line.startswith("|")]
    assert "one run group, all threads" in header
    cells = [cell.strip() for cell in row.split("|")[1:-1]]
    assert cells[0] == "no ST" and all(cell.endswith(" s") or cell.endswith("×") for cell in cells[1:])
    assert float(cells[-1].rstrip("×")) > 0 and pool.startswith("| all of them, one process pool")


@pytest.mark.slow
def test_the_run_group_throughput_benchmark_prints_its_table_and_json_on_the_cpu(tmp_path):
    figures = tmp_path / "throughput.json"
    out = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_throughput.py"), "--device", "cpu", "--groups", "1", "2",
                          "--precisions", "fp32", "--no-compile", "--batch-size", "16", "--steps", "2", "--warmup", "1",
                          "--repeats", "1", "--json", str(figures)], capture_output=True, text=True, check=True).stdout
    assert "fp32  eager    R=  1:" in out and "fp32  eager    R=  2:" in out
    assert "R=  2: run by run" in out and "paper profile at that rate: the 31 rotation runs" in out
    saved = json.loads(figures.read_text())
    assert [(row["runs"], row["compiled"]) for row in saved["rows"]] == [(1, False), (2, False)]
    assert all(row["total"] > 0 and row["per_run"] * row["runs"] == pytest.approx(row["total"]) for row in saved["rows"])
    assert [made["runs"] for made in saved["batch_milliseconds"]] == [2]
    assert saved["projected_hours"]["rotation_runs"] > 0


@pytest.mark.slow
def test_the_gpu_session_packs_the_paper_runs_it_trained_and_a_later_one_reads_them_back(tmp_path):
    session = [sys.executable, str(BENCHMARKS / "gpu_session.py")]
    env = dict(os.environ, TMPDIR=str(tmp_path / "work1"))
    subprocess.run([*session, str(tmp_path / "first"), "--tiny", "--skip", "study", "throughput", "--seconds", "45"],
                   env=env, capture_output=True, text=True, check=True)
    log = (tmp_path / "first" / "session.log").read_text()
    assert "paper STN-C0: exit 0" in log
    with tarfile.open(tmp_path / "first" / "paper-C0.tar.gz") as tar:
        names = tar.getnames()
    assert {Path(name).name for name in names} >= {"final.pt", "metrics.json", "test_correct.pt"}
    assert not any(name.endswith("checkpoint.pt") for name in names)  # finished runs travel without one
    env = dict(os.environ, TMPDIR=str(tmp_path / "work2"))
    subprocess.run([*session, str(tmp_path / "second"), "--tiny", "--skip", "study", "throughput", "--seconds", "30",
                    "--runs-from", str(tmp_path / "first" / "paper-C0.tar.gz")], env=env, capture_output=True, text=True,
                   check=True)
    again = (tmp_path / "second" / "session.log").read_text()
    c0 = again.split("paper STN-C0: exit 0")[0]
    assert "seed 0: test accuracy" in c0 and "epoch 1/1" not in c0  # read back, not trained again
