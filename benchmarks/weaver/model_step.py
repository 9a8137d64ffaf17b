"""weaver-core's ParticleNet / ParticleTransformer training step timed on hepnn's jets (model only).

    OMP_NUM_THREADS=1 "$WEAVER_VENV"/bin/python benchmarks/weaver/model_step.py [--steps 2]
    python benchmarks/weaver/model_step.py --device cuda --steps 20 [--amp fp16|bf16]   # on a GPU

The fallback when the full ``run.sh`` is too slow on a loaded machine: the inputs of ``top_kin.yaml``
(7 features, Δη/Δφ points, four-vectors, mask; padded to 128 like weaver) for random batches of 256
jets of ``data/toptag_small.parquet``, and the step of weaver's ``train_classification`` (forward,
cross entropy, backward, gradient clipping, optimizer step), in process CPU time after one warm-up step;
on a GPU in wall time (synchronized), the batches moved to the GPU before the clock starts, under
``--amp``'s autocast (weaver-core's own ``--use-amp`` is fp16 with a gradient scaler, left out here).
"""

import argparse
import importlib.util
import time
from pathlib import Path

import awkward as ak
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parents[1] / "data" / "toptag_small.parquet"


def inputs(a, idx, length=128):
    """pf_points, pf_features, pf_vectors, pf_mask of jets ``idx`` as in top_kin.yaml (zero padded)."""
    j = a[idx]
    pt = np.hypot(j.part_px, j.part_py)
    eta = np.arcsinh(j.part_pz / pt)
    phi = np.arctan2(j.part_py, j.part_px)
    deta, dphi = eta - j.jet_eta, (phi - j.jet_phi + np.pi) % (2 * np.pi) - np.pi

    def pad(x):
        return ak.to_numpy(ak.fill_none(ak.pad_none(x, length, clip=True), 0.0)).astype(np.float32)

    feats = [(np.log(pt) - 1.7) * 0.7, (np.log(j.part_E) - 2.0) * 0.7, (np.log(pt / j.jet_pt) + 4.7) * 0.7,
             (np.log(j.part_E / j.jet_E) + 4.7) * 0.7, (np.hypot(deta, dphi) - 0.2) * 4.0, deta, dphi]
    mask = pad(ak.ones_like(pt))[:, None]
    f = np.stack([np.clip(pad(x), -5, 5) for x in feats], 1) * mask
    pts = np.stack([pad(deta), pad(dphi)], 1) * mask
    vec = np.stack([pad(j.part_px), pad(j.part_py), pad(j.part_pz), pad(j.part_E)], 1)
    return [torch.from_numpy(t) for t in (pts, f, vec, mask)], torch.from_numpy(1 - ak.to_numpy(j.label))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--models", default="particlenet,part")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--amp", default="none", choices=["none", "fp16", "bf16"], help="autocast dtype")
    args = p.parse_args()
    dev = torch.device(args.device)
    dtype = {"none": None, "fp16": torch.float16, "bf16": torch.bfloat16}[args.amp]
    if dev.type == "cpu":
        torch.set_num_threads(1)
    clock = time.process_time if dev.type == "cpu" else time.perf_counter

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    a = ak.from_parquet(SAMPLE)
    rng = np.random.default_rng(0)

    class Cfg:  # the two fields of weaver's DataConfig the wrappers read
        input_dicts = {"pf_features": list(range(7))}
        label_value = [0, 1]
        input_names, input_shapes = (), {}

    for name in args.models.split(","):
        spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        torch.manual_seed(0)
        model, _ = mod.get_model(Cfg)
        for m in model.modules():  # skip the trimmer's 5 untrimmed warm-up steps: time the steady state
            if type(m).__name__ == "SequenceTrimmer":
                m._counter.fill_(m.warmup_steps)
        model.to(dev).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss()
        spent, n = 0.0, 0  # process CPU seconds on a CPU, wall seconds on a GPU
        for step in range(args.steps + 1):
            x, y = inputs(a, rng.choice(len(a), 256, replace=False))
            x, y = [t.to(dev) for t in x], y.to(dev)
            sync()
            c0 = clock()
            opt.zero_grad()
            with torch.autocast(dev.type, dtype=dtype, enabled=dtype is not None):
                loss = loss_fn(model(*x), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
            opt.step()
            sync()
            if step:
                spent, n = spent + clock() - c0, n + 256
        where = "process CPU, 1 thread" if dev.type == "cpu" else f"wall, {torch.cuda.get_device_name()}"
        print(f"weaver {name} {args.amp}: {n / spent:.1f} jets/s train ({where}, model step only)", flush=True)


if __name__ == "__main__":
    main()
