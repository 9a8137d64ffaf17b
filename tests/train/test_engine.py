"""The training engine: it learns, it resumes bit-identically, it stops clearly on non-finite losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hepnn.data.jagged import JaggedJets
from hepnn.data.loader import BatchBuilder, JetLoader
from hepnn.errors import HepnnError
from hepnn.registry import create_model
from hepnn.train.callbacks import Checkpointer
from hepnn.train.checkpoint import load_state
from hepnn.train.engine import Engine
from hepnn.train.losses import build_loss
from hepnn.train.optim import build_optimizer
from hepnn.train.schedules import build_schedule
from hepnn.train.tasks import ClassifyTask
from tests.conftest import random_jets

FEATURES = ["deta", "dphi", "log_pt", "log_e", "log_pt_rel", "log_e_rel", "dr"]


def separable_jets(n: int = 256, seed: int = 0) -> JaggedJets:
    """Random jets whose label decides the multiplicity scale: learnable in a few epochs."""
    arrays = random_jets(n, seed=seed, max_particles=20)
    jets = JaggedJets.from_awkward(arrays, target="label")
    jets.y = (jets.counts > np.median(jets.counts)).astype(np.int64)
    return jets


def make_engine(seed: int = 0, callbacks=(), lr: float = 3e-3, dropout: float = 0.2) -> tuple[Engine, JetLoader]:
    torch.manual_seed(seed)
    model = create_model("pfn", in_features=len(FEATURES), phi=(16, 16), f=(16,), dropout=dropout)
    jets = separable_jets()
    builder = BatchBuilder(fields=("x", "mask", "y"), particle_features=FEATURES)
    loader = JetLoader(jets, builder, batch_size=32, shuffle=True, seed=seed)
    opt = build_optimizer(model, "adam", lr=lr)
    sched = build_schedule(opt, "cosine", total_steps=4 * len(loader), steps_per_epoch=len(loader), warmup_steps=3)
    task = ClassifyTask(build_loss("ce", num_classes=2), "ce", 2)
    return Engine(model, task, opt, sched, callbacks=callbacks, progress=False), loader


def test_loss_goes_down_and_validation_metrics():
    """Validated on held-out jets (another seed); an untrained model scores them at AUC ~0.5."""
    engine, loader = make_engine()
    val = JetLoader(separable_jets(seed=1), loader.builder, batch_size=64, shuffle=False)
    history = engine.fit(loader, val, epochs=4)
    assert history[-1]["loss"] < history[0]["loss"]
    assert {"val_loss", "val_acc", "val_auc", "jets_per_s", "data_wait"} <= set(history[-1])
    assert history[-1]["val_auc"] > 0.8


def test_resume_equals_uninterrupted(tmp_path):
    full, loader = make_engine()
    full.fit(loader, None, epochs=4)

    first, loader1 = make_engine(callbacks=[Checkpointer(tmp_path)])
    first.fit(loader1, None, epochs=2)  # "interrupted" after two epochs
    second, loader2 = make_engine(seed=0, callbacks=[Checkpointer(tmp_path)])
    torch.manual_seed(999)  # a fresh process would have another RNG state: the checkpoint must restore it
    second.load_state_dict(load_state(tmp_path / "last.pt"))
    second.fit(loader2, None, epochs=4)

    for (name, a), b in zip(full.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), f"{name} differs after resume"
    assert [h["loss"] for h in full.state["history"]] == [h["loss"] for h in second.state["history"]]
    # the resumed engine counts the interrupted epochs' seconds too (run.json reports the whole cost)
    assert second.state["spent"]["wall"] >= sum(h["time_s"] for h in second.state["history"])  # all 4 epochs
    assert load_state(tmp_path / "last.pt")["spent"] == second.state["spent"]


def test_non_finite_loss_names_step_and_causes():
    engine, loader = make_engine()
    batch = next(iter(loader))
    batch.x[0, 0, 0] = float("nan")
    with pytest.raises(HepnnError, match=r"non-finite loss .* step 0 .*x: 1 non-finite.*learning rate"):
        engine.train_step(batch)


def test_time_limit_stops_after_the_step_that_crosses_it():
    engine, loader = make_engine()
    ticks = iter(range(10**6))
    engine.time_limit, engine.clock = 5.0, lambda: float(next(ticks))  # every reading one second later
    history = engine.fit(loader, None, epochs=50)
    assert len(history) == 1 and engine.should_stop
    assert 0 < engine.state["step"] < len(loader)  # stopped inside the first epoch
    assert engine.state["train_time"] >= 5.0


def test_time_limit_from_config_uses_process_clock(tmp_path):
    from hepnn.config import load_config

    cfg = load_config("configs/top_tagging/pfn.yaml", ["train.time_limit=0.5", "train.time_clock=process"])
    assert cfg.train.time_limit == 0.5 and cfg.train.time_clock == "process"
    with pytest.raises(Exception, match="time_clock"):
        load_config("configs/top_tagging/pfn.yaml", ["train.time_clock=gpu"])
