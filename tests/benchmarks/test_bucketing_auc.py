"""benchmarks/bucketing_auc.py: its batches keep the class mix, and the script runs end to end.

The script imports hepnn's run-assembly functions; a smoke run catches it when they move (they did once,
unnoticed, until the next measurement).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from tests.benchmarks import benchmark_script
from tests.conftest import ROOT

stratified_batches = benchmark_script("bucketing_auc").stratified_batches


def test_stratified_batches_are_full_mixed_and_cover_every_jet_once():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 10_000)
    counts = (40 + 30 * labels + rng.normal(0, 10, labels.size)).astype(int)  # tops have more particles
    batches = stratified_batches(counts, labels, 256, bands=4, seed=1)
    assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(labels.size))
    full = [b for b in batches if len(b) == 256]
    assert len(full) == labels.size // 256  # only the last remainder batch is short
    shares = [labels[b].mean() for b in full]
    assert 0.4 < min(shares) and max(shares) < 0.6  # a random 256-jet batch: 0.5 +- 0.03
    spread = np.mean([np.ptp(counts[b]) for b in full])
    assert spread < 0.6 * np.ptp(counts)  # and a narrower multiplicity range than the sample's


def test_the_script_runs_end_to_end(tmp_path):
    out = subprocess.run([sys.executable, "bucketing_auc.py", "--data", str(ROOT / "data" / "toptag_small.parquet"),
                          "--models", "particlenet_lite", "--train-jets", "512", "--val-jets", "256", "--epochs", "1",
                          "--seeds", "1", "--work", str(tmp_path)], cwd=ROOT / "benchmarks", capture_output=True,
                         text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith("| particlenet_lite")]
    assert [r.split("|")[2].strip() for r in rows] == ["random", "stratified"]
