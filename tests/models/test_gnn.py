"""GCN and GAT: propagation matrix and attention against hand/loop references; learning on real jets."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from hepnn.models.gnn import GATLayer, normalized_adjacency
from tests.conftest import assert_beats_mass, train_metrics

K = 3


def random_graph(b=2, n=8, counts=(8, 3), seed=0):
    """Neighbour lists in the ``knn`` convention: k nearest real particles, self fill when missing."""
    g = np.random.default_rng(seed)
    idx = np.tile(np.arange(n)[None, :, None], (b, 1, K))
    for j, c in enumerate(counts):
        pts = g.normal(size=(c, 2))
        d = ((pts[:, None] - pts[None]) ** 2).sum(-1) + np.diag(np.full(c, np.inf))
        nn_ = np.argsort(d, axis=1)[:, : min(K, c - 1)]
        idx[j, :c, : nn_.shape[1]] = nn_
    mask = torch.arange(n)[None] < torch.tensor(counts)[:, None]
    return torch.from_numpy(idx), mask


def test_gcn_propagation_matrix_by_hand():
    # path graph 0-1-2 from directed kNN lists (k=1): 0->1, 1->0, 2->1; particle 3 is padding
    idx = torch.tensor([[[1], [0], [1], [3]]])
    mask = torch.tensor([[True, True, True, False]])
    a_hat = normalized_adjacency(idx, mask, torch.float64)[0]
    # A + I = [[1,1,0],[1,1,1],[0,1,1]], degrees (2, 3, 2)
    s2, s6 = 1 / 2, 1 / np.sqrt(6)
    expected = torch.tensor([[s2, s6, 0, 0], [s6, 1 / 3, s6, 0], [0, s6, s2, 0], [0, 0, 0, 0]], dtype=torch.float64)
    torch.testing.assert_close(a_hat, expected)


def test_gat_attention_sums_to_one_over_real_neighbours():
    idx, mask = random_graph()
    torch.manual_seed(0)
    layer = GATLayer(in_features=5, out_features=4, heads=3).double()
    x = torch.randn(2, 8, 5, dtype=torch.float64) * mask.unsqueeze(-1)
    alpha, nbr, _ = layer.attention(x, idx, mask)  # (B, N, 1+k, H)
    sums = alpha.sum(dim=2)  # (B, N, H)
    torch.testing.assert_close(sums[mask], torch.ones_like(sums[mask]))
    assert (sums[~mask] == 0).all()
    # jet 1 has 3 particles: only 2 real neighbours each, the third kNN slot is a self fill
    assert (alpha[1, :3, 3] == 0).all() and (alpha[1, :3, :3] > 0).all()


def test_gat_layer_matches_loop_reference():
    """h_i' = ‖_h Σ_j α_ij W_h x_j + b over j ∈ kNN(i) ∪ {i}, α = softmax LeakyReLU(a_srcᵀ W x_i + a_dstᵀ W x_j)."""
    idx, mask = random_graph()
    torch.manual_seed(1)
    layer = GATLayer(in_features=5, out_features=4, heads=2).double()
    x = torch.randn(2, 8, 5, dtype=torch.float64) * mask.unsqueeze(-1)
    with torch.no_grad():
        out = layer(x, idx, mask)
        w = layer.linear.weight.view(2, 4, 5)  # (H, F, C)
        for b in range(2):
            for i in np.flatnonzero(mask[b].numpy()):
                nbrs = [i] + sorted({int(j) for j in idx[b, i] if j != i})
                heads = []
                for h in range(2):
                    z = x[b, nbrs] @ w[h].T  # (M, F)
                    e = torch.nn.functional.leaky_relu(layer.att_src[h] @ z[0] + z @ layer.att_dst[h], 0.2)
                    heads.append(torch.softmax(e, 0) @ z)
                torch.testing.assert_close(out[b, i], torch.cat(heads) + layer.bias)
        assert (out[~mask] == 0).all()


def learn(name, tmp_path, *overrides):
    return train_metrics(f"configs/top_tagging/{name}.yaml", list(overrides), tmp_path / "run")


@pytest.mark.slow
def test_gcn_learns_top_tagging(sample_path, tmp_path):
    """Measured AUC 0.936 against the jet mass's 0.922 (12 epochs of batch 32, N ≤ 32, lr 0.004, seed 0)."""
    assert_beats_mass(learn("gcn", tmp_path, "train.epochs=12", "data.batch_size=32", "train.early_stopping=null",
                            "train.optimizer.lr=0.004", "data.max_particles=32"))


@pytest.mark.slow
def test_gat_learns_top_tagging(sample_path, tmp_path):
    """Measured AUC 0.937 against the jet mass's 0.922 (4 epochs of batch 64, N ≤ 48, seed 0)."""
    assert_beats_mass(learn("gat", tmp_path, "train.epochs=4", "data.max_particles=48", "data.batch_size=64"))
