"""``make bench``: the whole throughput table on this machine, with its CPU model and flags.

    OMP_NUM_THREADS=1 python benchmarks/run.py [--models mlp,pfn,particlenet,part,lorentznet,pelican]
        [--steps 3] [--device cpu|cuda] [--precisions auto|fp32,bf16,fp16] [--set key=value ...]

Every model at its registered (paper) size through hepnn's own pipeline with its default settings
(``bench_train.py``: batch 256, N <= 128, the committed sample, ``data.bucketing=auto``), once per
precision: fp32, plus bf16 where the hardware multiplies it natively (``hepnn.train.amp.fast_bf16``:
AMX or avx512_bf16 CPUs, CUDA GPUs of compute capability >= 8.0) and fp16 on CUDA. ``--steps 0`` times a
whole epoch per model (the number to record), the default a quick sample of 3 steps. Columns:
training and inference jets per second (process CPU time on a CPU, wall time on a GPU), the share
of the step spent waiting for data, and the padded share of particle slots.
"""

from __future__ import annotations

import argparse
import logging
import traceback

import torch

from bench_train import measure
from machine import describe

MODELS = ("mlp", "pfn", "particlenet", "part", "lorentznet", "pelican")
AMP = {"fp32": "none", "bf16": "bf16", "fp16": "fp16"}


def precisions(device: str) -> list[str]:
    """fp32, and the lower precisions this device runs fast."""
    from hepnn.train.amp import fast_bf16

    out = ["fp32"]
    if fast_bf16(device)[0]:
        out.append("bf16")
    if device == "cuda":
        out.append("fp16")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--steps", type=int, default=3, help="timed steps per model; 0 = one whole epoch")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    p.add_argument("--precisions", default="auto", help="auto, or a comma list of fp32, bf16, fp16")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra config overrides")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.device == "cpu":
        torch.set_num_threads(1)
    precs = precisions(args.device) if args.precisions == "auto" else args.precisions.split(",")
    clock = "process CPU" if args.device == "cpu" else "wall"
    print(describe())
    print(f"# device {args.device}, batch 256, N <= 128, default settings{' + ' + ' '.join(args.set) if args.set else ''}, "
          f"{f'{args.steps} steps' if args.steps else 'one epoch'} per model, jets per second of {clock} time")
    print("\n| model | params | precision | train jets/s | infer jets/s | data wait | padding |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for model in args.models.split(","):
        for prec in precs:
            try:
                r = measure(model, args.steps, batch_size=256, max_particles=128, device=args.device,
                            overrides=[f"train.amp={AMP[prec]}", *args.set])
            except Exception as err:  # one failing row must not take the rest of the table with it
                traceback.print_exc()
                print(f"| {model} | | {prec} | failed: {type(err).__name__}: {str(err).splitlines()[0][:80]} | | | |",
                      flush=True)
                continue
            key = "cpu" if args.device == "cpu" else "wall"
            print(f"| {model} | {r['params']:,} | {prec} | {r['train_' + key]:,.1f} | {r['infer_' + key]:,.1f} | "
                  f"{r['data' if key == 'cpu' else 'data_wall']:.1%} | {r['pad']:.1%} |", flush=True)


if __name__ == "__main__":
    main()
