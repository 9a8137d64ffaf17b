"""LorentzNet: Gong, Meng, Qi, et al., "An Efficient Lorentz Equivariant Graph Neural Network for Jet
Tagging", arXiv:2201.08187.

Each particle carries scalars h_i and a four-vector x_i (initially its momentum). A Lorentz group
equivariant block (LGEB) updates both, using only Minkowski invariants of the coordinates:

    m_ij = φ_e(h_i, h_j, ψ(‖x_i − x_j‖²), ψ(⟨x_i, x_j⟩)),   ψ(a) = sgn(a) ln(|a| + 1)
    x_i ← x_i + c Σ_j φ_x(m_ij) x_j                           (c = 1e-3)
    h_i ← h_i + φ_h(h_i, Σ_j w_ij m_ij, s_i),  w_ij = φ_m(m_ij) = sigmoid(Linear(m_ij))

Sums run over real j ≠ i. The output is the decoder MLP on the masked mean of h over real
particles, so it is invariant under Lorentz transformations of all p4 and under particle order.

Layout (why it is fast): the blocks run on the real particles packed into rows and on the real
edges (every ordered pair i ≠ j of a jet) packed into a list, and the edge MLPs are one fused,
chunked function (``hepnn.nn.edge_mlp``) that never holds a (B, N, N, D) tensor. The dense layout
(``forward_dense``) is kept for ``torch.export`` / ONNX, where shapes must not depend on the data.
Input scalars s_i are Lorentz invariants: ψ(m_i²) and a beam flag. With ``spurions=True`` (the
paper's default) the two beams (1, 0, 0, ±1) are added as extra particles with flag 1; this
keeps only rotations about the beam axis as an exact symmetry.

Shapes: p4 (B, N, 4) GeV, mask (B, N) -> (B, num_classes).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hepnn.data.batch import Batch
from hepnn.nn.edge_mlp import edge_messages
from hepnn.nn.layers import masked_mean, mlp
from hepnn.nn.lorentz import add_beams, minkowski_dot, minkowski_gram, minkowski_norm2, pairwise_norm2, psi
from hepnn.nn.packed import ordered_pairs
from hepnn.registry import register_model, register_variant

N_SCALARS = 2  # ψ(m²), is_beam


class LGEB(nn.Module):
    """One Lorentz group equivariant block.

    Shapes: dense h (B, N, D), x (B, N, 4), s (B, N, S), edge (B, N, N) -> same; packed
    (``packed``) h (M, D), x (M, 4), s (M, S), edges src/dst (E,) -> same.
    """

    def __init__(
        self, width: int, n_scalars: int, *, c: float = 1e-3, dropout: float = 0.0, update_x: bool = True
    ) -> None:
        super().__init__()
        self.c = c
        # φ_e's first Linear on (h_i, h_j, invariants), split by input so that the h terms are
        # computed per particle (B, N, D) and broadcast, not per edge (B, N, N, 2D)
        self.e_i, self.e_j = nn.Linear(width, width), nn.Linear(width, width, bias=False)
        self.e_inv = nn.Linear(2, width, bias=False)
        self.phi_e = nn.Sequential(nn.ReLU(), nn.Linear(width, width), nn.ReLU())
        self.phi_m = nn.Sequential(nn.Linear(width, 1), nn.Sigmoid())
        self.phi_h = mlp([2 * width + n_scalars, width, width], act="relu", dropout=dropout)
        # the last block's coordinates are never read, so it has no φ_x (as in the paper's code)
        self.phi_x = mlp([width, width, 1], act="relu") if update_x else None

    def weights_read_directly(self) -> list[nn.Module]:
        """The edge MLPs' layers: ``packed`` hands their weights to the fused ``edge_messages``."""
        return [self.e_inv, self.phi_e[1], self.phi_m[0], *(() if self.phi_x is None else (self.phi_x[0], self.phi_x[2]))]

    def forward(self, h: Tensor, x: Tensor, s: Tensor, edge: Tensor) -> tuple[Tensor, Tensor]:
        inv = torch.stack([psi(pairwise_norm2(x)), psi(minkowski_gram(x))], dim=-1)  # (B, N, N, 2)
        pre = self.e_i(h).unsqueeze(2) + self.e_j(h).unsqueeze(1) + self.e_inv(inv)  # (B, N, N, D)
        m = self.phi_e(pre)  # (B, N, N, D) m_ij
        e = edge.unsqueeze(-1).to(h.dtype)  # (B, N, N, 1) real i, real j, i ≠ j
        if self.phi_x is not None:
            x = x + self.c * torch.einsum("bij,bjc->bic", (self.phi_x(m) * e).squeeze(-1), x)  # Σ_j φ_x x_j
        agg = (self.phi_m(m) * m * e).sum(2)  # (B, N, D) Σ_j w_ij m_ij
        h = h + self.phi_h(torch.cat([h, agg, s], dim=-1))
        return h, x

    def packed(self, h: Tensor, x: Tensor, s: Tensor, src: Tensor, dst: Tensor) -> tuple[Tensor, Tensor]:
        """The same block on packed particles and edges (the edge MLPs fused, ``edge_messages``)."""
        sq = minkowski_norm2(x)  # (M,)
        dot = minkowski_dot(x.index_select(0, src), x.index_select(0, dst))  # (E,) ⟨x_i, x_j⟩
        norm = sq.index_select(0, src) + sq.index_select(0, dst) - 2 * dot  # (E,) ‖x_i − x_j‖², as dense
        inv = torch.stack([psi(norm), psi(dot)], dim=-1)  # (E, 2)
        lin_e, lin_m = self.phi_e[1], self.phi_m[0]
        px = () if self.phi_x is None else (self.phi_x[0].weight, self.phi_x[0].bias,
                                            self.phi_x[2].weight[0], self.phi_x[2].bias)
        agg, dx = edge_messages(self.e_i(h), self.e_j(h), inv, x, src, dst, self.e_inv.weight, lin_e.weight,
                                lin_e.bias, lin_m.weight[0], lin_m.bias, *px)  # (M, D), (M, 4)
        if self.phi_x is not None:
            x = x + self.c * dx.to(x.dtype)
        h = h + self.phi_h(torch.cat([h, agg.to(h.dtype), s], dim=-1))
        return h, x


class LorentzNet(nn.Module):
    """LorentzNet: scalar embedding, a stack of LGEBs, decoder on the masked mean of h.

    Args:
        num_classes: outputs. width: hidden width (72 in the paper). num_blocks: LGEBs (6).
        c: coordinate update scale (1e-3). dropout: in φ_h and the decoder (0.2).
        spurions: add the two beam four-vectors as extra particles (the paper's default).
        scale: multiplies p4 (GeV) before use. At 1 (GeV) ψ of typical products is O(1); a scale
            of 0.01 made them ~1e-3 and the network did not learn in a 1-epoch test.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        width: int = 72,
        num_blocks: int = 6,
        c: float = 1e-3,
        dropout: float = 0.2,
        spurions: bool = True,
        scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.spurions, self.scale = spurions, scale
        self.embed = nn.Linear(N_SCALARS, width)
        self.blocks = nn.ModuleList(
            [LGEB(width, N_SCALARS, c=c, dropout=dropout, update_x=i < num_blocks - 1) for i in range(num_blocks)]
        )
        self.decoder = mlp([width, width, num_classes], act="relu", dropout=dropout)

    def forward(self, batch: Batch) -> Tensor:
        if torch.compiler.is_exporting():  # shapes must not depend on the data
            return self.forward_dense(batch)
        return self.forward_packed(batch)

    def _inputs(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
        """Coordinates (with the beams), mask and scalars s = (ψ(m²), is_beam). -> (B, N', 4), (B, N'), (B, N', 2)."""
        mask = batch.mask.bool()
        x = batch.p4 * self.scale * mask.unsqueeze(-1).to(batch.p4.dtype)  # (B, N, 4)
        is_beam = torch.zeros_like(mask)
        if self.spurions:
            x, mask, is_beam = add_beams(x, mask)  # (B, N + 2, 4), (B, N + 2), (B, N + 2)
        s = torch.stack([psi(minkowski_norm2(x)), is_beam.to(x.dtype)], dim=-1)  # (B, N, 2)
        return x, mask, s * mask.unsqueeze(-1).to(x.dtype)

    def forward_packed(self, batch: Batch) -> Tensor:
        """Real particles packed into rows, real edges into a list."""
        x, mask, s = self._inputs(batch)
        rows = mask.reshape(-1).nonzero().squeeze(1)  # (M,) jet after jet
        counts = mask.sum(1)  # (B,)
        src, dst = ordered_pairs(counts)  # (E,) every i ≠ j of a jet
        x, s = x.reshape(-1, 4).index_select(0, rows), s.reshape(-1, s.shape[-1]).index_select(0, rows)  # (M, ·)
        h = self.embed(s)  # (M, D)
        for block in self.blocks:
            h, x = block.packed(h, x, s, src, dst)
        jet = rows // mask.shape[1]  # (M,) jet of each row
        pooled = h.new_zeros(len(counts), h.shape[1]).index_add_(0, jet, h)  # (B, D)
        return self.decoder(pooled / counts.clamp_min(1).unsqueeze(1).to(h.dtype))  # (B, K)

    def forward_dense(self, batch: Batch) -> Tensor:
        """The (B, N, N) layout: what ``torch.export`` records (no data-dependent shape)."""
        x, mask, s = self._inputs(batch)
        n = mask.shape[1]
        eye = torch.eye(n, dtype=torch.bool, device=mask.device)
        edge = mask[:, :, None] & mask[:, None, :] & ~eye  # (B, N, N)
        h = self.embed(s)  # (B, N, D)
        for block in self.blocks:
            h, x = block(h, x, s, edge)
        return self.decoder(masked_mean(h, mask))  # (B, D) -> (B, K)


@register_model("lorentznet", inputs=("p4", "mask"), family="lorentz", tags=("permutation", "lorentz"))
def lorentznet(
    *,
    num_classes: int = 2,
    width: int = 72,
    num_blocks: int = 6,
    c: float = 1e-3,
    dropout: float = 0.2,
    spurions: bool = True,
    scale: float = 1.0,
) -> LorentzNet:
    """LorentzNet (arXiv:2201.08187) at the paper's size: 6 LGEBs of width 72, beam spurions."""
    return LorentzNet(
        num_classes=num_classes, width=width, num_blocks=num_blocks, c=c, dropout=dropout,
        spurions=spurions, scale=scale,
    )  # fmt: skip


register_variant("lorentznet_lite", of="lorentznet", width=32, num_blocks=3, dropout=0.1,
                 doc="LorentzNet for CPUs: 3 LGEBs of width 32.")
