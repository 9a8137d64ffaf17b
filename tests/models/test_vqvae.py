"""VQ-VAE tokenizer: coordinates round trip, codebook round trip, straight-through gradient, loss terms."""

from __future__ import annotations

import torch

from hepnn.data.batch import Batch
from hepnn.models.vqvae import ParticleTokenizer, coordinates_to_p4, particle_coordinates
from hepnn.registry import create_model


def _tokenizer(seed: int = 0) -> ParticleTokenizer:
    torch.manual_seed(seed)
    return ParticleTokenizer(codebook_size=16, code_dim=4, hidden=(8,)).double()


def _jets() -> tuple[torch.Tensor, torch.Tensor]:
    pt = torch.tensor([[300.0, 100.0, 20.0, 0.0], [50.0, 10.0, 0.0, 0.0]], dtype=torch.float64)
    eta = torch.tensor([[0.1, -0.2, 0.3, 0.0], [1.0, 1.2, 0.0, 0.0]], dtype=torch.float64)
    phi = torch.tensor([[0.05, 0.2, -0.3, 0.0], [3.1, -3.1, 0.0, 0.0]], dtype=torch.float64)  # jet 2 straddles ±π
    mask = pt > 0
    p4 = torch.stack([pt * torch.cosh(eta), pt * torch.cos(phi), pt * torch.sin(phi), pt * torch.sinh(eta)], -1)
    return p4 * mask.unsqueeze(-1), mask


def test_coordinates_round_trip_keeps_pt_and_relative_angles():
    p4, mask = _jets()
    c = particle_coordinates(p4, mask)
    assert (c[~mask] == 0).all()
    back = coordinates_to_p4(c)
    pt = torch.hypot(p4[..., 1], p4[..., 2])
    torch.testing.assert_close(torch.hypot(back[..., 1], back[..., 2])[mask], pt[mask])
    # the angle between the two particles of jet 2 is 0.083 across the ±π seam, not 2π − 0.083
    dphi = torch.atan2(back[1, 1, 2], back[1, 1, 1]) - torch.atan2(back[1, 0, 2], back[1, 0, 1])
    assert abs(float(dphi) - (2 * torch.pi - 6.2)) < 1e-9
    torch.testing.assert_close(c[0, 1, 1] - c[0, 0, 1], torch.tensor(-0.3 / 0.4, dtype=torch.float64))


def test_codebook_round_trip():
    """Every code is its own nearest code, and a token decodes to the decoder of its code."""
    tok = _tokenizer()
    ids, e = tok.quantize(tok.codes())
    assert ids.tolist() == list(range(16))
    torch.testing.assert_close(tok.decode(ids), tok.decoder(e))
    p4, mask = _jets()
    t = tok.tokenize(p4, mask)
    assert (t[~mask] == -1).all() and (t[mask] >= 0).all() and (t[mask] < 16).all()


def test_straight_through_gradient_reaches_the_encoder_and_not_the_codebook():
    """d loss / d z_e through z_q = z_e + sg(e − z_e) equals d loss / d z_q at z_q = e; the decoder's
    loss gives the codebook no gradient (it learns from the codebook term only)."""
    tok = _tokenizer()
    coords = torch.randn(3, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    z = tok.encode(coords)
    ids, e = tok.quantize(z)
    zq = z + (e - z).detach()
    torch.testing.assert_close(zq, e)
    (g_z,) = torch.autograd.grad(tok.decoder(zq).pow(2).sum(), z, retain_graph=True)
    at = e.detach().requires_grad_(True)
    (g_e,) = torch.autograd.grad(tok.decoder(at).pow(2).sum(), at)
    torch.testing.assert_close(g_z, g_e)
    assert g_z.abs().sum() > 0
    (g_book,) = torch.autograd.grad(tok.decoder(zq).pow(2).sum(), tok.codebook, allow_unused=True)
    assert g_book is None or not g_book.any()


def test_vqvae_columns_are_the_loss_terms():
    torch.manual_seed(0)
    model = create_model("vqvae_particles", codebook_size=16, hidden=(8,)).double()
    p4, mask = _jets()
    loss, recon, commit, used = model(Batch(p4=p4, mask=mask)).unbind(1)
    # codebook and commitment terms have the same value (they differ in what gets the gradient)
    torch.testing.assert_close(loss, recon + (1 + model.beta) * commit)
    ids = model.tokenizer.tokenize(p4, mask)
    assert (used == ids[mask].unique().numel()).all()


def test_dead_codes_are_split_off_the_most_used_ones():
    torch.manual_seed(0)
    model = create_model("vqvae_particles", codebook_size=8, hidden=(8,)).double()
    usage = torch.tensor([0.5, 0.3, 0.15, 0.04, 0.005, 0.005, 0.0, 0.0], dtype=torch.float64)
    model.usage.copy_(usage)
    book = model.tokenizer.codebook.detach().clone()
    assert model.split_dead_codes() == 4  # below 0.1 / 8: codes 4..7
    new = model.tokenizer.codebook.detach()
    assert torch.equal(new[:4], book[:4])
    src = torch.tensor([0, 1, 2, 3])  # the most used first
    torch.testing.assert_close(new[4:], book[src], atol=0.1 * book[src].norm(dim=1).max(), rtol=0)
    assert not torch.equal(new[4:], book[src])
    torch.testing.assert_close(model.usage.sum(), usage[:4].sum())  # the shares are halved, not made up
    torch.testing.assert_close(model.usage[:4], model.usage[4:])
    assert model.split_dead_codes() == 0
    torch.manual_seed(0)
    again = create_model("vqvae_particles", codebook_size=8, hidden=(8,)).double()
    again.usage.copy_(usage)
    again.split_dead_codes()
    assert torch.equal(again.tokenizer.codebook, model.tokenizer.codebook)  # seeded by the step count


def test_training_steps_update_the_usage_average_and_evaluation_does_not():
    torch.manual_seed(0)
    model = create_model("vqvae_particles", codebook_size=8, hidden=(8,)).double()
    p4, mask = _jets()
    batch = Batch(p4=p4, mask=mask)
    model.eval()
    model(batch)
    assert int(model.steps) == 0 and torch.equal(model.usage, torch.full((8,), 1 / 8, dtype=torch.float64))
    model.train()
    model(batch)
    ids = model.tokenizer.tokenize(p4, mask)[mask]
    share = torch.bincount(ids, minlength=8).double() / ids.numel()
    torch.testing.assert_close(model.usage, 0.95 / 8 + 0.05 * share)
    assert int(model.steps) == 1
