"""CPU smoke runs of the top-tagging recipes in configs/published, through the documented path, on loopback.

    OMP_NUM_THREADS=1 python benchmarks/published_smoke.py [--jets 1500] [--recipes part,particlenet,...]

The committed sample ``data/toptag_small.parquet`` (5,000 generated top/QCD jets; NOT the reference
sample) is written in the top-tagging HDF5 layout (train / val / test = 60 / 20 / 20 % of ``--jets``),
served by a loopback HTTP server and fetched with ``hepnn.datasets.get.get_files`` (the catalogue entry
with these files' md5s and sizes, through a mirror URL); then each recipe is trained with
``hepnn.train.fit`` for one epoch on CPU at its published model size, with batch 32 and fp16 off.

One row per recipe: parameters, training steps, wall seconds, seconds per step, test AUC. These runs
only show that get -> train -> evaluate works with each recipe: one epoch on ~900 generated jets says
nothing about the published numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import math
import os
import platform
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ("part", "particlenet", "lorentznet", "pelican")
CPU = ["train.epochs=1", "train.amp=none", "train.device=cpu", "data.batch_size=32", "evaluate.plots=false",
       "evaluate.overtraining_jets=0"]


def write_layout(folder: Path, n: int) -> dict[str, bytes]:
    """The first ``n`` sample jets as train/val/test.h5 (60/20/20) in the top-tagging layout."""
    from hepnn.data.io import read_jets, write_toptagging_h5

    jets = read_jets(ROOT / "data" / "toptag_small.parquet", max_jets=n)
    cuts = [0, int(0.6 * n), int(0.8 * n), n]
    for name, a, b in zip(("train.h5", "val.h5", "test.h5"), cuts, cuts[1:]):
        write_toptagging_h5(jets[a:b], folder / name, max_particles=200)
    return {p.name: p.read_bytes() for p in folder.iterdir()}


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def fetch_over_loopback(src: Path, dest: Path, files: dict[str, bytes]) -> None:
    from hepnn.datasets.get import get_files
    from hepnn.datasets.sources import TOPTAGGING

    entry = dataclasses.replace(TOPTAGGING, files=tuple(
        dataclasses.replace(f, checksum="md5:" + hashlib.md5(files[f.name]).hexdigest(), size=len(files[f.name]))
        for f in TOPTAGGING.files))
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(src)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for s in get_files(entry, dest, mirror=f"http://127.0.0.1:{server.server_address[1]}", progress=False):
            print(f"  {s.name}: {s.state}, {s.detail}")
    finally:
        server.shutdown()
        server.server_close()


def run_recipe(name: str, out: Path) -> dict:
    from hepnn.config import load_config
    from hepnn.train.fit import fit

    cfg = load_config(ROOT / "configs" / "published" / f"{name}_toptagging.yaml", CPU)
    t0 = time.perf_counter()
    run = fit(cfg, out / name)
    wall = time.perf_counter() - t0
    metrics = json.loads((Path(run) / "metrics.json").read_text())
    return {"wall": wall, **metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jets", type=int, default=1500)
    parser.add_argument("--recipes", default=",".join(RECIPES))
    args = parser.parse_args()
    print(f"# {platform.processor() or platform.machine()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "src").mkdir()
        files = write_layout(tmp / "src", args.jets)
        fetch_over_loopback(tmp / "src", tmp / "datasets" / "toptagging", files)
        os.chdir(tmp)  # the recipes read datasets/toptagging/*.h5, where `get` put them
        n_train = int(0.6 * args.jets)
        print("| recipe | parameters | steps | wall s | s/step | test AUC |")
        print("|---|---|---|---|---|---|")
        for name in args.recipes.split(","):
            m = run_recipe(name, tmp / "runs")
            steps = math.ceil(n_train / 32)
            print(f"| {name}_toptagging | {m['n_params']:,} | {steps} | {m['wall']:.0f} | "
                  f"{m['train_time_s'] / steps:.2f} | {m['auc']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
