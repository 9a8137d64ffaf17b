"""Message-passing helpers for padded particle graphs: neighbour gathering,
neighbour masks, dense normalized adjacency and masked softmax over neighbours.

Graphs are stored as neighbour lists ``idx (B, N, k)`` (the output of ``hepnn.data.graphs.knn``),
where a slot without a real neighbour holds the particle's own index. Every helper here keeps
padded particles out of every result, so models built on them are padding invariant.
"""

from __future__ import annotations

import torch
from torch import Tensor


def gather_neighbours(x: Tensor, idx: Tensor) -> Tensor:
    """Features of each particle's neighbours via one flat index (memory O(B N k C)).

    Shapes: x (B, N, C), idx (B, N, k) long in [0, N) -> (B, N, k, C).
    """
    b, n, c = x.shape
    k = idx.shape[-1]
    offset = torch.arange(b, device=x.device).view(b, 1, 1) * n  # (B, 1, 1) start of each jet
    flat = (idx + offset).reshape(-1)  # (B*N*k,) rows of x viewed as (B*N, C)
    return x.reshape(b * n, c)[flat].view(b, n, k, c)  # (B, N, k, C)


def neighbour_mask(idx: Tensor, mask: Tensor) -> Tensor:
    """True where a ``knn`` slot holds a real neighbour (not the self fill, not a padded row).

    Shapes: idx (B, N, k), mask (B, N) -> (B, N, k) bool.
    """
    self_idx = torch.arange(idx.shape[1], device=idx.device).view(1, -1, 1)  # (1, N, 1)
    return (idx != self_idx) & mask.bool().unsqueeze(-1)


def knn_adjacency(
    idx: Tensor, mask: Tensor, *, symmetric: bool = True, self_loops: bool = True, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Dense 0/1 adjacency of a kNN graph among real particles.

    Args:
        idx: neighbour indices from ``knn`` (self-filled slots are ignored).
        mask: True for real particles.
        symmetric: A ∨ Aᵀ (an undirected graph, as GCN assumes).
        self_loops: set A_ii = 1 for real particles.
        dtype: float dtype of the result.

    Shapes: idx (B, N, k), mask (B, N) -> (B, N, N) float; rows and columns of padding are 0.
    """
    b, n, _ = idx.shape
    valid = neighbour_mask(idx, mask).to(dtype)  # (B, N, k)
    adj = torch.zeros(b, n, n, dtype=dtype, device=idx.device).scatter_add_(2, idx, valid).clamp_(max=1.0)  # (B, N, N)
    if symmetric:
        adj = torch.maximum(adj, adj.transpose(1, 2))
    if self_loops:
        adj = adj + torch.diag_embed(mask.to(dtype))  # diagonal was 0: knn never points at self
    return adj


def masked_softmax(scores: Tensor, valid: Tensor, dim: int) -> Tensor:
    """Softmax over ``dim`` of the valid entries only; a row with no valid entry gives all zeros.

    Shapes: scores (...), valid (...) bool, broadcastable to scores -> same shape as scores.
    """
    scores = scores.masked_fill(~valid, float("-inf"))
    m = scores.amax(dim=dim, keepdim=True)
    m = torch.where(torch.isinf(m), torch.zeros_like(m), m)  # empty rows: avoid -inf - -inf
    e = torch.exp(scores - m) * valid
    return e / e.sum(dim=dim, keepdim=True).clamp_min(torch.finfo(e.dtype).tiny)


