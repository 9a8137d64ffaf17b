"""Unsupervised tasks: losses against hand-computed values, the adversarial task's two optimizers
and resumable state, and learning tests on the committed sample (slow)."""

from __future__ import annotations

import pytest
import torch

from hepnn.data.batch import Batch
from hepnn.registry import create_model
from hepnn.train.tasks_unsupervised import (
    AdversarialTask, DenoiseTask, ELBOTask, ReconstructTask, gradient_penalty, make_unsupervised_task,
)


def test_reconstruct_loss_and_score_are_mean_squared_error():
    torch.manual_seed(0)
    model = create_model("ae_jet", jet_features=3).eval()
    batch = Batch(jet=torch.randn(4, 3), y=torch.tensor([0, 1, 0, 1]))
    task = ReconstructTask()
    loss, _ = task.step(model, batch)
    by_hand = ((model(batch) - batch.jet) ** 2).mean(dim=1)
    torch.testing.assert_close(loss, by_hand.mean())
    out = task.outputs(model, batch)
    torch.testing.assert_close(out["score"], by_hand)
    assert out["y"].tolist() == [0, 1, 0, 1]


def test_elbo_kl_matches_torch_distributions():
    from torch.distributions import Normal, kl_divergence

    torch.manual_seed(0)
    model = create_model("vae_jet", jet_features=3, latent=2).eval()
    batch = Batch(jet=torch.randn(6, 3))
    rec, kl = ELBOTask(beta=1.0).terms(model, batch)
    mu, logvar = model.encode_stats(batch)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(kl, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(rec, 0.5 * ((model(batch) - batch.jet) ** 2).sum(1))


class _Recorder(torch.nn.Module):
    field = "x"

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.seen = None

    def target(self, batch):
        return batch.x

    def forward(self, batch):
        self.seen = batch.x.detach().clone()
        return batch.x * self.w


def test_denoise_adds_noise_to_real_particles_only():
    x = torch.ones(2, 3, 1)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    batch = Batch(x=x * mask.unsqueeze(-1), mask=mask)
    model = _Recorder()
    loss, _ = DenoiseTask(noise=0.5).step(model, batch)
    assert (model.seen[~mask] == 0).all() and (model.seen[mask] != 1).all()
    assert loss > 0  # the clean target differs from the noisy reconstruction


def test_gradient_penalty_of_a_linear_critic_by_hand():
    critic = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 4.0]]))  # |grad| = 5 everywhere
    gp = gradient_penalty(critic, torch.randn(8, 2), torch.randn(8, 2))
    assert float(gp.detach()) == pytest.approx((5.0 - 1.0) ** 2)


def _gan_step(model, task, opt, batch):
    loss, logs = task.step(model, batch)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    return loss, logs


def test_adversarial_step_updates_critic_itself_and_leaves_generator_to_engine():
    torch.manual_seed(0)
    model = create_model("wgan_jet", jet_features=2, latent=2)
    task = AdversarialTask(lr=1e-2, critic_steps=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)  # the engine's optimizer sees every parameter
    weights = [p for n, p in model.critic.named_parameters() if n.endswith("weight")]  # (the last bias
    before = [p.detach().clone() for p in weights]  # cancels in D(x) - D(G(z)) and never moves)
    _gan_step(model, task, opt, Batch(jet=torch.randn(16, 2)))
    assert all(not torch.equal(a, b) for a, b in zip(before, weights))
    assert all(p.grad is None for p in model.critic.parameters())  # engine's step skips the critic
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.generator.parameters())
    assert all(p.requires_grad for p in model.critic.parameters())  # unfrozen again


def test_adversarial_state_dict_resumes_the_critic_optimizer():
    torch.manual_seed(0)
    model = create_model("wgan_jet", jet_features=2, latent=2)
    task = AdversarialTask(critic_steps=1)
    opt = torch.optim.Adam(model.parameters())
    _gan_step(model, task, opt, Batch(jet=torch.randn(8, 2)))
    state = task.state_dict()
    resumed = AdversarialTask(critic_steps=1)
    resumed.load_state_dict(state)  # before the critic is known: applied on the first step
    resumed._critic_optimizer(model.critic)
    a, b = task.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert a.keys() == b.keys() and a[0]["step"] == b[0]["step"] == 1
    torch.testing.assert_close(a[0]["exp_avg"], b[0]["exp_avg"])


def test_make_unsupervised_task_reads_settings():
    from hepnn.config import UnsupervisedConfig

    task = make_unsupervised_task("adversarial", UnsupervisedConfig(critic_steps=3, gp_lambda=2.0))
    assert (task.critic_steps, task.gp_lambda) == (3, 2.0)
    assert make_unsupervised_task("denoise", UnsupervisedConfig(noise=0.3)).noise == 0.3
    with pytest.raises(ValueError):
        make_unsupervised_task("classify")


@pytest.mark.slow
def test_autoencoder_trained_on_qcd_flags_tops(tmp_path):
    """configs/anomaly/ae_jet.yaml as committed (40 epochs), QCD only: tops as the anomaly reach AUC >= 0.75
    (measured 0.780 on the 1000 test jets of the committed sample; 0.5 = no separation)."""
    import json
    from pathlib import Path

    from hepnn.config import load_config
    from hepnn.train.fit import fit

    root = Path(__file__).resolve().parents[2]
    cfg = load_config(root / "configs/anomaly/ae_jet.yaml", ["evaluate.plots=false"])
    run = fit(cfg, tmp_path / "ae", progress=False)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["auc"] >= 0.75, metrics
    assert metrics["n_jets"] == 1000  # the test split keeps both classes


@pytest.mark.slow
def test_gan_trains_and_resumes_through_the_engine(tmp_path):
    """Two epochs of WGAN-GP through the one engine; an interrupted run resumed from its
    checkpoint (critic optimizer included) ends with the same weights as an uninterrupted one."""
    from pathlib import Path

    from hepnn.config import load_config
    from hepnn.train.checkpoint import load_state
    from hepnn.train.fit import fit, resume

    root = Path(__file__).resolve().parents[2]
    over = ["data.max_jets=600", "evaluate.plots=false", "train.epochs=2"]
    full = fit(load_config(root / "configs/generative/wgan_jet.yaml", over), tmp_path / "full", progress=False)
    state = load_state(full / "checkpoints" / "last.pt")
    assert state["task"]["critic_optimizer"]["state"]  # the critic's Adam moments are saved
    short = fit(load_config(root / "configs/generative/wgan_jet.yaml", [*over[:-1], "train.epochs=1"]),
                tmp_path / "part", progress=False)
    cfg_text = (short / "config.yaml").read_text().replace("epochs: 1", "epochs: 2")
    (short / "config.yaml").write_text(cfg_text)
    resume(short, progress=False)
    a, b = load_state(full / "checkpoints" / "last.pt"), load_state(short / "checkpoints" / "last.pt")
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k])
