"""Generative models: DDPM schedule and samplers, the particle representation, GAN and flow."""

from __future__ import annotations

import math

import numpy as np
import torch

from hepnn.data.batch import Batch
from hepnn.registry import create_model


def test_ddpm_schedule_matches_closed_form():
    model = create_model("ddpm_jet", jet_features=2, timesteps=10, beta_start=0.1, beta_end=0.1)
    # constant beta: abar_t = (1 - beta)^(t + 1)
    expected = torch.tensor([0.9 ** (t + 1) for t in range(10)], dtype=torch.float64)
    torch.testing.assert_close(model.abar, expected)


def test_ddpm_eval_loss_is_fixed_and_train_loss_random():
    torch.manual_seed(0)
    model = create_model("ddpm_jet", jet_features=3, timesteps=20)
    batch = Batch(jet=torch.randn(16, 3))
    model.eval()
    torch.testing.assert_close(model(batch), model(batch))
    model.train()
    assert not torch.equal(model(batch), model(batch))


class _OracleDenoiser(torch.nn.Module):
    """The exact noise predictor for data concentrated at a point c: eps = (x_t - sqrt(ab) c) / sqrt(1 - ab)."""

    def __init__(self, abar, c):
        super().__init__()
        self.abar, self.c = abar, c

    def forward(self, x, t):
        ab = self.abar[t].to(x.dtype).unsqueeze(1)
        return (x - ab.sqrt() * self.c) / (1 - ab).sqrt()


def test_ddpm_samplers_recover_a_point_mass_with_the_exact_denoiser():
    """Both samplers, given the true score of a delta distribution at c, must land on c."""
    torch.manual_seed(0)
    model = create_model("ddpm_jet", jet_features=2, timesteps=50).double()
    c = torch.tensor([1.5, -0.5], dtype=torch.float64)
    model.denoiser = _OracleDenoiser(model.abar, c)
    model.register_parameter("dummy", torch.nn.Parameter(torch.zeros(1, dtype=torch.float64)))
    for steps in (50, 10):  # ancestral DDPM and DDIM
        x = model.sample(200, steps=steps)
        assert torch.allclose(x.mean(0), c, atol=0.05), (steps, x.mean(0))
        assert x.std(0).max() < 0.1


def test_particle_representation_round_trips_four_vectors():
    model = create_model("ddpm_particles", k=4)
    pt = torch.tensor([[300.0, 100.0, 20.0]], dtype=torch.float64)
    eta = torch.tensor([[0.1, -0.2, 0.3]], dtype=torch.float64)
    phi = torch.tensor([[0.05, 0.2, -0.3]], dtype=torch.float64)
    p4 = torch.stack([pt * torch.cosh(eta), pt * torch.cos(phi), pt * torch.sin(phi), pt * torch.sinh(eta)], -1)
    batch = Batch(p4=p4, mask=torch.ones(1, 3, dtype=torch.bool))
    slots = model.data(batch).view(1, 4, 4)
    assert slots[0, 3, 3] == -1 and (slots[0, :3, 3] == 1).all()  # the 4th slot is empty
    back, mask = model.to_p4(slots)
    assert mask.tolist() == [[True, True, True, False]]
    # same pT and the same relative angles; the jet axis moves to eta = phi = 0
    torch.testing.assert_close(torch.hypot(back[0, :3, 1], back[0, :3, 2]), pt[0], rtol=1e-6, atol=1e-6)
    m_in = (p4.sum(1)[0, 0] ** 2 - (p4.sum(1)[0, 1:] ** 2).sum()).sqrt()
    m_out = (back.sum(1)[0, 0] ** 2 - (back.sum(1)[0, 1:] ** 2).sum()).sqrt()
    assert abs(float(m_out) - float(m_in)) / float(m_in) < 0.02  # small-angle shift of the axis


def test_particle_to_p4_keeps_at_least_one_particle():
    model = create_model("ddpm_particles", k=3)
    slots = torch.zeros(2, 3, 4)
    slots[..., 3] = -1.0
    slots[0, 1, 3] = -0.5  # the likeliest slot of jet 0
    _, mask = model.to_p4(slots)
    assert mask.sum(1).tolist() == [1, 1]


def test_wgan_forward_pairs_real_and_generated_critic_values():
    torch.manual_seed(0)
    model = create_model("wgan_jet", jet_features=2, latent=3).eval()
    batch = Batch(jet=torch.randn(5, 2))
    out = model(batch)
    assert out.shape == (5, 2)
    torch.testing.assert_close(out[:, 0], model.critic(batch.jet).squeeze(-1))
    torch.testing.assert_close(out, model(batch))  # fixed noise when evaluating


def test_flow_density_integrates_to_one():
    """exp(-forward) is a density: its integral over a wide 1-D grid is 1 (an untrained flow too)."""
    torch.manual_seed(0)
    model = create_model("flow_jet", jet_features=1, transforms=2).double().eval()
    grid = torch.linspace(-12, 12, 4001, dtype=torch.float64).unsqueeze(1)
    with torch.no_grad():
        p = torch.exp(-model(Batch(jet=grid)))
    integral = float(torch.trapezoid(p, grid[:, 0]))
    assert math.isclose(integral, 1.0, abs_tol=1e-3), integral
    assert np.isfinite(model.sample(10).numpy()).all()
