"""DDP through the engine: 2 gloo processes on CPU train exactly like one process on the union batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from hepnn.data.jagged import JaggedJets
from hepnn.data.loader import BatchBuilder
from hepnn.registry import create_model
from hepnn.train.engine import Engine
from hepnn.train.losses import build_loss
from hepnn.train.optim import build_optimizer
from hepnn.train.schedules import build_schedule
from hepnn.train.tasks import ClassifyTask
from tests.conftest import random_jets

FEATURES = ["deta", "dphi", "log_pt", "log_e", "log_pt_rel"]
STEPS, PER_RANK = 3, 16


def batches(world: int, rank: int | None):
    """Step k uses jets [k*B*world, (k+1)*B*world); rank r takes every world-th of them."""
    jets = JaggedJets.from_awkward(random_jets(STEPS * PER_RANK * 2, seed=5, max_particles=15), target="label")
    builder = BatchBuilder(fields=("x", "mask", "y"), particle_features=FEATURES, max_particles=15)
    out = []
    for k in range(STEPS):
        idx = np.arange(k * PER_RANK * 2, (k + 1) * PER_RANK * 2)
        out.append(builder(jets, idx if rank is None else idx[rank::world]))
    return out


def engine() -> Engine:
    torch.manual_seed(0)
    model = create_model("pfn", in_features=len(FEATURES), phi=(16, 16), f=(16,))
    opt = build_optimizer(model, "adam", lr=1e-2)
    return Engine(model, ClassifyTask(build_loss("ce", num_classes=2), "ce", 2), opt,
                  build_schedule(opt, "constant", total_steps=STEPS, steps_per_epoch=STEPS), progress=False)


def _worker(rank: int, world: int, init: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        eng = engine()
        assert isinstance(eng.net, torch.nn.parallel.DistributedDataParallel)
        for batch in batches(world, rank):
            eng.train_step(batch)
        if rank == 0:
            torch.save(eng.model.state_dict(), out)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process(tmp_path):
    single = engine()
    for batch in batches(1, None):
        single.train_step(batch)
    out = tmp_path / "ddp.pt"
    mp.spawn(_worker, args=(2, f"file://{tmp_path / 'rendezvous'}", str(out)), nprocs=2, join=True)
    ddp = torch.load(out, weights_only=True)
    for name, value in single.model.state_dict().items():
        torch.testing.assert_close(ddp[name], value, rtol=1e-5, atol=1e-6, msg=f"{name} differs")
