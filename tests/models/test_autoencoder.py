"""Autoencoder models: reconstruction shapes, the set AE's target, padding, VAE sampling."""

from __future__ import annotations

import torch

from hepnn.data.batch import Batch
from hepnn.registry import create_model


def _particles(b=3, n=5, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, c, generator=g)
    mask = torch.zeros(b, n, dtype=torch.bool)
    mask[0, :5], mask[1, :2], mask[2, :1] = True, True, True
    return Batch(x=x * mask.unsqueeze(-1), mask=mask)


def test_set_ae_target_is_k_hardest_zero_padded():
    model = create_model("ae_set", in_features=3, k=4)
    batch = _particles()
    t = model.target(batch)
    assert t.shape == (3, 4, 3)
    torch.testing.assert_close(t[0], batch.x[0, :4])  # the first (hardest) four particles
    torch.testing.assert_close(t[1, :2], batch.x[1, :2])
    assert (t[1, 2:] == 0).all() and (t[2, 1:] == 0).all()  # missing particles are zeros


def test_set_ae_target_pads_when_fewer_particles_than_k():
    model = create_model("ae_set", in_features=3, k=8)
    batch = _particles()
    t = model.target(batch)
    assert t.shape == (3, 8, 3) and (t[:, 5:] == 0).all()
    assert model(batch).shape == t.shape


def test_jet_ae_bottleneck_and_shapes():
    model = create_model("ae_jet", jet_features=6, latent=2)
    batch = Batch(jet=torch.randn(10, 6))
    assert model.encode(batch).shape == (10, 2)
    assert model(batch).shape == (10, 6)


def test_conv_ae_reconstructs_image_shape_and_rejects_bad_size():
    model = create_model("ae_image", image_size=16)
    batch = Batch(image=torch.rand(4, 1, 16, 16))
    assert model(batch).shape == (4, 1, 16, 16)
    import pytest

    with pytest.raises(ValueError, match="divisible by 4"):
        create_model("ae_image", image_size=18)


def test_vae_is_deterministic_in_eval_and_samples_from_prior():
    torch.manual_seed(0)
    model = create_model("vae_jet", jet_features=3, latent=2).eval()
    batch = Batch(jet=torch.randn(7, 3))
    torch.testing.assert_close(model(batch), model(batch))
    recon, mu, logvar = model.elbo_terms(batch)
    torch.testing.assert_close(recon, model.decoder(mu))  # z = mu when evaluating
    torch.manual_seed(1)
    a = model.sample(5)
    torch.manual_seed(1)
    b = model.sample(5)
    assert a.shape == (5, 3)
    torch.testing.assert_close(a, b)
