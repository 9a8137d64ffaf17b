"""EdgeConv on a dynamic kNN graph (DGCNN, Wang et al., arXiv:1801.07829), as used by ParticleNet
(Qu & Gouskos, arXiv:1902.08570).

    x_i' = ReLU( shortcut(x_i) + mean_{j ∈ kNN(i)} h_Θ(x_i, x_j − x_i) )

The graph is rebuilt on every call from ``points`` (the (η, φ) coordinates in ParticleNet's first
block, the block's input features after). h_Θ is a stack of bias-free Linear → batch norm → ReLU
layers on each edge; the shortcut is Linear → batch norm (identity when the widths already agree),
as in the reference implementation.

Layout (why it is fast on a CPU): in training the edge MLP runs on the edges of *real* particles
only, packed as a 2-D ``(M·k, H)`` matrix (M real particles in the batch), so every layer is one
plain matmul and every batch norm is torch's fused ``F.batch_norm`` over rows: no (B, N, k, H)
padding, no masked statistics, no mask multiplications; the result is scattered back into
(B, N, H); the same in eval mode. Under export every row is kept (no data-dependent shapes, so the
block exports to ONNX): the norms use running statistics, which are elementwise, and padded rows are
zeroed at the end.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from hepnn.data.graphs import knn
from hepnn.nn.norm import MaskedBatchNorm, batch_norm_rows


class EdgeConv(nn.Module):
    """One ParticleNet EdgeConv block: dynamic kNN, edge MLP, mean over neighbours, shortcut.

    Neighbours: the k nearest real particles in ``points`` (``hepnn.data.graphs.knn``); padded
    particles are never neighbours of real ones. A particle with fewer than k real neighbours has
    self-filled slots, i.e. edges (x_i, 0), so the mean always runs over k edges.

    Normalization: batch norm with statistics over real particles' edges only (the parameters and
    running averages live in ``MaskedBatchNorm`` modules), in place of the paper's BatchNorm over the
    padded tensor, which would count padding and break padding invariance.

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

    def weights_read_directly(self) -> list[nn.Module]:
        """The first Linear: its weight is split to act on [x_i, x_j − x_i] without building it."""
        return [self.linears[0]]

    def forward(self, points: Tensor, x: Tensor, mask: Tensor) -> Tensor:
        b, n, c = x.shape
        mask = mask.bool()
        idx = knn(points, mask, self.k)  # (B, N, k) in [0, N)
        offset = torch.arange(b, device=x.device).view(b, 1, 1) * n  # (B, 1, 1) first row of each jet
        nbr = (idx + offset).reshape(b * n, self.k)  # (B*N, k) rows of the neighbours in (B*N)
        x_flat = x.reshape(b * n, c)  # (B*N, C)
        # Only the M real particles' rows (the norms need their statistics in training, and padding is
        # wasted work: half the rows of a random batch). Under export every row, so that no shape
        # depends on the data (ONNX); the norms are then elementwise and padded rows are zeroed at the end.
        every_row = torch.compiler.is_exporting() and not self.training
        rows = None if every_row else mask.reshape(-1).nonzero().squeeze(1)  # (M,)
        x_i = x_flat if rows is None else x_flat[rows]  # (M, C)
        nbr = nbr if rows is None else nbr[rows]  # (M, k)
        # First layer on the edge feature [x_i, x_j − x_i] without building it:
        # W [x_i; x_j − x_i] = (W_a − W_b) x_i + W_b x_j, so only the H-wide W_b x is gathered.
        w = self.linears[0].weight  # (H, 2C)
        w_a, w_b = w[:, :c], w[:, c:]
        h = (x_i @ (w_a - w_b).T).unsqueeze(1) + (x_flat @ w_b.T)[nbr]  # (M, k, H)
        m = h.shape[0]
        h = h.reshape(m * self.k, -1)  # (M*k, H) one row per edge
        h = torch.relu_(batch_norm_rows(self.norms[0], h))
        for linear, norm in zip(self.linears[1:], self.norms[1:]):
            h = torch.relu_(batch_norm_rows(norm, linear(h)))  # (M*k, H)
        h = h.view(m, self.k, -1).mean(dim=1)  # (M, H)
        short = x_i if self.shortcut is None else batch_norm_rows(self.shortcut_norm, self.shortcut(x_i))  # (M, H)
        h = torch.relu(h + short)  # (M, H)
        if rows is None:
            return (h * mask.reshape(-1, 1).to(h.dtype)).view(b, n, -1)  # padded rows -> 0
        # in x's dtype: under CUDA autocast h is bf16/fp16 (the norms keep it), and the next block's kNN
        # distances should not be taken at 8 bits of mantissa
        return x.new_zeros(b * n, h.shape[-1]).index_copy(0, rows, h.to(x.dtype)).view(b, n, -1)  # (B, N, H)
