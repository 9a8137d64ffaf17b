"""Where a training step's time goes: ``torch.profiler`` over a model's training steps on real batches.

    OMP_NUM_THREADS=1 python benchmarks/profile_step.py part [--batches random|bucketed] [--steps 2]
        [--batch-size 256] [--max-particles 128] [--top 25] [--device cpu|cuda] [--set key=value ...]

The model at its registered size is trained through ``Engine.train_step`` (what ``hepnn train``
does) on batches of the committed sample built like ``bench_train.py``'s; one untimed warm-up step,
then ``--steps`` profiled steps. Prints the CPU model, the process-CPU seconds per step, the
operators with the most self CPU time, and the share of matrix products (the arithmetic every
framework must do) against everything else. On a GPU (``--device cuda``): wall seconds per step, the
kernels launched per step (what bounds a step of small kernels), and the operators with the most
self GPU time.
"""

from __future__ import annotations

import argparse
import logging
import time

import torch
from torch.profiler import ProfilerActivity, profile

from bench_train import epochs, setup
from machine import describe

MATMUL = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::_scaled_mm", "aten::linear")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--batches", choices=["random", "bucketed"], default="random")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--max-particles", type=int, default=128)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    print(describe())
    over = [f"data.bucketing={'true' if args.batches == 'bucketed' else 'false'}", *args.set]
    engine, loader, _, n_params = setup(args.model, batch_size=args.batch_size, max_particles=args.max_particles,
                                        device=args.device, overrides=over)
    batches = epochs(loader, start=1)
    if args.device == "cuda":
        return profile_gpu(engine, batches, args, n_params)
    engine.train_step(next(batches))  # warm-up
    todo = [next(batches) for _ in range(args.steps)]
    shapes = [tuple(b.mask.shape) for b in todo if b.mask is not None]
    real = sum(int(b.mask.sum()) for b in todo if b.mask is not None)
    t = time.process_time()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in todo:
            engine.train_step(batch)
    cpu = time.process_time() - t
    print(f"# {args.model} ({n_params:,} parameters), {args.batches} batches {shapes}, "
          f"real particles {real / max(sum(s[0] * s[1] for s in shapes), 1):.1%} of slots")
    print(f"# {cpu / args.steps:.2f} CPU-s per step under the profiler, "
          f"{args.batch_size * args.steps / cpu:.1f} jets per CPU-s")
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    mm = sum(e.self_cpu_time_total for e in events if e.key in MATMUL)
    print(f"# matrix products {mm / total:.1%} of self CPU time; the rest {1 - mm / total:.1%}")
    print(events.table(sort_by="self_cpu_time_total", row_limit=args.top, max_name_column_width=48))


def profile_gpu(engine, batches, args, n_params: int) -> None:
    """Wall time and kernel launches per step, and the operators with the most self GPU time."""
    todo = [next(batches).to("cuda") for _ in range(args.steps + 1)]
    engine.train_step(todo.pop())  # warm-up
    torch.cuda.synchronize()
    t = time.perf_counter()
    for batch in todo:
        engine.train_step(batch)
    torch.cuda.synchronize()
    wall = (time.perf_counter() - t) / args.steps
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for batch in todo:
            engine.train_step(batch)
        torch.cuda.synchronize()
    events = prof.key_averages()
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cuLaunchKernelEx"))
    kernels = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]  # not the ops above them
    gpu = sum(e.self_device_time_total for e in kernels) / 1e6 / args.steps
    print(f"# {args.model} ({n_params:,} parameters) on {torch.cuda.get_device_name()}, {args.steps} steps of "
          f"{args.batch_size} jets: {wall * 1e3:.1f} ms wall per step ({args.batch_size / wall:,.0f} jets/s), "
          f"{gpu * 1e3:.1f} ms of kernels, {launches / args.steps:,.0f} kernel launches per step")
    print(events.table(sort_by="self_device_time_total", row_limit=args.top, max_name_column_width=48))


if __name__ == "__main__":
    main()
