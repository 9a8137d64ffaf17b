"""PointNet: masked max pooling by hand, the optional T-Net keeps the invariances; learning."""

from __future__ import annotations


import pytest
import torch

from hepnn.data.batch import Batch
from hepnn.registry import create_model
from tests.conftest import assert_beats_mass, train_metrics


def make_batch(seed=0, extra_pad=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.arange(8)[None] < torch.tensor([[8], [5], [1]])  # (3, 8)
    x = torch.randn(3, 8, 4, generator=g, dtype=torch.float64) * mask.unsqueeze(-1)
    pad = torch.nn.functional.pad
    return Batch(x=pad(x, (0, 0, 0, extra_pad)), mask=pad(mask, (0, extra_pad)))


def build(**kw):
    torch.manual_seed(0)
    return create_model("pointnet", in_features=4, shared=(6, 5), head=(3,), **kw).double().eval()


def test_max_over_real_particles_by_hand():
    model, batch = build(), make_batch()
    with torch.no_grad():
        h = model.shared(batch.x)  # (B, N, L), ReLU output
        pooled = torch.stack([h[b, batch.mask[b]].max(0).values for b in range(3)])
        torch.testing.assert_close(model(batch), model.head(pooled))


def test_input_transform_keeps_invariances_and_trains():
    model = build(input_transform=True)
    batch = make_batch()
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = model(batch)
        torch.testing.assert_close(model(Batch(x=batch.x[:, perm], mask=batch.mask[:, perm])), out)
        torch.testing.assert_close(model(make_batch(extra_pad=5)), out)
        # the transform starts near the identity
        torch.testing.assert_close(model.tnet(batch.x, batch.mask), torch.eye(4, dtype=torch.float64).expand(3, 4, 4),
                                   rtol=0, atol=0.05)
    model.train()(batch).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.tnet.parameters())


@pytest.mark.slow
def test_pointnet_learns_top_tagging(sample_path, tmp_path):
    """Measured AUC 0.934 against the jet mass's 0.922 (3 epochs, 5000 jets, seed 0)."""
    metrics = train_metrics("configs/top_tagging/pointnet.yaml", ["train.epochs=3"], tmp_path / "run")
    assert_beats_mass(metrics)
