"""``make bench`` (benchmarks/run.py) runs and prints the machine and one table row per model and precision."""

from __future__ import annotations

import os
import subprocess
import sys

from hepnn.train.amp import fast_bf16
from tests.conftest import ROOT


def test_make_bench_script_prints_the_machine_and_the_table():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--models", "mlp,pfn", "--steps", "1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "# CPU" in out.stdout and "CPU capability" in out.stdout  # the machine, as every benchmark prints it
    rows = [tuple(cell.strip() for cell in line.split("|")[1:4:2])
            for line in out.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    precisions = ["fp32", "bf16"] if fast_bf16("cpu")[0] else ["fp32"]  # bf16 too on AMX/avx512_bf16 CPUs
    assert rows == [("model", "precision")] + [(m, p) for m in ("mlp", "pfn") for p in precisions]


def test_machine_script_prints_the_bf16_worth_of_this_cpu():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "machine.py")], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("# one thread, 1024x1024 matrix product: fp32 ") and "bf16" in last, last


def test_bench_models_are_paper_size_with_the_params_asked_for():
    """The config file's model.params are dropped (paper size); ``--set model.params.*`` are applied
    (they were dropped too, so ``--set model.params.attention_groups=16`` measured the default)."""
    from tests.benchmarks import benchmark_script

    setup = benchmark_script("bench_train").setup
    kw = dict(batch_size=32, max_particles=32, device="cpu")
    engine, *_, n_params = setup("part", overrides=[], **kw)
    assert engine.net.attention_groups is None and n_params == 2_139_744
    engine, *_ = setup("part", overrides=["model.params.attention_groups=3"], **kw)
    assert engine.net.attention_groups == 3


def test_one_failing_row_does_not_end_the_table():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--models", "pfn", "--steps", "1",
                          "--precisions", "fp32,fp16"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith("| pfn")]
    assert len(rows) == 2 and "| fp32 |" in rows[0], out.stdout
    assert "failed: HepnnError: train.amp=fp16 needs a GPU" in rows[1]
