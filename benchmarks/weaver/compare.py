"""weaver-core and hepnn trained the same way on the same files: validation AUC after each epoch and
CPU time, one table; or (``--throughput``) both frameworks' training speed back to back with ratios.

    OMP_NUM_THREADS=1 python benchmarks/weaver/compare.py --model particlenet_lite \
        --data lb/toptag_100k.parquet --train-jets 20480 --val-jets 10240 --epochs 3
    OMP_NUM_THREADS=1 python benchmarks/weaver/compare.py --throughput --model part [--rounds 2] \
        [--set train.amp=bf16]

Throughput mode: on the committed sample, one thread each, batch 256, N <= 128, weaver-core's own
``weaver`` command through ``run.sh MODEL 19`` (the whole file, its CPU-TIMED rate from the 6th batch
on) and hepnn's ``bench_train.py --steps 0`` (one epoch of the training split, hepnn's default
settings plus ``--set``), alternately, ``--rounds`` times; prints both rates in jets per CPU-second
and the ratio. bf16 is hepnn's side only: weaver-core 0.5.3's ``--use-amp`` is fp16 on CUDA.

Both frameworks get: the first ``--train-jets`` jets of ``--data`` as the training file and the next
``--val-jets`` as a separate validation file (weaver-core 0.5.3 cannot split one file, see README.md),
the model at the same size (``particlenet``/``part`` = paper size, ``*_lite`` = hepnn's lite
variants, built in weaver through ``--network-option size lite``), batch 256, AdamW at a constant
learning rate 1e-3 without weight decay, no early stopping, at most 128 particles per jet, one thread.
Each framework keeps its own input pipeline: weaver's padding to 128 with trimming, and its manual
standardization from ``top_kin.yaml``; hepnn's bucketed batches and fitted standardization.
The CPU time is the whole run's (both include one validation pass per epoch); the training rate is
the training loop's alone, in wall time (weaver: ``CPU-TIMED`` from ``wrapper_common.py``; hepnn: the
history's ``jets_per_s``), so it is meaningful only on an otherwise idle machine. Needs the weaver venv (README.md); run with hepnn's python.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WEAVER_NET = {"particlenet": ("particlenet.py", "full"), "particlenet_lite": ("particlenet.py", "lite"),
              "part": ("part.py", "full"), "part_lite": ("part.py", "lite")}


def split_files(data: Path, n_train: int, n_val: int, work: Path) -> tuple[Path, Path]:
    """The first ``n_train`` jets of ``data`` and the next ``n_val``, as two parquet files."""
    import awkward as ak

    from hepnn.data.io import write_parquet

    jets = ak.from_parquet(data)
    if len(jets) < n_train + n_val:
        sys.exit(f"{data} holds {len(jets)} jets; --train-jets + --val-jets = {n_train + n_val}")
    out = work / "train.parquet", work / "val.parquet"
    write_parquet(jets[:n_train], out[0], row_group_size=10_000)
    write_parquet(jets[n_train:n_train + n_val], out[1], row_group_size=10_000)
    return out


def timed(cmd: list[str], log: Path) -> float:
    """Run ``cmd`` (output to ``log``); the CPU seconds it used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(log, "w") as f:
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    if rc:
        sys.exit(f"{cmd[0]} failed (exit {rc}); see {log}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_weaver(args: argparse.Namespace, train: Path, val: Path, work: Path) -> tuple[list[float], float, list[float]]:
    net, size = WEAVER_NET[args.model]
    config = work / "top_kin.yaml"  # weaver writes top_kin.*.auto.yaml beside its data config
    config.write_text((HERE / "top_kin.yaml").read_text())
    steps = args.train_jets // args.batch_size
    (work / "weaver.log").unlink(missing_ok=True)  # weaver appends to its log
    cmd = [args.weaver, "--data-train", str(train), "--data-val", str(val), "--data-config", str(config),
           "--network-config", str(HERE / net), "--network-option", "size", repr(size),
           "--model-prefix", str(work / "weaver" / "net"), "--log-file", str(work / "weaver.log"),
           "--run-mode", "train,val", "--gpus", "", "--num-workers", "0", "--in-memory", "--fetch-step", "1",
           "--steps-per-epoch", str(steps), "--steps-per-epoch-val", str(args.val_jets // args.batch_size),
           "--batch-size", str(args.batch_size),
           "--num-epochs", str(args.epochs), "--optimizer", "AdamW", "--optimizer-option", "weight_decay", "0",
           "--start-lr", str(args.lr), "--lr-scheduler", "none"]
    cpu = timed(cmd, work / "weaver.out")
    text = (work / "weaver.log").read_text()
    # weaver-core 0.5.3's roc_auc_score fails on two-class scores with current scikit-learn ("y should be
    # a 1d array"); the pairwise matrix's (0, 1) entry is the same number
    aucs = [float(v) for v in re.findall(r"- roc_auc_score_matrix: \n\[\[\s*[0-9.]+\s+([0-9.]+)\]", text)]
    rates = [float(v) for v in re.findall(r"CPU-TIMED: .*? ([0-9.]+) jets/s \(wall\)", text)]
    return aucs, cpu, rates


def run_hepnn(args: argparse.Namespace, train: Path, val: Path, work: Path) -> tuple[list[float], float, list[float]]:
    out = work / "hepnn"
    shutil.rmtree(out, ignore_errors=True)  # a fresh run, not a resumed one
    cmd = [str(Path(sys.executable).with_name("hepnn")), "train", str(ROOT / "configs" / "top_tagging" / f"{args.model}.yaml"),
           f"data.train={train}", f"data.val={val}", f"data.test={val}", "data.max_particles=128",
           f"data.batch_size={args.batch_size}", f"train.epochs={args.epochs}", "train.optimizer.name=adamw",
           f"train.optimizer.lr={args.lr}", "train.optimizer.weight_decay=0", "train.schedule.name=constant",
           "train.schedule.warmup_steps=0",
           "train.early_stopping=null", "evaluate.plots=false", "evaluate.overtraining_jets=0",
           *args.set, "--out", str(out)]
    cpu = timed(cmd, work / "hepnn.out")
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    return [float(r["val_auc"]) for r in rows], cpu, [float(r["jets_per_s"]) for r in rows]


def weaver_rate(model: str, work: Path) -> float:
    """weaver-core's training jets per CPU-second on the committed sample (``run.sh MODEL 19``)."""
    env = {**os.environ, "WORK": str(work)}
    (work / f"{model}.log").unlink(missing_ok=True)  # weaver appends to its log
    subprocess.run([str(HERE / "run.sh"), model, "19"], env=env, check=True, capture_output=True)
    text = (work / f"{model}.log").read_text()
    return float(re.findall(r"CPU-TIMED: .*?: ([0-9.]+) jets/s \(process CPU\)", text)[-1])


def hepnn_rate(model: str, overrides: list[str]) -> float:
    """hepnn's training jets per CPU-second, one epoch of ``bench_train.py`` (default settings)."""
    cmd = [sys.executable, str(HERE.parent / "bench_train.py"), "--models", model, "--steps", "0"]
    if overrides:
        cmd += ["--set", *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    row = [line.split() for line in out.splitlines() if line.startswith(model + " ")][-1]
    return float(row[2])


def throughput(args: argparse.Namespace) -> None:
    sys.path[:0] = [str(HERE.parent), str(ROOT / "src")]  # this checkout's benchmarks and sources
    from machine import describe

    print(describe())
    model = args.model
    if model not in ("particlenet", "part"):
        sys.exit("--throughput runs the paper-size models (run.sh's wrappers): particlenet or part")
    work = args.work / "throughput"
    work.mkdir(parents=True, exist_ok=True)
    rates: dict[str, list[float]] = {"weaver-core": [], "hepnn": []}
    for r in range(args.rounds):
        for side in (("weaver-core", "hepnn") if r % 2 == 0 else ("hepnn", "weaver-core")):
            rate = weaver_rate(model, work) if side == "weaver-core" else hepnn_rate(model, args.set)
            rates[side].append(rate)
            print(f"  round {r + 1} {side:<12} {rate:8.2f} jets per CPU-s", flush=True)
    w, h = (sum(v) / len(v) for v in rates.values())
    extra = f" ({' '.join(args.set)})" if args.set else " (default settings)"
    print(f"\n| {model}, training jets per CPU-s | weaver-core 0.5.3 | hepnn{extra} | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| {time.strftime('%Y-%m-%d')}, {args.rounds} round(s) | {w:.2f} | {h:.2f} | {h / w:.2f}x |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(WEAVER_NET), default="particlenet_lite")
    p.add_argument("--data", type=Path, default=ROOT / "data" / "toptag_small.parquet")
    p.add_argument("--train-jets", type=int, default=2048)
    p.add_argument("--val-jets", type=int, default=1024, help="a multiple of the batch size: weaver "
                   "validates whole batches only")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--work", type=Path, default=Path("/tmp/weaver-compare"))
    p.add_argument("--weaver", default=str(Path(os.environ.get("WEAVER_VENV", ROOT.parent / "weaver-venv")) / "bin" / "weaver"),
                   help="weaver command (default: $WEAVER_VENV/bin/weaver, $WEAVER_VENV = ../weaver-venv)")
    p.add_argument("--skip", choices=["weaver", "hepnn"], help="run one side only")
    p.add_argument("--set", nargs="*", default=[], help="extra hepnn overrides, key=value")
    p.add_argument("--throughput", action="store_true", help="training speed of both, back to back, and the ratio")
    p.add_argument("--rounds", type=int, default=1, help="--throughput: alternating rounds")
    args = p.parse_args()
    if args.throughput:
        return throughput(args)

    work = args.work / args.model
    work.mkdir(parents=True, exist_ok=True)
    train, val = split_files(args.data, args.train_jets, args.val_jets, work)
    start = time.strftime("%Y-%m-%d %H:%M")
    rows = {}
    if args.skip != "weaver":
        rows["weaver-core"] = run_weaver(args, train, val, work)
    if args.skip != "hepnn":
        rows["hepnn"] = run_hepnn(args, train, val, work)
    print(f"\n{args.model}: {args.train_jets} training / {args.val_jets} validation jets from {args.data}, "
          f"batch {args.batch_size}, AdamW lr {args.lr}, {args.epochs} epochs, started {start}\n")
    head = " | ".join(f"val AUC ep {e + 1}" for e in range(args.epochs))
    print(f"| framework | {head} | CPU-s, whole run | training jets/s (wall) |")
    print("|---|" + "---:|" * (args.epochs + 2))
    for name, (aucs, cpu, rates) in rows.items():
        cells = " | ".join(f"{a:.4f}" for a in aucs)
        rate = f"{sum(rates) / len(rates):.1f}" if rates else "—"
        print(f"| {name} | {cells} | {cpu:.0f} | {rate} |")


if __name__ == "__main__":
    main()
