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
