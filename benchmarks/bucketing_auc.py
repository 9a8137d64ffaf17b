"""Does a multiplicity-bucketing scheme without label skew train batch-norm models as well as random batches?

    OMP_NUM_THREADS=1 python benchmarks/bucketing_auc.py --data runs/gen/toptag_30k.parquet \
        [--train-jets 10240] [--val-jets 5120] [--epochs 3] [--seeds 1,2,3] \
        [--models particlenet_lite,part_lite] [--schemes random,stratified] [--bands 4] [--amp none]

Schemes for the training batches (evaluation is the same for all):

* ``random``: uniformly random batches (hepnn's default for batch-norm models);
* ``stratified``: per epoch, every pool of 50 batches is cut into ``--bands`` multiplicity bands
  *within each class* (so each band holds every class in the pool's proportion), each band is
  shuffled and cut into batches, and the batch order is shuffled: every batch has the sample's
  class mix and a multiplicity range ~``bands`` times narrower than a random batch's;
* ``bucketed``: hepnn's ``bucket_batches`` (sorted by multiplicity within pools).

Each run: the top-tagging config of the model (``configs/top_tagging/<model>.yaml``, the model's
registered size), AdamW lr 1e-3 constant, no weight decay, batch 256, N <= 128, the first
``--train-jets`` jets of ``--data`` for training and the next ``--val-jets`` for validation,
validation AUC after every epoch. Prints one row per run and the mean ± std over seeds per epoch.
``--amp bf16`` trains and validates under bf16 autocast (the AUC cost of bf16 against fp32).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from machine import describe

ROOT = Path(__file__).resolve().parents[1]


def stratified_batches(counts: np.ndarray, labels: np.ndarray, batch_size: int, *, bands: int, seed: int,
                       pool: int = 50) -> list[np.ndarray]:
    """Batches of one multiplicity band each, every band holding each class in the pool's proportion.

    A band rarely divides into whole batches; its remainder (a handful of jets, possibly of one
    class) is not a batch of its own: the remainders of all bands are shuffled together and cut last,
    so every batch but the final one is full and has the pool's class mix.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(counts))
    batches: list[np.ndarray] = []
    rest: list[np.ndarray] = []
    for start in range(0, len(order), pool * batch_size):
        jets = order[start:start + pool * batch_size]
        band_of = np.empty(len(jets), dtype=np.int64)
        for c in np.unique(labels[jets]):
            members = np.flatnonzero(labels[jets] == c)
            ranked = members[np.argsort(counts[jets[members]], kind="stable")]  # by multiplicity
            band_of[ranked] = np.arange(len(ranked)) * bands // len(ranked)  # equal-size bands per class
        for k in range(bands):
            band = rng.permutation(jets[band_of == k])
            whole = len(band) // batch_size * batch_size
            batches += [band[i:i + batch_size] for i in range(0, whole, batch_size)]
            rest.append(band[whole:])
    left = rng.permutation(np.concatenate(rest)) if rest else np.empty(0, dtype=np.int64)
    batches += [left[i:i + batch_size] for i in range(0, len(left), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def split(data: Path, n_train: int, n_val: int, work: Path) -> tuple[Path, Path]:
    import awkward as ak

    from hepnn.data.io import write_parquet

    jets = ak.from_parquet(data)
    out = work / "train.parquet", work / "val.parquet"
    write_parquet(jets[:n_train], out[0])
    write_parquet(jets[n_train:n_train + n_val], out[1])
    return out


def run(model: str, scheme: str, seed: int, args: argparse.Namespace, files: tuple[Path, Path]) -> dict:
    import torch

    from hepnn.config import load_config
    from hepnn.data.dataset import fit_preprocessors, load_splits
    from hepnn.data.jagged import bucket_batches
    from hepnn.data.loader import JetLoader
    from hepnn.registry import get_model_spec
    from hepnn.runs import build_model, eval_loader, make_builder, make_task
    from hepnn.train.engine import Engine
    from hepnn.train.fit import seed_everything
    from hepnn.train.optim import build_optimizer
    from hepnn.train.schedules import build_schedule

    cfg = load_config(ROOT / "configs" / "top_tagging" / f"{model}.yaml", [
        f"data.train={files[0]}", f"data.val={files[1]}", f"data.test={files[1]}", "data.max_particles=128",
        "data.batch_size=256", "data.loader=memory", f"train.seed={seed}", f"train.epochs={args.epochs}"])
    seed_everything(seed)
    fields = (*get_model_spec(model).inputs, "y", "weight")
    splits = load_splits(cfg.data, fields=fields, task="classify", seed=seed)
    pre = fit_preprocessors(cfg.preprocess, splits.train_sample, data=cfg.data, fields=fields, seed=seed)
    net = build_model(cfg)
    task = make_task(cfg, "classify", splits.num_classes, splits.train_sample.y)
    builder = make_builder(cfg, pre, kind="classify", fields=fields)
    jets = splits.train

    class SchemeLoader(JetLoader):
        def batches(self, epoch=None):
            s = self.seed + (self.epoch if epoch is None else epoch)
            if scheme == "random":
                return super().batches(epoch)
            if scheme == "bucketed":
                return bucket_batches(jets.counts, self.batch_size, shuffle=True, seed=s)
            return stratified_batches(jets.counts, jets.y, self.batch_size, bands=args.bands, seed=s)

    train = SchemeLoader(jets, builder, batch_size=256, shuffle=True, seed=seed, bucketing=False)
    opt = build_optimizer(net, "adamw", lr=1e-3, weight_decay=0.0)
    sched = build_schedule(opt, "constant", total_steps=10**6, steps_per_epoch=len(train))
    engine = Engine(net, task, opt, sched, progress=False, time_clock="process", amp=args.amp)
    torch.set_num_threads(1)
    history = engine.fit(train, eval_loader(cfg, builder, splits.val), args.epochs)
    counts = np.minimum(jets.counts, 128)
    real = sum(int(counts[b].sum()) for b in train.batches(0))
    slots = sum(len(b) * int(counts[b].max()) for b in train.batches(0))
    signal = [float(jets.y[b].mean()) for b in train.batches(0) if len(b) == 256]  # full batches
    return {"auc": [h["val_auc"] for h in history], "cpu": engine.state["train_time"], "pad": 1 - real / slots,
            "signal": (min(signal), max(signal))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--train-jets", type=int, default=10240)
    p.add_argument("--val-jets", type=int, default=5120)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--models", default="particlenet_lite,part_lite")
    p.add_argument("--schemes", default="random,stratified")
    p.add_argument("--bands", type=int, default=4)
    p.add_argument("--amp", default="none", choices=["none", "bf16"], help="autocast of training and validation")
    p.add_argument("--work", type=Path, default=Path("/tmp/bucketing-auc"))
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(describe())
    print(f"# {args.data}: {args.train_jets} training / {args.val_jets} validation jets, {args.epochs} epochs, "
          f"seeds {args.seeds}, bands {args.bands}, amp {args.amp}, started {time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    args.work.mkdir(parents=True, exist_ok=True)
    files = split(args.data, args.train_jets, args.val_jets, args.work)
    results: dict[tuple[str, str], list[dict]] = {}
    for model in args.models.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            for scheme in args.schemes.split(","):
                r = run(model, scheme, seed, args, files)
                results.setdefault((model, scheme), []).append(r)
                print(f"{model:<17}{scheme:<11} seed {seed}  AUC " + " ".join(f"{a:.4f}" for a in r["auc"])
                      + f"  train {r['cpu']:.0f} CPU-s  pad {r['pad']:.1%}  signal per batch "
                      f"{r['signal'][0]:.2f}-{r['signal'][1]:.2f} (full batches)", flush=True)
    print("\n| model | batches | " + " | ".join(f"val AUC epoch {e + 1}" for e in range(args.epochs))
          + " | training CPU-s | padding |")
    print("|---|---|" + "---:|" * (args.epochs + 2))
    for (model, scheme), runs in results.items():
        cells = []
        for e in range(args.epochs):
            vals = [r["auc"][e] for r in runs]
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            cells.append(f"{statistics.mean(vals):.4f} ± {sd:.4f}")
        cpu = statistics.mean(r["cpu"] for r in runs)
        print(f"| {model} | {scheme} | " + " | ".join(cells) + f" | {cpu:.0f} | {runs[0]['pad']:.1%} |")


if __name__ == "__main__":
    sys.exit(main())
