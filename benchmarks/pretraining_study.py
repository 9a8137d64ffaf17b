"""The low-data study of docs/pretraining.md: from scratch, fine-tuned, linear probe, Lorentz models.

For each number of labeled training jets (``--sizes``) and seed, every row trains one `hepnn train`
to convergence (early stopping on the validation AUC, ``--max-epochs`` as the cap) and is tested on
the same independent test file (``--test``: 20k + 20k jets resolve 1/eps_B(0.3) up to ~2k):

* ``part_lite`` from scratch;
* ``part_lite`` fine-tuned from a masked-particle pre-training (``--backbone``: a run directory or
  ``pretrained:NAME``), and its probe: the pre-trained backbone frozen, the class attention and the
  head trained (the masked-particle task never trains ParT's pooling, so a strictly linear probe
  would sit on a random pooling);
* ``lorentznet_lite`` and ``pelican_lite`` from scratch (the lectures' other answer for small data),
  and ``particlenet_lite`` from scratch (docs/lessons.md, lesson 2: Lorentz symmetry against a generic
  particle network at a few thousand jets).

The labeled jets are the first ``size`` jets of ``--train`` (a shuffled file), the validation jets
the next ``max(size / 4, 500)``; the pre-training reads jets from ``--reserve`` on, never those
(or its own file, ``--pretrain-data``). Finished runs are skipped, and so are started ones, so two
sweeps can share the work; after an interruption, ``--retry`` reruns the started runs without metrics.

    OMP_NUM_THREADS=1 python benchmarks/pretraining_study.py pretrain --train SAMPLES/toptag-100k/train.parquet \\
        --out runs/study                      # masked-particle pre-training of ParT-lite on jets 20k..
    OMP_NUM_THREADS=1 python benchmarks/pretraining_study.py sweep --train SAMPLES/toptag-100k/train.parquet \\
        --test SAMPLES/toptag-100k/test.parquet --backbone runs/study/pretrain --out runs/study --jobs 2
    python benchmarks/pretraining_study.py table --out runs/study   # the markdown table
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
ROWS = {  # row -> (config, extra overrides; {backbone} is filled in)
    "part_lite scratch": ("top_tagging/part_lite.yaml", []),
    "part_lite fine-tuned (MPM)": ("top_tagging/part_lite.yaml", ["train.init_from={backbone}"]),
    # the probe of a masked-particle backbone: the pre-training never trains ParT's class-attention
    # pooling, so it is trained with the head and everything the pre-training did train stays frozen
    "part_lite frozen backbone (MPM)": ("top_tagging/part_lite.yaml", ["train.init_from={backbone}",
                                                                       "train.freeze=[embed.*, pair_embed.*, blocks.*]"]),
    "lorentznet_lite scratch": ("top_tagging/lorentznet.yaml", ["model.name=lorentznet_lite", "model.params={}"]),
    "pelican_lite scratch": ("top_tagging/pelican.yaml", ["model.name=pelican_lite", "model.params={}"]),
    "particlenet_lite scratch": ("top_tagging/particlenet_lite.yaml", []),  # lesson 2 of docs/lessons.md
    "bdt (jet observables)": ("top_tagging/bdt.yaml", []),  # the reference of lesson 1
}


def slice_file(src: Path, dst: Path, start: int, stop: int) -> Path:
    """Rows start..stop of a parquet file as their own file (kept if it exists)."""
    import pyarrow.parquet as pq

    if not dst.is_file():
        dst.parent.mkdir(parents=True, exist_ok=True)
        table = pq.read_table(src)
        pq.write_table(table.slice(start, stop - start), dst.with_suffix(".tmp"))
        dst.with_suffix(".tmp").rename(dst)
    return dst


def hepnn(args: list[str], log: Path) -> int:
    cmd = [str(Path(sys.executable).with_name("hepnn")), *args]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        return subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})


def pretrain(a: argparse.Namespace) -> None:
    if a.pretrain_data:  # unlabeled jets of their own (labels, if any, are not read)
        data = a.pretrain_data
    else:
        data = slice_file(a.train, a.out / "data" / "pretrain.parquet", a.reserve, a.reserve + a.pretrain_jets)
    run = a.out / "pretrain"
    if (run / "model.safetensors").is_file():
        return
    cfg = ROOT / "configs" / "pretrain" / "mpm_part_lite.yaml"
    rc = hepnn(["train", str(cfg), f"data.train={data}", f"train.epochs={a.pretrain_epochs}", "evaluate.plots=false",
                "--out", str(run)], a.out / "pretrain.log")
    print(f"pre-training: {'ok' if rc == 0 else f'FAILED rc={rc}'} ({a.out / 'pretrain.log'})", flush=True)


def run_one(a: argparse.Namespace, row: str, size: int, seed: int) -> None:
    out = a.out / "runs" / row.replace(" ", "_").replace("(", "").replace(")", "") / f"n{size}" / f"seed{seed}"
    if (out / "metrics.json").is_file():
        return
    if out.with_suffix(".log").is_file() and not a.retry:  # started by another sweep (or failed: --retry)
        print(f"{row} n={size} seed {seed}: skipped, {out.with_suffix('.log')} exists", flush=True)
        return
    n_val = max(size // 4, 500)
    train = slice_file(a.train, a.out / "data" / f"train{size}.parquet", 0, size)
    val = slice_file(a.train, a.out / "data" / f"val{size}.parquet", size, size + n_val)
    config, extra = ROWS[row]
    overrides = [f"data.train={train}", f"data.val={val}", f"data.test={a.test}", f"train.seed={seed}",
                 f"train.epochs={a.max_epochs}", "train.early_stopping={metric: val_auc, mode: max, patience: 5}",
                 "evaluate.plots=false", "evaluate.overtraining_jets=0", f"data.max_particles={a.max_particles}",
                 *(o.replace("{backbone}", str(a.backbone)) for o in extra)]
    rc = hepnn(["train", str(ROOT / "configs" / config), *overrides, "--out", str(out)], out.with_suffix(".log"))
    print(f"{row} n={size} seed {seed}: {'ok' if rc == 0 else f'FAILED rc={rc}'}", flush=True)


def sweep(a: argparse.Namespace) -> None:
    for size in a.sizes:  # the data files once, before the runs start in parallel
        slice_file(a.train, a.out / "data" / f"train{size}.parquet", 0, size)
        slice_file(a.train, a.out / "data" / f"val{size}.parquet", size, size + max(size // 4, 500))
    jobs = [(row, size, seed) for size in a.sizes for row in a.rows for seed in a.seeds]
    with ThreadPoolExecutor(a.jobs) as pool:
        list(pool.map(lambda j: run_one(a, *j), jobs))
    table(a)


def table(a: argparse.Namespace) -> None:
    lines = ["| labeled jets | row | seeds | AUC | 1/εB(εS=0.3) | epochs | train CPU-s |", "|---:|---|---:|---:|---:|---:|---:|"]
    for size in a.sizes:
        for row in a.rows:
            runs = sorted((a.out / "runs" / row.replace(" ", "_").replace("(", "").replace(")", "") / f"n{size}")
                          .glob("seed*/metrics.json"))
            if not runs:
                continue
            ms = [json.loads(p.read_text()) for p in runs]
            epochs = [len(p.with_name("history.csv").read_text().splitlines()) - 1 for p in runs
                      if p.with_name("history.csv").is_file()]  # tree models have no epochs

            def pm(key: str, fmt: str) -> str:
                v = np.array([m[key] for m in ms], dtype=float)
                return f"{v.mean():{fmt}}" + (f" ± {v.std(ddof=1):{fmt}}" if len(v) > 1 else "")
            cost = f"{np.mean(epochs):.1f} | {pm('train_cpu_s', '.0f')}" if epochs else f"— | {pm('train_cpu_s', '.1f')}"
            lines.append(f"| {size} | {row} | {len(ms)} | {pm('auc', '.4f')} | {pm('rej30', '.0f')} | {cost} |")
    text = "\n".join(lines) + "\n"
    (a.out / "study.md").write_text(text)
    print(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["pretrain", "sweep", "table"])
    p.add_argument("--train", type=Path, help="shuffled labeled sample (e.g. toptag-100k train.parquet)")
    p.add_argument("--test", type=Path, help="independent test file (e.g. toptag-100k test.parquet)")
    p.add_argument("--backbone", default=None, help="pre-training run directory or pretrained:NAME")
    p.add_argument("--out", type=Path, default=Path("runs/pretraining_study"))
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[500, 2000, 8000])
    p.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    p.add_argument("--rows", type=lambda s: s.split(","), default=list(ROWS))
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--retry", action="store_true", help="rerun runs that have a log but no metrics (failed ones)")
    p.add_argument("--max-epochs", type=int, default=40)
    p.add_argument("--max-particles", type=int, default=64)
    p.add_argument("--reserve", type=int, default=20_000,
                   help="jets 0..RESERVE of --train: the labeled sizes and their validation, never pre-trained on")
    p.add_argument("--pretrain-jets", type=int, default=80_000)
    p.add_argument("--pretrain-data", type=Path, default=None,
                   help="a file of jets to pre-train on instead of --train's jets from --reserve on")
    p.add_argument("--pretrain-epochs", type=int, default=5)
    a = p.parse_args()
    a.backbone = a.backbone or str(a.out / "pretrain")
    unknown = [r for r in a.rows if r not in ROWS]
    if unknown:
        p.error(f"unknown rows {unknown}; choose from {list(ROWS)}")
    if a.mode != "table" and a.train is None:
        p.error("--train is required")
    if a.mode == "sweep" and a.test is None:
        p.error("--test is required for the sweep")
    {"pretrain": pretrain, "sweep": sweep, "table": table}[a.mode](a)


if __name__ == "__main__":
    main()
