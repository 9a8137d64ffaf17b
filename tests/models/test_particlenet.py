"""ParticleNet: the paper's sizes, batch statistics blind to padding, (Δη, Δφ) graph with φ wrap; learning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hepnn.data.batch import Batch
from hepnn.data.features import particle_features
from hepnn.data.jagged import JaggedJets
from hepnn.registry import create_model
from tests.conftest import assert_beats_mass, random_jets, train_metrics

FEATURES = ["deta", "dphi", "log_pt", "log_e", "log_pt_rel", "log_e_rel", "dr"]


def make_batch(p4: torch.Tensor, mask: torch.Tensor) -> Batch:
    return Batch(x=particle_features(p4, mask, FEATURES), p4=p4, mask=mask)


def random_p4(n_jets=6, seed=0, extra_pad=0):
    jets = JaggedJets.from_awkward(random_jets(n_jets, seed=seed, max_particles=20), target="label")
    padded = jets.pad(np.arange(n_jets))
    p4, mask = torch.from_numpy(padded.p4).double(), torch.from_numpy(padded.mask)
    if extra_pad:
        p4 = torch.cat([p4, torch.zeros(n_jets, extra_pad, 4, dtype=p4.dtype)], dim=1)
        mask = torch.cat([mask, torch.zeros(n_jets, extra_pad, dtype=torch.bool)], dim=1)
    return p4, mask


def build(name, **kw):
    torch.manual_seed(0)
    return create_model(name, in_features=len(FEATURES), **kw).double()


@pytest.mark.parametrize("name, thousands", [("particlenet", 366), ("particlenet_lite", 26)])
def test_parameter_counts_match_the_paper(name, thousands):
    """Table 2 of arXiv:1902.08570: ParticleNet 366k, ParticleNet-Lite 26k parameters."""
    n = sum(p.numel() for p in build(name).parameters())
    assert round(n / 1000) == thousands


def test_fusion_width_rule():
    """Fusion width = floor(sum of block widths / 128) * 128, clipped to [128, 1024]."""
    assert build("particlenet", fusion=True).fusion.out_features == 384  # 448 -> 384
    assert build("particlenet_lite", fusion=True).fusion.out_features == 128  # 96 -> 0 -> 128


@pytest.mark.parametrize("fusion", [False, True])
def test_training_mode_is_padding_invariant(fusion):
    """Batch statistics over real particles only: extra padding changes neither logits nor running stats."""
    a, b = build("particlenet_lite", fusion=fusion).train(), build("particlenet_lite", fusion=fusion).train()
    a.head[2].p = b.head[2].p = 0.0  # dropout off, batch norm in training mode
    out_a = a(make_batch(*random_p4()))
    out_b = b(make_batch(*random_p4(extra_pad=9)))
    torch.testing.assert_close(out_a, out_b, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(a.blocks[1].norms[2].running_var, b.blocks[1].norms[2].running_var)


def test_graph_uses_wrapped_delta_phi():
    """A jet rotated in φ so that it straddles φ = ±π gives the same output (Δφ is wrapped)."""
    model = build("particlenet_lite").eval()
    p4, mask = random_p4(seed=3)
    phi0 = torch.atan2(p4[..., 2].sum(1), p4[..., 1].sum(1))  # (B,) jet axis
    angle = (math.pi - phi0).unsqueeze(1)  # move every jet axis onto φ = π
    c, s = torch.cos(angle), torch.sin(angle)
    rot = p4.clone()
    rot[..., 1], rot[..., 2] = c * p4[..., 1] - s * p4[..., 2], s * p4[..., 1] + c * p4[..., 2]
    phis = torch.atan2(rot[..., 2], rot[..., 1])[mask]
    assert (phis > 0).any() and (phis < 0).any()  # the jets really straddle the ±π boundary
    with torch.no_grad():
        torch.testing.assert_close(model(make_batch(rot, mask)), model(make_batch(p4, mask)), rtol=1e-8, atol=1e-8)


@pytest.mark.slow
def test_particlenet_lite_learns_top_tagging(sample_path, tmp_path):
    """Measured AUC 0.942 against the jet mass's 0.922 (2 epochs, all 5000 jets, N ≤ 48, seed 0)."""
    metrics = train_metrics("configs/top_tagging/particlenet_lite.yaml", ["train.epochs=2", "data.max_particles=48"], tmp_path / "run")
    assert_beats_mass(metrics)
