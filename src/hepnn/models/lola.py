"""LoLa: Butter, Kasieczka, Plehn, Russell, "Deep-learned Top Tagging with a Lorentz Layer",
arXiv:1707.08966.

The constituents (the first ``n_particles`` by pT; fewer are zero-padded) are combined linearly,
then a Lorentz layer computes physical features of every combined object, then an MLP:

    CoLa:  k̃_j = Σ_i C_ij p_i,  C = (1_N | C_trainable)        N particles + M learned combinations
    LoLa:  k̂_j = ( m²(k̃_j), pT(k̃_j), E(k̃_j), Σ_m w^E_jm E(k̃_m), Σ_m w^d_{a,jm} d²_jm  (a = 1..A) )
           d²_jm = (k̃_j − k̃_m)² (Minkowski distance squared)
    logits = MLP(BatchNorm(flatten(k̂)))

Four-momenta are divided by the jet energy first so that the features are O(1) (a per-jet scale;
LoLa's features are not Lorentz invariant anyway). Padded particles are exactly zero, so they add
nothing to any combination; their own slots carry all-zero features. The weights depend on the
position in the pT-ordered list: the model is not permutation invariant (as in the paper).

Shapes: p4 (B, N, 4), mask (B, N) -> (B, num_classes).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hepnn.data.batch import Batch
from hepnn.data.features import jet_p4
from hepnn.nn.layers import mlp
from hepnn.nn.lorentz import minkowski_norm2, pairwise_norm2
from hepnn.registry import register_model


class LoLa(nn.Module):
    """Combination layer + Lorentz layer + MLP on a fixed number of pT-ordered constituents.

    Args:
        num_classes: outputs. n_particles: constituents used (N). n_combinations: learned
            combinations (M). n_distance_weights: weight sets A for the Minkowski-distance sums.
        hidden: MLP widths after the Lorentz layer (the paper: 100, 50).
    """

    def __init__(
        self,
        *,
        num_classes: int,
        n_particles: int = 40,
        n_combinations: int = 15,
        n_distance_weights: int = 4,
        hidden: Sequence[int] = (100, 50),
    ) -> None:
        super().__init__()
        self.n_particles = n_particles
        n_obj = n_particles + n_combinations
        self.combine = nn.Parameter(torch.rand(n_particles, n_combinations))  # C_trainable
        self.w_energy = nn.Parameter(torch.randn(n_obj, n_obj) / n_obj**0.5)
        self.w_dist = nn.Parameter(torch.randn(n_distance_weights, n_obj, n_obj) / n_obj**0.5)
        n_feat = n_obj * (4 + n_distance_weights)
        self.norm = nn.BatchNorm1d(n_feat)
        self.mlp = mlp([n_feat, *hidden, num_classes], act="relu")

    def fixed_size(self, p4: Tensor, mask: Tensor) -> Tensor:
        """First n_particles four-vectors, zero-padded, in jet-energy units. (B, N, 4) -> (B, n, 4)."""
        p4 = p4 * mask.unsqueeze(-1).to(p4.dtype)  # padded rows exactly 0
        e_jet = jet_p4(p4, mask)[:, 0].clamp_min(torch.finfo(p4.dtype).tiny)  # (B,)
        p4 = (p4 / e_jet[:, None, None])[:, : self.n_particles]  # (B, min(N, n), 4)
        return F.pad(p4, (0, 0, 0, self.n_particles - p4.shape[1]))  # (B, n, 4)

    def forward(self, batch: Batch) -> Tensor:
        p = self.fixed_size(batch.p4, batch.mask.bool())  # (B, n, 4)
        combined = torch.einsum("bic,ij->bjc", p, self.combine)  # (B, M, 4)
        k = torch.cat([p, combined], dim=1)  # (B, n + M, 4)
        energy = k[..., 0]  # (B, n + M)
        d2 = pairwise_norm2(k)  # (B, n + M, n + M)
        feats = [
            minkowski_norm2(k),  # m²
            torch.hypot(k[..., 1], k[..., 2]),  # pT
            energy,
            energy @ self.w_energy.T,  # Σ_m w^E_jm E_m
            *torch.einsum("ajm,bjm->abj", self.w_dist, d2).unbind(0),  # A × Σ_m w^d_jm d²_jm
        ]
        h = torch.stack(feats, dim=-1).flatten(1)  # (B, n + M, 4 + A) -> (B, (n + M)(4 + A))
        return self.mlp(self.norm(h))  # (B, K)


@register_model("lola", inputs=("p4", "mask"), family="lorentz")
def lola(
    *,
    num_classes: int = 2,
    n_particles: int = 40,
    n_combinations: int = 15,
    n_distance_weights: int = 4,
    hidden: Sequence[int] = (100, 50),
) -> LoLa:
    """LoLa (arXiv:1707.08966): 40 constituents + 15 learned combinations, Lorentz layer, MLP."""
    return LoLa(
        num_classes=num_classes, n_particles=n_particles, n_combinations=n_combinations,
        n_distance_weights=n_distance_weights, hidden=hidden,
    )  # fmt: skip
