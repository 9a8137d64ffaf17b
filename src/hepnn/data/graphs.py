"""Particle graphs on padded jets: k-nearest-neighbour indices and ΔR adjacency, in plain torch.

``knn`` is the neighbour search of ParticleNet's EdgeConv (Qu & Gouskos, arXiv:1902.08570), run in
(η, φ) for the first block and in feature space after; ``delta_r_edges`` gives the fixed-radius
graph used by GCN-style models. Both are O(B N²) in memory and never point a real particle at a
padded one.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hepnn.data.features import delta_phi


GRID = 1e5  # knn's resolution of low-dimensional coordinates (1e-5 in Δη, Δφ)


def knn(points: Tensor, mask: Tensor, k: int, exclude_self: bool = True) -> Tensor:
    """Indices of the k nearest real particles of every particle (Euclidean distance).

    Distances are squared Euclidean: for 2-3 coordinates (the (Δη, Δφ) graph) summed squared
    differences of the coordinates on a 1/GRID grid, exact, so that particles at one position (a
    track and a calorimeter deposit in one tower) are at exactly equal distances from every other,
    in every runtime; in a learned feature space
    ‖x_i‖² + ‖x_j‖² − 2 x_i·x_j (one batched matmul, as in ParticleNet). Padded points sit at +inf
    distance and so does the point itself if ``exclude_self``. Coordinates are taken as they are:
    pass wrapped Δφ (e.g. the ``dphi`` feature) when the points are angles.

    Fewer neighbours than k: when a particle has fewer than k other real particles (small jets, or
    k ≥ N), the missing slots hold the particle's own index, so an EdgeConv edge feature
    x_j − x_i is 0 there. Rows of padded particles hold their own index everywhere. Neighbours come
    in increasing distance; on the (Δη, Δφ) graph equal distances in increasing index, so the graph
    does not depend on the runtime (torch, ONNX Runtime).

    Shapes: points (B, N, D), mask (B, N) -> idx (B, N, k) long.
    """
    b, n, _ = points.shape
    mask = mask.bool()
    if points.shape[-1] <= 3:
        # Coordinates on a 1e-5 grid, as integers in float64: exact squared distances, equal for points
        # that float32 rounding (different in torch and ONNX Runtime) would set apart by an ulp; then
        # 1e-3 per column index, below the grid's spacing of 1: equal distances order by index.
        grid = torch.round(points.double() * GRID)  # (B, N, D)
        diff = grid.unsqueeze(2) - grid.unsqueeze(1)  # (B, N, N, D)
        tie = torch.arange(n, dtype=torch.float64, device=points.device) * 1e-3  # (N,)
        d = (diff * diff).sum(-1) + tie  # (B, N, N)
    else:
        sq = (points * points).sum(-1)  # (B, N)
        d = sq.unsqueeze(2) + sq.unsqueeze(1) - 2 * points @ points.transpose(1, 2)  # (B, N, N)
    eye = torch.eye(n, dtype=torch.bool, device=points.device)
    invalid = ~mask.unsqueeze(1) | eye if exclude_self else ~mask.unsqueeze(1)  # (B, N, N) by column
    d = d.masked_fill(invalid, torch.inf)
    kk = min(k, n)
    dist, idx = d.topk(kk, dim=-1, largest=False)  # (B, N, kk)
    self_idx = torch.arange(n, device=points.device).view(1, n, 1).expand(b, n, k)  # (B, N, k)
    if kk < k:  # fewer particles in the batch than k: pad with self
        dist = torch.cat([dist, dist.new_full((b, n, k - kk), torch.inf)], dim=-1)
        idx = torch.cat([idx, self_idx[..., kk:]], dim=-1)
    use_self = torch.isinf(dist) | ~mask.unsqueeze(-1)  # (B, N, k) slot without a real neighbour
    return torch.where(use_self, self_idx, idx)


def delta_r_edges(eta_phi: Tensor, mask: Tensor, r: float, *, self_loops: bool = False) -> Tensor:
    """Adjacency of real particles closer than ``r`` in ΔR = sqrt(Δη² + Δφ²), with φ wrapping.

    Edges satisfy ΔR < r strictly; the diagonal is set only if ``self_loops`` (real particles only).

    Shapes: eta_phi (B, N, 2), mask (B, N) -> adjacency (B, N, N) bool, symmetric.
    """
    mask = mask.bool()
    deta = eta_phi[..., 0].unsqueeze(2) - eta_phi[..., 0].unsqueeze(1)  # (B, N, N)
    dphi = delta_phi(eta_phi[..., 1].unsqueeze(2), eta_phi[..., 1].unsqueeze(1))  # (B, N, N)
    adj = (deta * deta + dphi * dphi) < r * r
    adj = adj & mask.unsqueeze(2) & mask.unsqueeze(1)
    eye = torch.eye(mask.shape[1], dtype=torch.bool, device=mask.device)
    return adj | (eye & mask.unsqueeze(2)) if self_loops else adj & ~eye
