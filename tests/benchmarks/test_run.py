"""``make bench`` (benchmarks/run.py) runs and prints the machine and one table row per model."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def test_make_bench_script_prints_the_machine_and_the_table():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--models", "mlp,pfn", "--steps", "1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "# CPU" in out.stdout and "CPU capability" in out.stdout  # the machine, as every benchmark prints it
    rows = [line.split("|")[1].strip() for line in out.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows == ["model", "mlp", "pfn"]
