"""Pre-training tasks through the one engine: plumbing, losses that fall on the committed real jets
in a few dozen steps, and GPT-generated jets judged by the generative metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hepnn.config import load_config
from hepnn.data.batch import Batch
from hepnn.errors import ConfigError
from hepnn.registry import create_model
from hepnn.train.pretrain import PRETRAIN_KINDS, PretrainTask
from hepnn.train.tasks_unsupervised import UNSUPERVISED_KINDS

FEATURES = ["deta", "dphi", "log_pt", "log_e", "log_pt_rel", "log_e_rel", "dr"]
VQ = dict(codebook_size=64, hidden=(32, 32))
GPT = dict(codebook_size=64, tokenizer_hidden=(32, 32), dim=32, num_heads=2, num_layers=2, max_particles=32)


@pytest.fixture(scope="module")
def real(sample_path) -> tuple[list[Batch], list[Batch], object]:
    """400 real jets of the committed sample (N ≤ 32, standardized features): 10 training batches of
    32 jets, 2 validation batches of 40, and the validation jets themselves."""
    from hepnn.data.io import read_jets
    from hepnn.data.jagged import JaggedJets
    from hepnn.data.loader import BatchBuilder

    jets = JaggedJets.from_awkward(read_jets(str(sample_path), max_jets=400), target="label")
    build = BatchBuilder(fields=("x", "mask", "p4", "y"), particle_features=FEATURES, max_particles=32)
    b = build(jets, np.arange(400))
    mean, std = b.x[b.mask].mean(0), b.x[b.mask].std(0)
    b = Batch(x=(b.x - mean) / std * b.mask.unsqueeze(-1), mask=b.mask, p4=b.p4, y=b.y)
    train = [b[i: i + 32] for i in range(0, 320, 32)]
    val = [b[i: i + 40] for i in range(320, 400, 40)]
    return train, val, jets.take(np.arange(320, 400))


def _fit(model, kind: str, train, val, epochs: int = 4, lr: float = 2e-3) -> tuple[float, list[dict]]:
    """The engine's validation loss before training, and its history after ``epochs`` epochs."""
    from hepnn.train.engine import Engine
    from hepnn.train.optim import build_optimizer
    from hepnn.train.schedules import build_schedule

    opt = build_optimizer(model, "adam", lr=lr)
    sched = build_schedule(opt, "constant", total_steps=epochs * len(train), steps_per_epoch=len(train))
    engine = Engine(model, PretrainTask(kind), opt, sched, progress=False)
    before = engine.evaluate(val)["loss"]
    return before, engine.fit(train, val, epochs)


def test_kinds_are_unsupervised_tasks_and_configurable():
    assert set(PRETRAIN_KINDS) <= set(UNSUPERVISED_KINDS)
    from hepnn.runs import make_task

    for kind in PRETRAIN_KINDS:
        cfg = load_config(None, [f"train.task={kind}"])
        assert cfg.train.task == kind
        task = make_task(cfg, kind, 2, None)
        assert isinstance(task, PretrainTask) and task.kind == kind


def test_a_model_of_another_kind_is_refused_with_its_name():
    task = PretrainTask("masked_particles")
    with pytest.raises(ConfigError, match="masked_particles trains mpm_part_lite.*not ParticleTransformer"):
        task.step(create_model("part_lite"), Batch())


def test_masked_particle_loss_falls_on_real_jets(real):
    train, val, _ = real
    torch.manual_seed(0)
    model = create_model("mpm_part_lite", in_features=len(FEATURES))
    before, history = _fit(model, "masked_particles", train, val, epochs=3)
    assert history[-1]["val_loss"] < 0.8 * before, (before, [h["val_loss"] for h in history])


def test_vqvae_loss_falls_and_uses_the_codebook(real):
    train, val, _ = real
    torch.manual_seed(0)
    model = create_model("vqvae_particles", **VQ)
    before, history = _fit(model, "vqvae", train, val, epochs=8)
    assert history[-1]["val_loss"] < 0.5 * before, (before, [h["val_loss"] for h in history])
    assert history[-1]["recon"] < history[0]["recon"]
    used = torch.cat([model.tokenizer.tokenize(b.p4, b.mask)[b.mask] for b in val]).unique().numel()
    assert used >= 40, used  # of 64 (dead codes split off used ones); 10 to 20 without the splitting


@pytest.fixture(scope="module")
def trained_gpt(real):
    """A tokenizer trained for 80 steps, then a GPT on its tokens for 40 steps: (GPT, before, history)."""
    train, val, _ = real
    torch.manual_seed(0)
    vq = create_model("vqvae_particles", **VQ)
    _fit(vq, "vqvae", train, val, epochs=8)
    gpt = create_model("gpt_particles", **GPT)
    gpt.load_state_dict(vq.state_dict(), strict=False)  # the tokenizer, what train.init_from does
    before, history = _fit(gpt, "next_particle", train, val)
    return gpt, before, history


def test_next_particle_loss_falls_on_real_jets(trained_gpt):
    _, before, history = trained_gpt
    assert np.log(64) - 0.5 < before  # an untrained GPT is near-uniform over the codebook
    assert history[-1]["val_loss"] < before - 1.0, (before, [h["val_loss"] for h in history])
    assert history[-1]["accuracy"] > history[0]["accuracy"]


def test_generated_jets_pass_through_the_generative_metrics(trained_gpt, real):
    """The run's evaluation path: sample, write the native layout, compare with the real jets'
    hardest constituents (W1 per feature, FPD, classifier two-sample test), all finite."""
    from hepnn.evaluate.unsupervised import generative_metrics

    gpt, _, _ = trained_gpt
    _, _, test_jets = real
    cfg = load_config(None, ["model.name=gpt_particles", "train.task=next_particle"])
    metrics, overlays = generative_metrics(cfg, gpt, {}, test_jets, seed=0)
    assert metrics["n_generated"] == 80
    assert {"w1_mass", "w1_pt", "w1_n_particles", "w1_part_log_pt", "fpd", "c2st_auc"} <= set(metrics)
    assert all(np.isfinite(v) for v in metrics.values())
    real_n, gen_n = overlays["n_particles"]
    assert gen_n.min() >= 1 and gen_n.max() <= GPT["max_particles"]
