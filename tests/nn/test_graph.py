"""hepnn.nn.graph: neighbour gathering, neighbour masks, dense kNN adjacency and masked softmax, by hand
and against torch, with padded particles kept out of every result."""

from __future__ import annotations

import math

import torch

from hepnn.data.graphs import knn
from hepnn.nn.graph import gather_neighbours, knn_adjacency, masked_softmax, neighbour_mask

# One jet of 4 slots, 3 real particles + 1 padded; k = 2. Particle 2 has one real neighbour (the
# second slot is its self fill), the padded row is self-filled.
IDX = torch.tensor([[[1, 2], [0, 2], [0, 2], [3, 3]]])  # (1, 4, 2)
MASK = torch.tensor([[True, True, True, False]])


def test_gather_neighbours_by_hand():
    x = torch.arange(12.0).view(2, 3, 2)  # jet 0 rows [0,1],[2,3],[4,5]; jet 1 rows [6,7],[8,9],[10,11]
    idx = torch.tensor([[[2], [0], [1]], [[1], [1], [0]]])
    got = gather_neighbours(x, idx)[..., 0, :]
    assert got.tolist() == [[[4, 5], [0, 1], [2, 3]], [[8, 9], [8, 9], [6, 7]]]


def test_gather_neighbours_matches_torch_gather():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 4, generator=g)
    idx = torch.randint(0, 5, (3, 5, 2), generator=g)
    expected = torch.gather(x.unsqueeze(1).expand(3, 5, 5, 4), 2, idx.unsqueeze(-1).expand(3, 5, 2, 4))
    assert torch.equal(gather_neighbours(x, idx), expected)


def test_neighbour_mask_drops_self_fills_and_padded_rows():
    assert neighbour_mask(IDX, MASK).tolist() == [[[True, True], [True, True], [True, False], [False, False]]]


def test_knn_adjacency_directed_without_self_loops():
    adj = knn_adjacency(IDX, MASK, symmetric=False, self_loops=False)
    expected = [[0, 1, 1, 0], [1, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]]  # row i: i's neighbours
    assert adj[0].tolist() == expected


def test_knn_adjacency_symmetric_with_self_loops():
    adj = knn_adjacency(IDX, MASK, symmetric=True, self_loops=True, dtype=torch.float64)
    expected = [[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]]
    assert adj.dtype == torch.float64 and adj[0].tolist() == expected


def test_knn_adjacency_from_knn_ignores_padding():
    """Built from ``knn`` on points with padding: equal to the adjacency of the real particles alone."""
    g = torch.Generator().manual_seed(1)
    points = torch.randn(1, 7, 2, generator=g)
    mask = torch.tensor([[True] * 5 + [False] * 2])
    adj = knn_adjacency(knn(points, mask, 3), mask)
    alone = knn_adjacency(knn(points[:, :5], mask[:, :5], 3), mask[:, :5])
    assert torch.equal(adj[:, :5, :5], alone)
    assert adj[:, 5:].abs().sum() == 0 and adj[:, :, 5:].abs().sum() == 0
    assert torch.equal(adj, adj.transpose(1, 2))


def test_masked_softmax_by_hand():
    scores = torch.tensor([[0.0, math.log(3.0), 5.0]])
    p = masked_softmax(scores, torch.tensor([[True, True, False]]), dim=-1)
    torch.testing.assert_close(p, torch.tensor([[0.25, 0.75, 0.0]]))
    assert masked_softmax(scores, torch.zeros(1, 3, dtype=torch.bool), dim=-1).eq(0).all()


def test_masked_softmax_equals_softmax_over_the_valid_entries():
    g = torch.Generator().manual_seed(2)
    scores = 10 * torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    valid = torch.rand(3, 4, 5, generator=g) < 0.6
    valid[0, 0] = False  # one row with no valid entry
    p = masked_softmax(scores, valid, dim=1)  # over the middle axis
    for b in range(3):
        for c in range(5):
            v = valid[b, :, c]
            expected = torch.zeros(4, dtype=torch.float64)
            if v.any():
                expected[v] = torch.softmax(scores[b, v, c], dim=0)
            torch.testing.assert_close(p[b, :, c], expected, rtol=1e-12, atol=1e-12)


def test_masked_softmax_gradients_are_finite_and_zero_on_invalid_entries():
    scores = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    valid = torch.tensor([[True, False, True], [False, False, False]])
    (masked_softmax(scores, valid, dim=-1) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.isfinite(scores.grad).all()
    assert torch.equal(scores.grad[~valid], torch.zeros(4))
    assert scores.grad[valid].abs().sum() > 0
