"""Before/after in one run: ``bench_train.py`` on an earlier revision's sources and on the working tree,
interleaved, so that both see the same machine and the same load.

    OMP_NUM_THREADS=1 python benchmarks/ab.py --rev HEAD~3 [--rounds 2] -- --models part_lite --steps 4
    OMP_NUM_THREADS=1 python benchmarks/ab.py --rev HEAD~3 --bench stream -- --data FILE   # stream_rate.py

The revision's ``src/`` is extracted with ``git archive`` into a temporary directory; each round runs
this checkout's ``bench_train.py`` (with the arguments after ``--``) once on the old sources and once
on the current ones, alternating which goes first. Printed per model: the mean training and
inference jets per CPU-second of both and the ratio. The same batches are drawn in both (same
seed, same loader); only the model and layer code differ.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
from collections import defaultdict
from io import BytesIO
from pathlib import Path

from machine import describe

ROOT = Path(__file__).resolve().parents[1]


def extract(rev: str, dest: Path) -> Path:
    """``src/`` of ``rev`` under ``dest``; returns the path to put on PYTHONPATH."""
    data = subprocess.run(["git", "archive", rev, "src"], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest / "src"


def run(src: Path, args: list[str], bench: str = "train") -> dict[str, tuple[float, float]]:
    """bench_train.py rows: model -> (train jets per CPU-s, inference jets per CPU-s); for
    ``bench="stream"`` stream_rate.py's line: "stream" -> (jets per CPU-s, jets per wall-s)."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    script = "bench_train.py" if bench == "train" else "stream_rate.py"
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], env=env,
                         check=True, capture_output=True, text=True, cwd=ROOT).stdout
    rows = {}
    if bench == "stream":
        line = next(x for x in out.splitlines() if x.startswith("stream "))  # "stream N jets: A jets per CPU-s, B jets per wall-s"
        words = line.replace(",", "").split()
        return {"stream": (float(words[3]), float(words[7]))}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 9 and not line.startswith(("#", "model")):
            rows[parts[0]] = (float(parts[2]), float(parts[4]))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rev", required=True, help="the 'before' revision (any git rev)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--bench", choices=["train", "stream"], default="train", help="bench_train.py or stream_rate.py")
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="after --: arguments of bench_train.py")
    args = p.parse_args()
    bench = [a for a in args.bench_args if a != "--"]
    print(describe())
    print(f"# before: {args.rev} ({subprocess.run(['git', 'rev-parse', '--short', args.rev], cwd=ROOT, capture_output=True, text=True).stdout.strip()}),"
          f" after: working tree; bench_train.py {' '.join(bench)}; {args.rounds} rounds, interleaved")
    results: dict[str, dict[str, list[tuple[float, float]]]] = {"before": defaultdict(list), "after": defaultdict(list)}
    with tempfile.TemporaryDirectory() as tmp:
        sources = {"before": extract(args.rev, Path(tmp)), "after": ROOT / "src"}
        for r in range(args.rounds):
            for side in (("before", "after") if r % 2 == 0 else ("after", "before")):
                for model, rates in run(sources[side], bench, args.bench).items():
                    results[side][model].append(rates)
                    print(f"  round {r + 1} {side:<6} {model:<16} train {rates[0]:8.1f}  infer {rates[1]:8.1f}", flush=True)
    a_name, b_name = ("train", "infer") if args.bench == "train" else ("CPU", "wall")
    print(f"{'model':<16}{a_name + ' before':>14}{'after':>9}{'ratio':>7}{b_name + ' before':>14}{'after':>9}{'ratio':>7}")
    for model in results["after"]:
        b = [sum(v[i] for v in results["before"][model]) / len(results["before"][model]) for i in (0, 1)]
        a = [sum(v[i] for v in results["after"][model]) / len(results["after"][model]) for i in (0, 1)]
        print(f"{model:<16}{b[0]:>14.1f}{a[0]:>9.1f}{a[0] / b[0]:>6.2f}x{b[1]:>14.1f}{a[1]:>9.1f}{a[1] / b[1]:>6.2f}x")


if __name__ == "__main__":
    main()
