"""Training and inference throughput of the zoo's main models through hepnn's own pipeline.

    OMP_NUM_THREADS=1 python benchmarks/bench_train.py [--models mlp,pfn,particlenet,part,lorentznet]
        [--steps 4] [--batch-size 256] [--max-particles 128] [--device cpu|cuda] [--set key=value ...]

For every model: the top-tagging config ``configs/top_tagging/<model>.yaml`` with the model at its
registered (paper) size (the config's ``model.params`` are dropped), batch 256 and the committed sample
``data/toptag_small.parquet``, run through ``hepnn.train.fit``'s own pieces (``load_splits``,
``fit_preprocessors``, ``make_loaders``, ``make_task``) and ``Engine.train_step`` — what
``hepnn train`` does per step. One warm-up step is not timed, then ``--steps`` steps are, from the
start of an epoch. Bucketed batches differ in N, and a step's cost grows with N (ParT: 5 CPU-s at
N = 34, 21 at N = 87), so a few steps are a sample; ``--steps 0`` times one whole epoch (16 batches
of the sample's training split), the number to compare with other frameworks.

Columns (jets/s in process CPU time, the robust number on a shared machine, and in wall time):

* train: jets per second of a whole step (batch building + forward + backward + optimizer);
* infer: jets per second of ``task.outputs`` in eval mode over the same bucketed batches, plus
  building them;
* data: share of the training step time spent building batches (the wait for data);
* pad: padding waste of the bucketed batches (padded slots / all slots);
* model: share of the training step time in the model (forward + backward + optimizer).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("mlp", "pfn", "particlenet", "part", "lorentznet")


class Clock:
    """Wall and process-CPU seconds accumulated over ``with clock:`` sections."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def __enter__(self) -> "Clock":
        self._w, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall += time.perf_counter() - self._w
        self.cpu += time.process_time() - self._c


def setup(model: str, *, batch_size: int, max_particles: int, device: str, overrides: list[str]):
    """Engine, training loader and task of ``hepnn train configs/top_tagging/<model>.yaml``."""
    from hepnn.config import load_config
    from hepnn.data.dataset import fit_preprocessors, load_splits
    from hepnn.registry import get_model_spec
    from hepnn.train.engine import Engine
    from hepnn.runs import build_model, make_loaders, make_task
    from hepnn.train.fit import seed_everything
    from hepnn.train.optim import build_optimizer
    from hepnn.train.schedules import build_schedule

    cfg = load_config(ROOT / "configs" / "top_tagging" / f"{model}.yaml",
                      [f"data.batch_size={batch_size}", f"data.max_particles={max_particles}",
                       f"train.device={device}", "data.loader=memory", *overrides])
    # paper size: the config file's model.params are dropped, those given with --set are kept
    asked = {o.split("=", 1)[0].removeprefix("model.params.") for o in overrides if o.startswith("model.params.")}
    params = {k: v for k, v in cfg.model.params.items() if k in asked}
    cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"params": params})})
    seed_everything(cfg.train.seed)
    spec = get_model_spec(cfg.model.name)
    fields = (*spec.inputs, "y", "weight")
    splits = load_splits(cfg.data, fields=fields, task="classify", seed=cfg.train.seed)
    pre = fit_preprocessors(cfg.preprocess, splits.train_sample, data=cfg.data, fields=fields, seed=cfg.train.seed)
    net = build_model(cfg)
    task = make_task(cfg, "classify", splits.num_classes, splits.train_sample.y)
    loader, _ = make_loaders(cfg, splits, pre, kind="classify", fields=fields, model=net)
    o = cfg.train.optimizer
    opt = build_optimizer(net, o.name, lr=o.lr, weight_decay=o.weight_decay, momentum=o.momentum,
                          betas=o.betas, eps=o.eps)
    sched = build_schedule(opt, "constant", total_steps=10**6, steps_per_epoch=len(loader))
    engine = Engine(net, task, opt, sched, device=cfg.train.device, amp=cfg.train.amp,
                    grad_clip=cfg.train.grad_clip, compile=cfg.train.compile, progress=False)
    return engine, loader, task, sum(p.numel() for p in net.parameters())


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def epochs(loader, start: int = 0):
    """The loader's batches, epoch after epoch, from epoch ``start``."""
    epoch = start
    while True:
        loader.set_epoch(epoch)
        yield from loader
        epoch += 1


def measure(model: str, steps: int, **kw) -> dict[str, float]:
    """Time ``steps`` training steps (0: one whole epoch) and as many inference batches, after one
    untimed warm-up step each."""
    engine, loader, task, n_params = setup(model, **kw)
    dev = engine.device
    steps = steps or len(loader)
    engine.train_step(next(iter(loader)).to(dev))  # warm-up (allocator, lazy init, compilation)
    batches = epochs(loader, start=1)
    data, step, n, real, slots = Clock(), Clock(), 0, 0, 0
    for _ in range(steps):
        with data:
            batch = next(batches).to(dev, non_blocking=True)
        with step:
            engine.train_step(batch)
            sync(dev)
        n += len(batch)
        if batch.mask is not None:
            real, slots = real + int(batch.mask.sum()), slots + batch.mask.numel()
    infer, n_inf = Clock(), 0
    engine.net.eval()
    batches = epochs(loader, start=1)
    with engine.autocast():
        task.outputs(engine.net, next(batches).to(dev))  # warm-up
    for _ in range(steps):
        batch = next(batches)
        with infer, engine.autocast():  # the precision evaluation and predict use
            task.outputs(engine.net, batch.to(dev))
            sync(dev)
        n_inf += len(batch)
    total_c, total_w = data.cpu + step.cpu, data.wall + step.wall
    return {"params": n_params, "train_cpu": n / total_c, "train_wall": n / total_w,
            "infer_cpu": n_inf / infer.cpu, "infer_wall": n_inf / infer.wall,
            "data": data.cpu / total_c, "data_wall": data.wall / total_w,
            "pad": 1 - real / slots if slots else 0.0, "model": step.cpu / total_c}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated registered names")
    p.add_argument("--steps", type=int, default=4,
                   help="timed training steps (and inference batches) per model; 0 = one whole epoch")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--max-particles", type=int, default=128, help="cap on N (weaver's top-tagging length)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="extra config overrides, e.g. train.compile=true train.amp=bf16")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.device == "cpu":
        torch.set_num_threads(1)
    timed = f"{args.steps} steps" if args.steps else "one epoch"
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"device {args.device}, batch {args.batch_size}, N <= {args.max_particles}, {timed}")
    head = f"{'model':<12}{'params':>9}{'train/s cpu':>13}{'wall':>10}{'infer/s cpu':>13}{'wall':>10}" \
           f"{'data':>7}{'pad':>7}{'model':>7}"
    print(head)
    for name in args.models.split(","):
        r = measure(name, args.steps, batch_size=args.batch_size, max_particles=args.max_particles,
                    device=args.device, overrides=args.set)
        print(f"{name:<12}{r['params']:>9,}{r['train_cpu']:>13.1f}{r['train_wall']:>10.1f}{r['infer_cpu']:>13.1f}"
              f"{r['infer_wall']:>10.1f}{r['data']:>7.1%}{r['pad']:>7.1%}{r['model']:>7.1%}", flush=True)


if __name__ == "__main__":
    main()
