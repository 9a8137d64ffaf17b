"""The top-tagging leaderboard: every zoo model, one compute budget, several seeds, one table.

Each (model, seed) is one `hepnn train` of ``configs/top_tagging/<model>.yaml`` on the same data and
split, stopped by ``train.time_limit`` CPU seconds (``train.time_clock=process``, one thread), so that
models compete for the same compute on this machine rather than the same number of epochs. Finished
runs are skipped, so an interrupted leaderboard resumes where it stopped. The table (mean ± std over
seeds) goes to stdout and ``OUT/leaderboard.md``.

    OMP_NUM_THREADS=1 python benchmarks/leaderboard.py --data /work/lb/toptag_100k.parquet \\
        --budget 60 --seeds 1,2,3 --jobs 2 --out runs/leaderboard

``--train-jets N`` keeps N training jets (the low-data study), with validation and test jets in the
proportions of ``--split``.
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


def overrides(args: argparse.Namespace, model: str) -> list[str]:
    tr, va, te = args.split
    out = [f"data.train={args.data}", f"data.split.train={tr}", f"data.split.val={va}", f"data.split.test={te}",
           f"train.time_limit={args.budget}", "train.time_clock=process", f"train.epochs={args.max_epochs}",
           "evaluate.plots=false", f"evaluate.overtraining_jets={args.overtraining_jets}"]
    if args.train_jets:
        out.append(f"data.max_jets={round(args.train_jets / tr)}")
    return out


def train(args: argparse.Namespace, model: str, seed: int) -> Path:
    run = args.out / model / f"seed{seed}"
    if (run / "metrics.json").is_file():
        return run
    cfg = ROOT / "configs" / "top_tagging" / f"{model}.yaml"
    cmd = [str(Path(sys.executable).with_name("hepnn")), "train", str(cfg), *overrides(args, model),
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
        for key in ("accuracy", "auc", "rej30", "rej50", "train_time_s", "inference_jets_per_cpu_s"):
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
             "train wall s | inference jets/CPU-s |", "|---|---:|---|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['n_params']:,} | {pm(r['accuracy'], '.4f')} | {pm(r['auc'], '.4f')} | "
                     f"{pm(r['rej30'], '.0f')} | {pm(r['rej50'], '.1f')} | {mean(r['epochs'], '.1f')} | "
                     f"{mean(r['jets_seen'], ',.0f')} | "
                     f"{mean(r['train_time_s'], '.0f')} | {mean(r['inference_jets_per_cpu_s'], ',.0f')} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--budget", type=float, default=60.0, help="training CPU seconds per run")
    p.add_argument("--max-epochs", type=int, default=50)
    p.add_argument("--split", type=lambda s: tuple(map(float, s.split(","))), default=(0.85, 0.05, 0.10))
    p.add_argument("--train-jets", type=int, default=None)
    p.add_argument("--overtraining-jets", type=int, default=5000)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("runs/leaderboard"))
    args = p.parse_args()
    models, seeds = args.models.split(","), [int(s) for s in args.seeds.split(",")]
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda ms: train(args, *ms), [(m, s) for s in seeds for m in models]))
    table = to_markdown(summarize(args.out, models))
    (args.out / "leaderboard.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
