"""kNN and ΔR graphs against scikit-learn and brute-force numpy."""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.neighbors import NearestNeighbors

from hepnn.data.graphs import delta_r_edges, knn


def padded_points(rng, counts, n_max, dim=2):
    pts = np.zeros((len(counts), n_max, dim))
    mask = np.zeros((len(counts), n_max), dtype=bool)
    for b, c in enumerate(counts):
        pts[b, :c] = rng.normal(0, 1, (c, dim))
        mask[b, :c] = True
    return torch.from_numpy(pts), torch.from_numpy(mask)


def test_knn_matches_sklearn():
    rng = np.random.default_rng(0)
    counts, k = [12, 9, 30], 4
    pts, mask = padded_points(rng, counts, 30, dim=3)
    idx = knn(pts.float(), mask, k)
    assert idx.shape == (3, 30, k) and idx.dtype == torch.long
    for b, c in enumerate(counts):
        nn = NearestNeighbors(n_neighbors=k + 1).fit(pts[b, :c].numpy())
        _, ref = nn.kneighbors(pts[b, :c].numpy())  # first column is the point itself
        np.testing.assert_array_equal(idx[b, :c].numpy(), ref[:, 1:])
        # float64 gives the same neighbours
        np.testing.assert_array_equal(knn(pts, mask, k)[b, :c].numpy(), ref[:, 1:])


def test_knn_including_self():
    pts, mask = padded_points(np.random.default_rng(1), [7], 9)
    idx = knn(pts, mask, 3, exclude_self=False)
    ref = NearestNeighbors(n_neighbors=3).fit(pts[0, :7].numpy()).kneighbors(pts[0, :7].numpy())[1]
    np.testing.assert_array_equal(idx[0, :7].numpy(), ref)
    assert (idx[0, :7, 0] == torch.arange(7)).all()


def test_knn_small_jets_fill_with_self_and_never_point_at_padding():
    pts, mask = padded_points(np.random.default_rng(2), [3, 1, 0, 8], 8)
    idx = knn(pts, mask, k=5)
    self_idx = torch.arange(8).view(1, 8, 1)
    for b, c in enumerate([3, 1, 0, 8]):
        real = idx[b, :c]
        assert (real < c).all()  # only real neighbours for real particles
        # 3 real particles: two real neighbours (nearest first), then self for the rest
        if c == 3:
            d = torch.cdist(pts[b, :3], pts[b, :3])
            for i in range(3):
                others = [j for j in range(3) if j != i]
                want = sorted(others, key=lambda j: d[i, j].item()) + [i] * 3
                assert real[i].tolist() == want
    assert (idx[~mask] == self_idx.expand(4, 8, 5)[~mask]).all()  # padded rows point at themselves
    # k larger than the padded length
    big = knn(pts[:1, :3], mask[:1, :3], k=6)
    assert big.shape == (1, 3, 6) and (big[0, :, 2:] == torch.arange(3).view(3, 1)).all()


def test_knn_padding_invariance():
    pts, mask = padded_points(np.random.default_rng(3), [6, 4], 6)
    more = torch.cat([pts, 5 * torch.ones(2, 3, 2, dtype=pts.dtype)], 1)  # junk in padded rows
    mmask = torch.cat([mask, torch.zeros(2, 3, dtype=torch.bool)], 1)
    a, b = knn(pts, mask, 3), knn(more, mmask, 3)
    assert torch.equal(a[mask], b[:, :6][mask])


def brute_force_edges(eta_phi: np.ndarray, mask: np.ndarray, r: float) -> np.ndarray:
    bsz, n, _ = eta_phi.shape
    adj = np.zeros((bsz, n, n), dtype=bool)
    for b in range(bsz):
        for i in range(n):
            for j in range(n):
                if i == j or not (mask[b, i] and mask[b, j]):
                    continue
                dphi = (eta_phi[b, i, 1] - eta_phi[b, j, 1] + math.pi) % (2 * math.pi) - math.pi
                adj[b, i, j] = math.hypot(eta_phi[b, i, 0] - eta_phi[b, j, 0], dphi) < r
    return adj


def test_delta_r_edges_match_brute_force_with_phi_wrapping():
    rng = np.random.default_rng(4)
    pts, mask = padded_points(rng, [10, 6], 10)
    pts[..., 1] = torch.from_numpy(rng.uniform(-math.pi, math.pi, (2, 10))) * mask  # φ all around
    pts[0, 0, 1], pts[0, 1, 1], pts[0, 0, 0], pts[0, 1, 0] = 3.1, -3.1, 0.0, 0.0  # ΔR = 0.083 across ±π
    adj = delta_r_edges(pts, mask, r=0.9)
    np.testing.assert_array_equal(adj.numpy(), brute_force_edges(pts.numpy(), mask.numpy(), 0.9))
    assert adj[0, 0, 1] and adj[0, 1, 0]
    assert torch.equal(adj, adj.transpose(1, 2))
    loops = delta_r_edges(pts, mask, r=0.9, self_loops=True)
    assert torch.equal(loops.diagonal(dim1=1, dim2=2), mask)


def test_equal_distances_order_by_index_whatever_the_last_bit():
    """A track and a calorimeter deposit at one position: which is the neighbour may not depend on
    float32 rounding (torch and ONNX Runtime round differently) or on topk's tie rule."""
    pts = torch.tensor([[[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1e-7]]])  # 2 and 3 one ulp apart
    mask = torch.ones(1, 4, dtype=torch.bool)
    idx = knn(pts, mask, k=2)
    assert idx[0, 0].tolist() == [1, 2]  # 1, 2 and 3 all at distance 1 from particle 0: lowest indices
    assert idx[0, 3].tolist() == [2, 0]  # its twin first (distance 0 on the 1e-5 grid), then particle 0
