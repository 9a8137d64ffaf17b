"""One reader core's streaming rate: jets per CPU-second from parquet to ready batches, in process.

    OMP_NUM_THREADS=1 python benchmarks/stream_rate.py [--data FILE] [--chunk-size 10000] [--epochs 2]

``StreamingJetLoader`` with ``workers=0`` (the reading thread and the batch building share this
process), the default top-tagging particle features, batch 256, N <= 128, shuffled; prints jets per
CPU-second of the process (reading thread included) and per wall second. The same call works on
older hepnn revisions, so ``ab.py --bench stream`` can compare them side by side.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

FEATURES = ["deta", "dphi", "log_pt", "log_e", "log_pt_rel", "log_e_rel", "dr"]


def main() -> None:
    from hepnn.data.loader import BatchBuilder
    from hepnn.data.stream import StreamingJetLoader

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / "data" / "toptag_small.parquet")
    p.add_argument("--chunk-size", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(1)
    builder = BatchBuilder(fields=("x", "mask", "y"), particle_features=FEATURES, max_particles=128)
    loader = StreamingJetLoader([str(args.data)], builder, batch_size=256, chunk_size=args.chunk_size, seed=0,
                                workers=0)
    n, c0, w0 = 0, time.process_time(), time.perf_counter()
    for _ in range(args.epochs):
        n += sum(len(b) for b in loader)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    print(f"stream {n} jets: {n / cpu:,.0f} jets per CPU-s, {n / wall:,.0f} jets per wall-s")


if __name__ == "__main__":
    main()
