"""Message-passing helpers for padded particle graphs: neighbour gathering, masked batch norm,
neighbour masks, dense normalized adjacency and masked softmax over neighbours.

Graphs are stored as neighbour lists ``idx (B, N, k)`` (the output of ``hepnn.data.graphs.knn``),
where a slot without a real neighbour holds the particle's own index. Every helper here keeps
padded particles out of every result, so models built on them are padding invariant.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


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


class MaskedBatchNorm(nn.Module):
    """Batch normalization whose statistics use real entries only (particles or edges).

    Ioffe & Szegedy, arXiv:1502.03167. ``nn.BatchNorm1d`` over padded particles would count the
    padding in the mean and variance, so the output would depend on how much padding a batch
    has. Here the batch statistics are averages over entries with ``mask`` True; running averages
    (momentum as in torch, unbiased variance) are used in eval mode.

    Masked-out entries are not zeroed (that would cost a pass over the tensor): they hold the same
    affine map of their input as real entries and never enter the statistics. Callers zero padded
    rows where a result leaves the layer stack (e.g. before pooling).

    Args:
        num_features: channels C (the last axis). eps, momentum: as in ``nn.BatchNorm1d``.

    Shapes: x (..., C), mask broadcastable to x.shape[:-1] bool -> (..., C).
    """

    def __init__(self, num_features: int, *, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        if self.training:
            mean, var = self._batch_stats(x, mask)
        else:
            mean, var = self.running_mean.to(x.dtype), self.running_var.to(x.dtype)
        scale = self.weight * torch.rsqrt(var + self.eps)  # (C,)
        return torch.addcmul(self.bias - mean * scale, x, scale)  # x * scale + shift in one pass

    def _batch_stats(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and biased variance over real entries; updates the running averages."""
        c = x.shape[-1]
        w = mask.expand(x.shape[:-1]).reshape(-1).to(x.dtype)  # (M,) 1 for real entries
        flat = x.reshape(-1, c)  # (M, C)
        count = w.sum().clamp_min(1.0)
        mean = (w @ flat) / count  # (C,) a matrix-vector product: no masked copy of x
        d = flat - mean  # (M, C) centred first: E[x²] − E[x]² loses precision in float32
        var = (w @ (d * d)) / count  # (C,)
        with torch.no_grad():
            unbiased = var * count / (count - 1).clamp_min(1.0)
            self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
            self.running_var.lerp_(unbiased.detach().to(self.running_var.dtype), self.momentum)
        return mean, var
