"""Generation throughput: jets/s per core for top, QCD and W, in both p̂T modes.

    OMP_NUM_THREADS=1 python benchmarks/bench_generate.py [--n 200] [--modes window unbiased]

Each cell generates ``--n`` jets in this process (one core, Pythia init and first-call costs
included, as a real shard pays them once) and extrapolates the wall time for 100k jets with 2
workers (100k / (2 × rate), i.e. assuming both cores are free). Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from hepnn.generate import generate


def measure(process: str, mode: str, n: int, detector: str) -> float:
    """Jets per second on one core for ``n`` jets."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        generate(process, n, Path(tmp) / "bench.parquet", seed=1, mode=mode, detector=detector, progress=False)
        return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="jets per measurement")
    parser.add_argument("--processes", nargs="+", default=["top", "qcd", "w"])
    parser.add_argument("--modes", nargs="+", default=["window", "unbiased"])
    parser.add_argument("--detector", default="simple", choices=["none", "simple"])
    args = parser.parse_args()
    measure("qcd", "window", 5, args.detector)  # warm-up: imports and FastJet banner
    print(f"| process | mode | detector | jets | jets/s per core | 100k jets, 2 workers (min) |")
    print("|---|---|---|---:|---:|---:|")
    for mode in args.modes:
        for process in args.processes:
            rate = measure(process, mode, args.n, args.detector)
            print(f"| {process} | {mode} | {args.detector} | {args.n} | {rate:.1f} | {100_000 / (2 * rate) / 60:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
