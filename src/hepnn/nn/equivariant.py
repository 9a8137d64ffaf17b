"""Permutation-equivariant layers on pair tensors T_ij (PELICAN, Bogatskiy et al. arXiv:2211.00454).

A linear map of an N×N tensor that commutes with relabelling the particles is a combination of 15
basis operations (Maron et al., arXiv:1812.09902): identity T_ij, transpose T_ji, and the
aggregates diag d_i = T_ii, row sums r_i = Σ_k T_ik, column sums c_i = Σ_k T_ki, trace Σ_k T_kk and
total Σ_kl T_kl, each broadcast back onto the diagonal (5 ops), along rows (3: r, c, d at i), along
columns (3: r, c, d at j) or everywhere (2: trace, total). ``Eq2to2`` mixes all 15 with learned
weights per channel without materializing them: aggregates are O(N) and are mixed first, then
broadcast-added. ``Eq2to0`` reads out the two invariants (trace, total).

Sums run over real particles only (padded pairs are zeroed) and are normalized like PELICAN's
aggregators, as a mean times (N / n_ref)^α with a learned exponent α per channel (α = 0: mean;
α = 1: sum / n_ref), so that the output does not depend on the padding and scales sensibly with N.

Both layers also run on packed pairs (``packed``: the R = Σ c² real pairs of a batch as rows,
``hepnn.nn.packed.JetPairs``), where the aggregates are index sums and no padded pair is computed.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hepnn.nn.packed import JetPairs


def _scales(mask: Tensor, alpha: Tensor, n_ref: float, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Per-jet, per-channel factors (N/n_ref)^α / N and / N². Shapes: (B, N), (C,) -> 2 × (B, 1, C)."""
    return _scales_of(mask.sum(1), alpha, n_ref, dtype)


def _packed_aggregates(t: Tensor, pairs: JetPairs, alpha: Tensor, n_ref: float) -> tuple[Tensor, ...]:
    """``_aggregates`` of packed pairs: diag, row, column (M, C) and trace, total (B, C)."""
    scale1, scale2 = (s[:, 0] for s in _scales_of(pairs.counts, alpha, n_ref, t.dtype))  # (B, C) each
    m, b = len(pairs.row_jet), len(pairs.counts)
    diag = t.index_select(0, pairs.diag)  # (M, C)
    per_row = scale1.index_select(0, pairs.row_jet)  # (M, C)
    row = t.new_zeros(m, t.shape[1]).index_add_(0, pairs.src, t) * per_row  # Σ_k T_ik
    col = t.new_zeros(m, t.shape[1]).index_add_(0, pairs.dst, t) * per_row  # Σ_k T_ki
    trace = t.new_zeros(b, t.shape[1]).index_add_(0, pairs.row_jet, diag) * scale1  # (B, C)
    total = t.new_zeros(b, t.shape[1]).index_add_(0, pairs.pair_jet, t) * scale2  # (B, C)
    return diag, row, col, trace, total


def _scales_of(counts: Tensor, alpha: Tensor, n_ref: float, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """``_scales`` from particle counts. Shapes: (B,), (C,) -> 2 × (B, 1, C)."""
    n = counts.clamp_min(1).to(dtype)[:, None, None]  # (B, 1, 1)
    grow = (n / n_ref) ** alpha.to(dtype)  # (B, 1, C)
    return grow / n, grow / n**2


def _aggregates(t: Tensor, pair_mask: Tensor, scale1: Tensor, scale2: Tensor) -> tuple[Tensor, ...]:
    """Normalized diag, row, column (B, N, C) and trace, total (B, 1, 1, C) of masked t (B, N, N, C)."""
    t = t * pair_mask.unsqueeze(-1).to(t.dtype)
    diag = torch.diagonal(t, dim1=1, dim2=2).transpose(1, 2)  # (B, N, C)
    row = t.sum(2) * scale1  # (B, N, C)  Σ_k T_ik
    col = t.sum(1) * scale1  # (B, N, C)  Σ_k T_ki
    trace = diag.sum(1)[:, None, None] * scale1[:, None]  # (B, 1, 1, C)
    total = t.sum((1, 2))[:, None, None] * scale2[:, None]  # (B, 1, 1, C)
    return diag, row, col, trace, total


class Eq2to2(nn.Module):
    """Linear permutation-equivariant map of pair tensors: all 15 basis ops, mixed per channel.

    Args:
        in_channels, out_channels: channels of T and of the output.
        n_ref: reference multiplicity of the (N / n_ref)^α aggregator normalization.

    Shapes: t (B, N, N, C_in), mask (B, N) -> (B, N, N, C_out); entries of padded pairs are 0.
    """

    def __init__(self, in_channels: int, out_channels: int, *, n_ref: float = 50.0) -> None:
        super().__init__()
        self.n_ref = n_ref
        self.alpha = nn.Parameter(torch.zeros(in_channels))  # aggregator exponent per channel
        self.pair = nn.Linear(2 * in_channels, out_channels)  # identity, transpose (+ bias)
        self.on_diag = nn.Linear(5 * in_channels, out_channels)  # d, r, c, trace, total on i = j
        self.rows = nn.Linear(3 * in_channels, out_channels, bias=False)  # r_i, c_i, d_i
        self.cols = nn.Linear(3 * in_channels, out_channels, bias=False)  # r_j, c_j, d_j
        self.glob = nn.Linear(2 * in_channels, out_channels, bias=False)  # trace, total everywhere

    def forward(self, t: Tensor, mask: Tensor) -> Tensor:
        mask = mask.bool()
        pair_mask = mask[:, :, None] & mask[:, None, :]  # (B, N, N)
        scale1, scale2 = _scales(mask, self.alpha, self.n_ref, t.dtype)
        diag, row, col, trace, total = _aggregates(t, pair_mask, scale1, scale2)
        n = t.shape[1]
        out = self.pair(torch.cat([t, t.transpose(1, 2)], dim=-1))  # (B, N, N, C_out)
        rcd = torch.cat([row, col, diag], -1)  # (B, N, 3 C_in)
        out = out + self.rows(rcd)[:, :, None] + self.cols(rcd)[:, None, :]  # along j / along i
        out = out + self.glob(torch.cat([trace, total], -1))  # (B, 1, 1, C_out) everywhere
        glob = torch.cat([trace, total], -1)[:, 0].expand(-1, n, -1)  # (B, N, 2 C_in)
        d_in = torch.cat([diag, row, col, glob], -1)  # (B, N, 5 C_in)
        eye = torch.eye(n, dtype=t.dtype, device=t.device)[None, :, :, None]  # (1, N, N, 1)
        out = out + eye * self.on_diag(d_in)[:, :, None]  # (B, N, 1, C_out) placed on i = j
        return out * pair_mask.unsqueeze(-1).to(out.dtype)

    def packed(self, t: Tensor, pairs: JetPairs) -> Tensor:
        """The same map on packed pairs. Shapes: t (R, C_in) -> (R, C_out)."""
        diag, row, col, trace, total = _packed_aggregates(t, pairs, self.alpha, self.n_ref)
        out = self.pair(torch.cat([t, t.index_select(0, pairs.transpose)], dim=-1))  # (R, C_out)
        rcd = torch.cat([row, col, diag], -1)  # (M, 3 C_in)
        out = out + self.rows(rcd).index_select(0, pairs.src) + self.cols(rcd).index_select(0, pairs.dst)
        glob = torch.cat([trace, total], -1)  # (B, 2 C_in)
        out = out + self.glob(glob).index_select(0, pairs.pair_jet)  # everywhere
        d_in = torch.cat([diag, row, col, glob.index_select(0, pairs.row_jet)], -1)  # (M, 5 C_in)
        return out.index_add(0, pairs.diag, self.on_diag(d_in))  # placed on i = j


class Eq2to0(nn.Module):
    """Permutation-invariant readout of pair tensors: normalized trace and total, mixed linearly.

    Shapes: t (B, N, N, C_in), mask (B, N) -> (B, C_out).
    """

    def __init__(self, in_channels: int, out_channels: int, *, n_ref: float = 50.0) -> None:
        super().__init__()
        self.n_ref = n_ref
        self.alpha = nn.Parameter(torch.zeros(in_channels))
        self.linear = nn.Linear(2 * in_channels, out_channels)

    def forward(self, t: Tensor, mask: Tensor) -> Tensor:
        mask = mask.bool()
        pair_mask = mask[:, :, None] & mask[:, None, :]  # (B, N, N)
        scale1, scale2 = _scales(mask, self.alpha, self.n_ref, t.dtype)
        _, _, _, trace, total = _aggregates(t, pair_mask, scale1, scale2)
        return self.linear(torch.cat([trace, total], -1)[:, 0, 0])  # (B, 2 C_in) -> (B, C_out)

    def packed(self, t: Tensor, pairs: JetPairs) -> Tensor:
        """The same readout of packed pairs. Shapes: t (R, C_in) -> (B, C_out)."""
        _, _, _, trace, total = _packed_aggregates(t, pairs, self.alpha, self.n_ref)
        return self.linear(torch.cat([trace, total], -1))  # (B, C_out)
