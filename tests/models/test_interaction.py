"""JEDI-net: the interaction network against a per-pair loop; learning on real jets."""

from __future__ import annotations


import pytest
import torch

from hepnn.data.batch import Batch
from hepnn.registry import create_model
from tests.conftest import assert_beats_mass, train_metrics


def test_matches_pairwise_loop_reference():
    """E_i = Σ_{j≠i} f_R([x_i, x_j]), o_i = f_O([x_i, E_i]), y = φ_C(Σ_i o_i), one pair at a time."""
    torch.manual_seed(0)
    model = create_model("jedinet", in_features=3, f_r=(6, 5, 4), f_o=(7, 3), phi_c=(5,)).double().eval()
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]], dtype=torch.bool)
    x = x * mask.unsqueeze(-1)
    w = torch.cat([model.receiver.weight, model.sender.weight], dim=1)  # f_R's first layer on [x_i, x_j]

    def f_r(pair):
        return model.f_r(torch.relu(pair @ w.T + model.receiver.bias))

    expected = []
    for b in range(2):
        real = [i for i in range(5) if mask[b, i]]
        total = 0
        for i in real:
            e_i = sum(f_r(torch.cat([x[b, i], x[b, j]])) for j in real if j != i)
            total = total + model.f_o(torch.cat([x[b, i], e_i]))
        expected.append(model.phi_c(total))
    with torch.no_grad():
        torch.testing.assert_close(model(Batch(x=x, mask=mask)), torch.stack(expected))


def test_single_particle_jet_has_no_interactions():
    """With one particle there are no pairs: the effect E is 0, so y = φ_C(f_O([x_0, 0]))."""
    torch.manual_seed(1)
    model = create_model("jedinet", in_features=3).double().eval()
    x = torch.randn(1, 1, 3, dtype=torch.float64)
    with torch.no_grad():
        out = model(Batch(x=x, mask=torch.ones(1, 1, dtype=torch.bool)))
        expected = model.phi_c(model.f_o(torch.cat([x[0, 0], torch.zeros(16, dtype=x.dtype)])))
    torch.testing.assert_close(out[0], expected)


@pytest.mark.slow
def test_jedinet_learns_top_tagging(sample_path, tmp_path):
    """Measured AUC 0.935 against the jet mass's 0.922 (6 epochs of batch 64, N ≤ 32, seed 0)."""
    metrics = train_metrics("configs/top_tagging/jedinet.yaml", ["train.epochs=6", "data.max_particles=32",
                                                                  "data.batch_size=64"], tmp_path / "run")
    assert_beats_mass(metrics)
