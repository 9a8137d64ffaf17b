"""Deep Sets for jets: Particle Flow Networks (PFN) and Energy Flow Networks (EFN).

Komiske, Metodiev, Thaler, "Energy Flow Networks: Deep Sets for Particle Jets", arXiv:1810.05165;
Zaheer et al., "Deep Sets", arXiv:1703.06114.

    PFN:  y = F( sum_i Phi(x_i) )                 any per-particle features x_i
    EFN:  y = F( sum_i z_i Phi(deta_i, dphi_i) )  z_i = pT_i / sum_j pT_j  (IRC safe)

Shapes: x (B, N, C), mask (B, N) -> (B, num_classes). Padding and particle order never change the
output: padded particles are zeroed before the sum.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from hepnn.data.batch import Batch
from hepnn.nn.layers import masked_pool, masked_sum, mlp
from hepnn.registry import register_model


class PFN(nn.Module):
    """Particle Flow Network: per-particle map Phi, masked sum (or mean/max), jet-level F."""

    def __init__(
        self,
        *,
        in_features: int,
        num_classes: int,
        phi: Sequence[int] = (100, 100, 256),
        f: Sequence[int] = (100, 100, 100),
        act: str = "relu",
        pool: str = "sum",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.phi = mlp([in_features, *phi], act=act, final_act=True)
        self.f = mlp([phi[-1], *f, num_classes], act=act, dropout=dropout)
        self.pool = pool

    def forward(self, batch: Batch) -> torch.Tensor:
        h = self.phi(batch.x)  # (B, N, L)
        return self.f(masked_pool(h, batch.mask, self.pool))  # (B, L) -> (B, K)


class EFN(nn.Module):
    """Energy Flow Network: pT-fraction weighted sum of Phi over angular coordinates."""

    def __init__(
        self,
        *,
        num_classes: int,
        phi: Sequence[int] = (100, 100, 256),
        f: Sequence[int] = (100, 100, 100),
        act: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.phi = mlp([2, *phi], act=act, final_act=True)
        self.f = mlp([phi[-1], *f, num_classes], act=act, dropout=dropout)

    def forward(self, batch: Batch) -> torch.Tensor:
        from hepnn.data.features import particle_features

        p4, mask = batch.p4, batch.mask
        angles = particle_features(p4, mask, ["deta", "dphi"])  # (B, N, 2)
        pt = torch.hypot(p4[..., 1], p4[..., 2]) * mask  # (B, N)
        z = pt / pt.sum(dim=1, keepdim=True).clamp(min=1e-12)  # (B, N)
        h = self.phi(angles) * z.unsqueeze(-1)  # (B, N, L)
        return self.f(masked_sum(h, mask))  # (B, K)


@register_model("pfn", inputs=("x", "mask"), family="deepsets", tags=("permutation",))
def pfn(
    *,
    in_features: int = 7,
    num_classes: int = 2,
    phi: Sequence[int] = (100, 100, 256),
    f: Sequence[int] = (100, 100, 100),
    act: str = "relu",
    pool: str = "sum",
    dropout: float = 0.0,
) -> PFN:
    """Particle Flow Network (arXiv:1810.05165), paper sizes Phi (100,100,256), F (100,100,100)."""
    return PFN(in_features=in_features, num_classes=num_classes, phi=phi, f=f, act=act, pool=pool, dropout=dropout)


@register_model("efn", inputs=("p4", "mask"), family="deepsets", tags=("permutation", "irc_safe"))
def efn(
    *,
    num_classes: int = 2,
    phi: Sequence[int] = (100, 100, 256),
    f: Sequence[int] = (100, 100, 100),
    act: str = "relu",
    dropout: float = 0.0,
) -> EFN:
    """Energy Flow Network (arXiv:1810.05165): IRC-safe sum_i z_i Phi(deta_i, dphi_i)."""
    return EFN(num_classes=num_classes, phi=phi, f=f, act=act, dropout=dropout)
