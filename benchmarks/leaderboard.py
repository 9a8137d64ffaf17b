"""The top-tagging leaderboard: every zoo model, several seeds, one table.

Each (model, seed) is one `hepnn train` of ``configs/top_tagging/<model>.yaml`` on the same data and
split. Two ways to stop a run:

* raced (v1): ``--budget S`` training CPU seconds (``train.time_limit``, ``train.time_clock=process``,
  one thread), so models compete for the same compute on this machine;
* converged (v2, ``--budget 0``): early stopping on the validation AUC (``--patience`` epochs) with
  ``--max-epochs`` as the cap; the table reports the training CPU seconds each model needed.

With ``--test FILE`` the test jets come from their own file (e.g. 20k + 20k jets, enough to resolve
1/eps_B(0.3) ~ 2k) and the last ``--val-jets`` jets of ``--data`` validate; otherwise ``--split``
divides ``--data``. Finished runs are skipped, so an interrupted leaderboard resumes where it stopped.
The table (mean ± std over seeds) goes to stdout and ``OUT/leaderboard.md``.

    OMP_NUM_THREADS=1 python benchmarks/leaderboard.py --data SAMPLES/toptag-100k/train.parquet \\
        --test SAMPLES/toptag-100k/test.parquet --budget 0 --seeds 1 --jobs 2 --out runs/leaderboard-v2

``--train-jets N`` keeps N training jets (the low-data study).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Config files under configs/top_tagging/ (lorentznet.yaml and pelican.yaml hold CPU sizes already).
MODELS = ["logistic", "perceptron", "mlp", "bdt", "cnn", "rnn", "lstm", "gru", "pfn", "efn", "pointnet",
          "gcn", "gat", "particlenet_lite", "jedinet", "transformer", "part_lite", "lola", "lorentznet", "pelican"]
# The registered lite sizes of the two O(N²) Lorentz models, run from their model's config: small
# enough to train to convergence on 100k jets with one core (about 9 CPU-minutes per epoch).
LITE = {"lorentznet_lite": ("lorentznet", ["model.name=lorentznet_lite", "model.params={}"]),
        "pelican_lite": ("pelican", ["model.name=pelican_lite", "model.params={}"])}


def config_of(model: str) -> tuple[Path, list[str]]:
    """The config file of a leaderboard model and the overrides that make it (a lite variant)."""
    name, extra = LITE.get(model, (model, []))
    return ROOT / "configs" / "top_tagging" / f"{name}.yaml", extra


def slice_file(src: Path, dst: Path, start: int, stop: int | None) -> Path:
    """Rows start..stop of a parquet file as their own file (kept if it exists).

    Runs started side by side may slice the same file at once: each writes its own temporary file
    and renames it into place, so the last one wins with identical bytes.
    """
    import pyarrow.parquet as pq

    from hepnn.io_utils import atomic_path

    if not dst.is_file():
        table = pq.read_table(src)
        stop = table.num_rows if stop is None else stop
        with atomic_path(dst) as tmp:
            pq.write_table(table.slice(start, stop - start), tmp)
    return dst


def data_overrides(args: argparse.Namespace) -> list[str]:
    if args.test is None:
        tr, va, te = args.split
        out = [f"data.train={args.data}", f"data.split.train={tr}", f"data.split.val={va}", f"data.split.test={te}"]
        return out + ([f"data.max_jets={round(args.train_jets / tr)}"] if args.train_jets else [])
    import pyarrow.parquet as pq

    n = pq.ParquetFile(args.data).metadata.num_rows
    n_train = min(args.train_jets or n - args.val_jets, n - args.val_jets)
    train = slice_file(args.data, args.out / "data" / f"train{n_train}.parquet", 0, n_train)
    val = slice_file(args.data, args.out / "data" / "val.parquet", n - args.val_jets, None)
    return [f"data.train={train}", f"data.val={val}", f"data.test={args.test}"]


def overrides(args: argparse.Namespace, model: str) -> list[str]:
    stop = ([f"train.time_limit={args.budget}", "train.time_clock=process"] if args.budget > 0 else
            [f"train.early_stopping={{metric: val_auc, mode: max, patience: {args.patience}}}"])
    return [*args.data_overrides, *stop, f"train.epochs={args.max_epochs}", "evaluate.plots=false",
            f"evaluate.overtraining_jets={args.overtraining_jets}"]


def train(args: argparse.Namespace, model: str, seed: int) -> Path:
    run = args.out / model / f"seed{seed}"
    if (run / "metrics.json").is_file():
        return run
    cfg, extra = config_of(model)
    cmd = [str(Path(sys.executable).with_name("hepnn")), "train", str(cfg), *extra, *overrides(args, model),
           f"train.seed={seed}", "--out", str(run)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run.parent.mkdir(parents=True, exist_ok=True)
    with open(run.parent / f"seed{seed}.log", "w") as logf:
        rc = subprocess.call(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
    print(f"{model} seed {seed}: {'ok' if rc == 0 else f'FAILED rc={rc}, see {logf.name}'}", flush=True)
    return run


def summarize(out: Path, models: list[str]) -> list[dict]:
    rows = []
    for model in models:
        runs = sorted((out / model).glob("seed*/metrics.json"))
        if not runs:
            continue
        ms = [json.loads(p.read_text()) for p in runs]
        hist = [np.genfromtxt(p.with_name("history.csv"), delimiter=",", names=True) for p in runs
                if p.with_name("history.csv").is_file()]
        row = {"model": model, "seeds": len(ms), "n_params": ms[0].get("n_params", 0)}
        for key in ("accuracy", "auc", "rej30", "rej50", "train_time_s", "train_cpu_s", "inference_jets_per_cpu_s"):
            vals = np.array([m[key] for m in ms if key in m], dtype=float)
            row[key] = (vals.mean(), vals.std(ddof=1) if len(vals) > 1 else None) if len(vals) else None
        row["epochs"] = np.mean([np.atleast_1d(h["epoch"]).size for h in hist]) if hist else None
        row["jets_seen"] = np.mean([np.sum(np.atleast_1d(h["jets_per_s"] * h["time_s"])) for h in hist]) if hist else None
        rows.append(row)
    return sorted(rows, key=lambda r: -r["auc"][0])


def to_markdown(rows: list[dict]) -> str:
    def pm(v, fmt):  # mean ± std over seeds; the value alone for one seed
        return "" if v is None else f"{v[0]:{fmt}}" + ("" if v[1] is None else f" ± {v[1]:{fmt}}")

    def mean(v, fmt):
        return "" if v is None else f"{(v[0] if isinstance(v, tuple) else v):{fmt}}"

    lines = ["| model | params | accuracy | AUC | 1/εB @ εS=0.3 | 1/εB @ εS=0.5 | epochs | training jets seen | "
             "train wall s | train CPU s | inference jets/CPU-s |", "|---|---:|---|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['n_params']:,} | {pm(r['accuracy'], '.4f')} | {pm(r['auc'], '.4f')} | "
                     f"{pm(r['rej30'], '.0f')} | {pm(r['rej50'], '.1f')} | {mean(r['epochs'], '.1f')} | "
                     f"{mean(r['jets_seen'], ',.0f')} | "
                     f"{mean(r['train_time_s'], '.0f')} | {mean(r['train_cpu_s'], '.0f')} | "
                     f"{mean(r['inference_jets_per_cpu_s'], ',.0f')} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--test", type=Path, default=None, help="a separate test file (then --val-jets of --data validate)")
    p.add_argument("--val-jets", type=int, default=10_000)
    p.add_argument("--patience", type=int, default=4, help="--budget 0: early-stopping patience in epochs")
    p.add_argument("--models", default=",".join(MODELS),
                   help=f"comma-separated; also the lite Lorentz sizes {', '.join(LITE)}")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--budget", type=float, default=60.0, help="training CPU seconds per run; 0: until early stopping")
    p.add_argument("--max-epochs", type=int, default=50)
    p.add_argument("--split", type=lambda s: tuple(map(float, s.split(","))), default=(0.85, 0.05, 0.10))
    p.add_argument("--train-jets", type=int, default=None)
    p.add_argument("--overtraining-jets", type=int, default=5000)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("runs/leaderboard"))
    args = p.parse_args()
    models, seeds = args.models.split(","), [int(s) for s in args.seeds.split(",")]
    unknown = [m for m in models if not config_of(m)[0].is_file()]
    if unknown:
        p.error(f"--models: no configs/top_tagging/<model>.yaml for {', '.join(unknown)}; "
                f"choose from {', '.join(MODELS + list(LITE))}")
    args.data_overrides = data_overrides(args)  # once, before the runs start in parallel
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda ms: train(args, *ms), [(m, s) for s in seeds for m in models]))
    table = to_markdown(summarize(args.out, models))
    (args.out / "leaderboard.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
