"""``train.compile=true`` on bucketed batches: graph breaks, recompiles and step time against eager.

    OMP_NUM_THREADS=1 python benchmarks/compile_check.py particlenet_lite [--steps 6]

Two engines built like ``bench_train.py``'s (registered size, batch 256, N <= 128, bucketed batches so
that N changes every step), one with ``train.compile=true``; both take the same batches, and the
script prints each step's process-CPU seconds for both, then torch._dynamo's counters.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch._dynamo.utils as dynamo_utils

from bench_train import epochs, setup


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--steps", type=int, default=6)
    args = p.parse_args()
    torch.set_num_threads(1)
    kw = dict(batch_size=256, max_particles=128, device="cpu")
    compiled = setup(args.model, overrides=["train.compile=true", "data.bucketing=true"], **kw)[0]
    eager, loader = setup(args.model, overrides=["data.bucketing=true"], **kw)[:2]
    batches = epochs(loader)
    for step in range(args.steps):
        batch = next(batches)
        cpu = []
        for engine in (compiled, eager):
            t = time.process_time()
            engine.train_step(batch)
            cpu.append(time.process_time() - t)
        n = batch.mask.shape[1] if batch.mask is not None else "-"
        print(f"step {step}  N={n}  compiled {cpu[0]:.2f} s  eager {cpu[1]:.2f} s", flush=True)
    counters = dynamo_utils.counters
    print("graph breaks:", sum(counters["graph_break"].values()),
          {k.splitlines()[0]: v for k, v in counters["graph_break"].items()})
    print("unique graphs:", counters["stats"]["unique_graphs"], " recompiles:", dict(counters["recompiles"]))


if __name__ == "__main__":
    main()
