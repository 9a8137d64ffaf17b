"""Inference latency and throughput of registered models per runtime (eager, compile, int8, ONNX Runtime).

    OMP_NUM_THREADS=1 python benchmarks/bench_latency.py [--models mlp,pfn,particlenet_lite,part_lite]
        [--backends eager,int8,onnx] [--batch-size 1024] [--repeats 20]

Models at their registry defaults with untrained weights (latency does not depend on the values) on
real jets of the committed sample (particle features, N capped at 64); the median of ``--repeats``
timed calls after 5 warm-up calls, at batch 1 and at ``--batch-size``. A runtime that cannot take a
model says why in the last column. For a trained run use ``hepnn latency RUN_DIR``.
"""

from __future__ import annotations

import argparse
import logging
import platform
from pathlib import Path

import numpy as np
import torch

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "toptag_small.parquet"
FEATURES = ["deta", "dphi", "log_pt", "log_e", "log_pt_rel", "log_e_rel", "dr"]
JET_FEATURES = ["mass", "pt", "n_particles", "tau21", "tau32"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="mlp,pfn,particlenet_lite,part_lite")
    parser.add_argument("--backends", default="eager,int8,onnx")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from hepnn.compress.latency import format_rows, measure_model
    from hepnn.data.io import read_jets
    from hepnn.data.jagged import JaggedJets
    from hepnn.data.loader import BatchBuilder
    from hepnn.registry import create_model, get_model_spec

    jets = JaggedJets.from_awkward(read_jets(str(SAMPLE), max_jets=args.batch_size), jet_features=JET_FEATURES)
    build = BatchBuilder(fields=("x", "mask", "p4", "jet", "image"), particle_features=FEATURES, max_particles=64)
    big = build(jets, np.arange(len(jets)))
    batches = {1: big[np.arange(1)], len(big): big}
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), device {args.device}\n")
    for name in args.models.split(","):
        spec = get_model_spec(name)
        model = create_model(name).eval()
        rows = measure_model(model, spec.inputs, batches, backends=args.backends.split(","), device=args.device,
                             repeats=args.repeats)
        print(f"## {name} ({sum(p.numel() for p in model.parameters()):,} parameters)\n")
        print(format_rows(rows))


if __name__ == "__main__":
    main()
