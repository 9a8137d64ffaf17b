"""The low-data study of docs/pretraining.md: from scratch, fine-tuned, linear probe, Lorentz models.

For each number of labeled training jets (``--sizes``) and seed, every row trains one `hepnn train`
to convergence (early stopping on the validation AUC, ``--max-epochs`` as the cap) and is tested on
the same independent test file (``--test``: 20k + 20k jets resolve 1/eps_B(0.3) up to ~2k):

* ``part_lite`` from scratch;
* ``part_lite`` fine-tuned from a masked-particle pre-training (``--backbone``: a run directory or
  ``pretrained:NAME``), and its probe: the pre-trained backbone frozen, the class attention and the
  head trained (the masked-particle task never trains ParT's pooling, so a strictly linear probe
  would sit on a random pooling);
* ``gpt_classifier`` (OmniJet-alpha's backbone over VQ-VAE tokens) fine-tuned from a next-particle
  pre-training (``--gpt``: a ``gpt_particles`` run), and from scratch on the same frozen tokenizer
  (``--tokenizer``: the ``vqvae_particles`` run the GPT was trained on);
* ``part_lite`` fine-tuned from a supervised pre-training on another task, W vs QCD
  (``--supervised``: a run of ``configs/pretrain/supervised_3class_part_lite.yaml`` with two classes
  on ``--supervised-data``, W jets labeled 1);
* ``lorentznet_lite`` and ``pelican_lite`` from scratch (the lectures' other answer for small data),
  and ``particlenet_lite`` from scratch (docs/lessons.md, lesson 2: Lorentz symmetry against a generic
  particle network at a few thousand jets).

The labeled jets are the first ``size`` jets of ``--train`` (a shuffled file), the validation jets
the next ``max(size / 4, 500)``; the pre-training reads jets from ``--reserve`` on, never those
(or its own file, ``--pretrain-data``). Finished runs are skipped, and so are started ones, so two
sweeps can share the work; after an interruption, ``--retry`` resumes the started runs without metrics from their last epoch
(or reruns them when they never finished one).

With the whole ``toptag-100k`` train file (``--reserve``/``--pretrain-jets`` pick the jets):

    OMP_NUM_THREADS=1 python benchmarks/pretraining_study.py pretrain --train SAMPLES/toptag-100k/train.parquet \\
        --out runs/study                      # masked-particle pre-training of ParT-lite on jets 20k..
    OMP_NUM_THREADS=1 python benchmarks/pretraining_study.py sweep --train SAMPLES/toptag-100k/train.parquet \\
        --test SAMPLES/toptag-100k/test.parquet --backbone runs/study/pretrain --out runs/study --jobs 2
    python benchmarks/pretraining_study.py table --out runs/study   # the markdown table

or, as docs/pretraining.md measured it, from a part of the presets' shards: ``files`` merges them
into OUT/data (test, unlabeled pre-training, labeled and W-vs-QCD files), then ``pretrain
--pretrain-data OUT/data/pretrain.parquet --tasks mpm,vqvae,next_particle`` and ``--tasks supervised
--supervised-data OUT/data/wqcd.parquet``, then ``sweep --train OUT/data/labeled.parquet``.
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

from leaderboard import LITE, slice_file  # a sibling script: benchmarks/ is on the path when this one runs

ROOT = Path(__file__).resolve().parents[1]
ROWS = {  # row -> (config, extra overrides; {backbone}, {gpt}, {tokenizer}, {supervised} are filled in)
    "part_lite scratch": ("top_tagging/part_lite.yaml", []),
    "part_lite fine-tuned (MPM)": ("top_tagging/part_lite.yaml", ["train.init_from={backbone}"]),
    # the probe of a masked-particle backbone: the pre-training never trains ParT's class-attention
    # pooling, so it is trained with the head and everything the pre-training did train stays frozen
    "part_lite frozen backbone (MPM)": ("top_tagging/part_lite.yaml", ["train.init_from={backbone}",
                                                                       "train.freeze=[embed.*, pair_embed.*, blocks.*]"]),
    "part_lite fine-tuned (W vs QCD)": ("top_tagging/part_lite.yaml", ["train.init_from={supervised}"]),
    # OmniJet-alpha: the classifier needs a tokenizer even from scratch (the VQ-VAE, frozen in both rows)
    "gpt scratch (tokenizer only)": ("top_tagging/gpt_classifier.yaml", ["train.init_from={tokenizer}"]),
    "gpt fine-tuned (next-particle)": ("top_tagging/gpt_classifier.yaml", ["train.init_from={gpt}"]),
    **{f"{lite} scratch": (f"top_tagging/{config}.yaml", extra) for lite, (config, extra) in LITE.items()},
    "particlenet_lite scratch": ("top_tagging/particlenet_lite.yaml", []),  # lesson 2 of docs/lessons.md
    "bdt (jet observables)": ("top_tagging/bdt.yaml", []),  # the reference of lesson 1
}


def files(a: argparse.Namespace) -> None:
    """The study's files in OUT/data, merged (shuffled, byte-reproducibly) from the presets' shards.

    ``--shards`` is the ``toptag-100k`` preset's shard folder, ``--w-shards`` (optional) the
    ``toptag-3class`` one. Train shards 0..2 of each class are the unlabeled pre-training jets, 3..6
    the labeled ones (never pre-trained on); the W jets are labeled 1 against pre-training QCD jets.
    ``--all-labeled`` adds ``labeled-all.parquet``, train shards 3..19 (85 000 jets, for the 32k size).
    """
    from hepnn.generate import merge_files

    def shards(part: str, indices: range, root: Path = a.shards) -> list[Path]:
        return [root / part / f"shard-{i:05d}.parquet" for i in indices]

    plan = {  # file -> (shards in order, labels to write or None)
        "test.parquet": (shards("test-top", range(1)) + shards("test-qcd", range(8)), None),
        "pretrain.parquet": (shards("train-top", range(3)) + shards("train-qcd", range(3)), None),
        "labeled.parquet": (shards("train-top", range(3, 7)) + shards("train-qcd", range(3, 7)), None),
    }
    if a.all_labeled:
        plan["labeled-all.parquet"] = (shards("train-top", range(3, 20)) + shards("train-qcd", range(3, 20)), None)
    if a.w_shards:
        plan["wqcd.parquet"] = (shards("pretrain-w", range(3), a.w_shards) + shards("train-qcd", range(3)),
                                [1, 1, 1, None, None, None])
    missing = [str(p) for paths, _ in plan.values() for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(f"missing shards: {', '.join(missing)}; make them with `hepnn generate --preset "
                         "toptag-100k --shards A:B` (docs/pretraining.md lists the ranges)")
    for name, (paths, labels) in plan.items():
        if not (a.out / "data" / name).is_file():
            merge_files(paths, a.out / "data" / name, shuffle_seed=0, labels=labels)
        print(a.out / "data" / name, flush=True)


def hepnn(args: list[str], log: Path, append: bool = False) -> int:
    cmd = [str(Path(sys.executable).with_name("hepnn")), *args]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a" if append else "w") as f:
        return subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})


PRETRAININGS = {  # --tasks name -> (config, run directory under --out, the run it starts from, overrides)
    "mpm": ("mpm_part_lite.yaml", "pretrain", None, []),
    "vqvae": ("vqvae_particles.yaml", "pretrain_vq", None, []),
    "next_particle": ("gpt_particles.yaml", "pretrain_gpt", "pretrain_vq", []),  # the GPT needs the tokenizer
    "supervised": ("supervised_3class_part_lite.yaml", "pretrain_wqcd", None, ["data.num_classes=2"]),  # labeled
}


def pretrain(a: argparse.Namespace) -> None:
    for task in a.tasks:
        config, name, start, extra = PRETRAININGS[task]
        run = a.out / name
        if (run / "model.safetensors").is_file():
            continue
        extra = extra + ([f"train.init_from={a.out / start}"] if start else [])
        if task == "supervised":
            jets = a.supervised_data
        elif a.pretrain_data:  # unlabeled jets of their own (labels, if any, are not read)
            jets = a.pretrain_data
        else:
            jets = slice_file(a.train, a.out / "data" / "pretrain.parquet", a.reserve, a.reserve + a.pretrain_jets)
        rc = hepnn(["train", str(ROOT / "configs" / "pretrain" / config), f"data.train={jets}", f"train.epochs={a.pretrain_epochs}",
                    "evaluate.plots=false", *extra, "--out", str(run)], a.out / f"{name}.log")
        print(f"pre-training {task}: {'ok' if rc == 0 else f'FAILED rc={rc}'} ({a.out / f'{name}.log'})", flush=True)
        if rc != 0:
            return


def fill(override: str, a: argparse.Namespace) -> str:
    """A row's override with the pre-training runs it names ({backbone}, {gpt}, ...) filled in."""
    for key in ("backbone", "gpt", "tokenizer", "supervised"):
        override = override.replace("{" + key + "}", str(getattr(a, key)))
    return override


def size_files(a: argparse.Namespace, size: int) -> tuple[Path, Path]:
    """Jets 0..size of --train to train on, the next size/4 (at least 500, at most what is left) to validate."""
    import pyarrow.parquet as pq

    n = pq.ParquetFile(a.train).metadata.num_rows
    n_val = min(max(size // 4, 500), n - size)
    if n_val < 500:
        sys.exit(f"--train {a.train} has {n} jets: too few for {size} training jets and at least 500 to validate; "
                 f"lower --sizes to {n - 500} or less")
    return (slice_file(a.train, a.out / "data" / f"train{size}.parquet", 0, size),
            slice_file(a.train, a.out / "data" / f"val{size}.parquet", size, size + n_val))


def run_one(a: argparse.Namespace, row: str, size: int, seed: int) -> None:
    out = a.out / "runs" / row.replace(" ", "_").replace("(", "").replace(")", "") / f"n{size}" / f"seed{seed}"
    if (out / "metrics.json").is_file():
        return
    if out.with_suffix(".log").is_file() and not a.retry:  # started by another sweep (or failed: --retry)
        print(f"{row} n={size} seed {seed}: skipped, {out.with_suffix('.log')} exists", flush=True)
        return
    if (out / "checkpoints" / "last.pt").is_file():  # interrupted (--retry): continue from its last epoch
        rc = hepnn(["train", "--resume", str(out)], out.with_suffix(".log"), append=True)
        print(f"{row} n={size} seed {seed}: resumed, {'ok' if rc == 0 else f'FAILED rc={rc}'}", flush=True)
        return
    train, val = size_files(a, size)
    config, extra = ROWS[row]
    overrides = [f"data.train={train}", f"data.val={val}", f"data.test={a.test}", f"train.seed={seed}",
                 f"train.epochs={a.max_epochs}",
                 f"train.early_stopping={{metric: val_auc, mode: max, patience: {a.patience}}}",
                 "evaluate.plots=false", "evaluate.overtraining_jets=0", f"data.max_particles={a.max_particles}",
                 *(fill(o, a) for o in extra)]
    rc = hepnn(["train", str(ROOT / "configs" / config), *overrides, "--out", str(out)], out.with_suffix(".log"))
    print(f"{row} n={size} seed {seed}: {'ok' if rc == 0 else f'FAILED rc={rc}'}", flush=True)


def sweep(a: argparse.Namespace) -> None:
    for size in a.sizes:  # the data files once, before the runs start in parallel
        size_files(a, size)
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
    p.add_argument("mode", choices=["files", "pretrain", "sweep", "table"])
    p.add_argument("--shards", type=Path, help="files: the toptag-100k preset's shard folder (SAMPLES/shards)")
    p.add_argument("--w-shards", type=Path, help="files: the toptag-3class preset's shard folder (W jets)")
    p.add_argument("--all-labeled", action="store_true",
                   help="files: also labeled-all.parquet from every train shard not pre-trained on (3..19)")
    p.add_argument("--train", type=Path, help="shuffled labeled sample (e.g. toptag-100k train.parquet)")
    p.add_argument("--test", type=Path, help="independent test file (e.g. toptag-100k test.parquet)")
    p.add_argument("--backbone", default=None, help="masked-particle pre-training: run directory or pretrained:NAME")
    p.add_argument("--gpt", default=None, help="next-particle pre-training run (default OUT/pretrain_gpt)")
    p.add_argument("--tokenizer", default=None, help="its VQ-VAE tokenizer run (default OUT/pretrain_vq)")
    p.add_argument("--supervised", default=None, help="supervised (W vs QCD) pre-training run (default OUT/pretrain_wqcd)")
    p.add_argument("--supervised-data", type=Path, default=None, help="labeled W (1) and QCD (0) jets for --tasks supervised")
    p.add_argument("--tasks", type=lambda s: s.split(","), default=["mpm"],
                   help=f"pre-trainings to run, comma list of {', '.join(PRETRAININGS)}")
    p.add_argument("--out", type=Path, default=Path("runs/pretraining_study"))
    p.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[500, 2000, 8000])
    p.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    p.add_argument("--rows", type=lambda s: s.split(","), default=list(ROWS))
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--retry", action="store_true", help="resume (or rerun) runs that have a log but no metrics (interrupted or failed ones)")
    p.add_argument("--max-epochs", type=int, default=40)
    p.add_argument("--patience", type=int, default=5, help="early stopping: epochs without a better validation AUC")
    p.add_argument("--max-particles", type=int, default=64)
    p.add_argument("--reserve", type=int, default=20_000,
                   help="jets 0..RESERVE of --train: the labeled sizes and their validation, never pre-trained on")
    p.add_argument("--pretrain-jets", type=int, default=80_000)
    p.add_argument("--pretrain-data", type=Path, default=None,
                   help="a file of jets to pre-train on instead of --train's jets from --reserve on")
    p.add_argument("--pretrain-epochs", type=int, default=5)
    a = p.parse_args()
    a.backbone = a.backbone or str(a.out / "pretrain")
    a.gpt = a.gpt or str(a.out / "pretrain_gpt")
    a.supervised = a.supervised or str(a.out / "pretrain_wqcd")
    a.tokenizer = a.tokenizer or str(a.out / "pretrain_vq")
    unknown = [r for r in a.rows if r not in ROWS]
    if unknown:
        p.error(f"unknown rows {unknown}; choose from {list(ROWS)}")
    if a.mode == "pretrain" and "supervised" in a.tasks and a.supervised_data is None:
        p.error("--tasks supervised needs --supervised-data (W jets labeled 1, QCD jets 0)")
    if set(a.tasks) - set(PRETRAININGS):
        p.error(f"unknown pre-training tasks {sorted(set(a.tasks) - set(PRETRAININGS))}; choose from {list(PRETRAININGS)}")
    if a.mode == "files" and a.shards is None:
        p.error("files needs --shards")
    if a.mode in ("pretrain", "sweep") and a.train is None:
        p.error("--train is required")
    if a.mode == "sweep" and a.test is None:
        p.error("--test is required for the sweep")
    {"files": files, "pretrain": pretrain, "sweep": sweep, "table": table}[a.mode](a)


if __name__ == "__main__":
    main()
