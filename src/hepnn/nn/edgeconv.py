"""EdgeConv on a dynamic kNN graph (DGCNN, Wang et al., arXiv:1801.07829), as used by ParticleNet
(Qu & Gouskos, arXiv:1902.08570).

    x_i' = ReLU( shortcut(x_i) + mean_{j ∈ kNN(i)} h_Θ(x_i, x_j − x_i) )

The graph is rebuilt on every call from ``points`` (the (η, φ) coordinates in ParticleNet's first
block, the block's input features after). h_Θ is a stack of bias-free Linear → masked batch norm →
ReLU layers on each edge; the shortcut is Linear → masked batch norm (identity when the widths
already agree), as in the reference implementation.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from hepnn.data.graphs import knn
from hepnn.nn.graph import gather_neighbours
from hepnn.nn.norm import MaskedBatchNorm


class EdgeConv(nn.Module):
    """One ParticleNet EdgeConv block: dynamic kNN, edge MLP, mean over neighbours, shortcut.

    Neighbours: the k nearest real particles in ``points`` (``hepnn.data.graphs.knn``); padded
    particles are never neighbours of real ones. A particle with fewer than k real neighbours has
    self-filled slots, i.e. edges (x_i, 0), so the mean always runs over k edges.

    Normalization: ``MaskedBatchNorm`` with statistics over real particles' edges only, in place of
    the paper's BatchNorm, which would count padding and break padding invariance.

    Args:
        in_features: input channels C.
        out_features: widths of the edge MLP layers, e.g. (64, 64, 64); the output has the last.
        k: neighbours per particle.

    Shapes: points (B, N, D), x (B, N, C), mask (B, N) bool -> (B, N, out_features[-1]); padded
    rows of the output are 0.
    """

    def __init__(self, *, in_features: int, out_features: Sequence[int], k: int = 16) -> None:
        super().__init__()
        self.k = k
        dims = [2 * in_features, *out_features]
        self.linears = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(dims[:-1], dims[1:]))
        self.norms = nn.ModuleList(MaskedBatchNorm(d) for d in out_features)
        self.shortcut: nn.Linear | None = None
        if in_features != out_features[-1]:
            self.shortcut = nn.Linear(in_features, out_features[-1], bias=False)
            self.shortcut_norm = MaskedBatchNorm(out_features[-1])

    def forward(self, points: Tensor, x: Tensor, mask: Tensor) -> Tensor:
        mask = mask.bool()
        idx = knn(points, mask, self.k)  # (B, N, k)
        # First layer on the edge feature [x_i, x_j − x_i] without building it:
        # W [x_i; x_j − x_i] = (W_a − W_b) x_i + W_b x_j, so only the H-wide W_b x is gathered.
        c = x.shape[-1]
        w = self.linears[0].weight  # (H, 2C)
        w_a, w_b = w[:, :c], w[:, c:]
        h = (x @ (w_a - w_b).T).unsqueeze(2) + gather_neighbours(x @ w_b.T, idx)  # (B, N, k, H)
        edge_mask = mask.unsqueeze(-1)  # (B, N, 1) every edge of a real particle is real
        # Edges of padded particles run through the stack too (cheaper than masking every layer);
        # they never enter the norm statistics and are zeroed at the end.
        h = torch.relu_(self.norms[0](h, edge_mask))
        for linear, norm in zip(self.linears[1:], self.norms[1:]):
            h = torch.relu_(norm(linear(h), edge_mask))  # (B, N, k, H)
        h = h.mean(dim=2)  # (B, N, H)
        short = x if self.shortcut is None else self.shortcut_norm(self.shortcut(x), mask)  # (B, N, H)
        return torch.relu(h + short) * mask.unsqueeze(-1).to(h.dtype)
