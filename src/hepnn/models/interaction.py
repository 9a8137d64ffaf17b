"""JEDI-net: an interaction network on the fully connected graph of a jet's particles.

Moreno et al., "JEDI-net: a jet identification algorithm based on interaction networks",
arXiv:1908.05318; Battaglia et al., "Interaction Networks", arXiv:1612.00222.

    e_ij = f_R(x_i, x_j)                 for every ordered pair of real particles i ≠ j
    E_i  = Σ_j e_ij                      effects aggregated at the receiver i (masked sum)
    o_i  = f_O(x_i, E_i)
    y    = φ_C( Σ_i o_i )                masked sum over particles

f_R, f_O and φ_C are MLPs (ReLU between layers, and after the last layer of f_R and f_O). The
first layer of f_R acts on the concatenation [x_i, x_j] and is split as W_r x_i + W_s x_j, so it
costs O(N) and only the later layers of f_R run on the N² pairs. Memory and time grow as N²: cap
the particles with ``data.max_particles`` (the paper uses 30–150; 50 is a good CPU default).
The paper tunes the widths per particle count; the defaults here are of that order.

Shapes: x (B, N, C), mask (B, N) -> logits (B, num_classes).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from hepnn.data.batch import Batch
from hepnn.nn.layers import activation, masked_sum, mlp
from hepnn.registry import register_model


class InteractionNetwork(nn.Module):
    """Interaction network (JEDI-net): pairwise f_R, receiver sum, node f_O, sum, classifier φ_C.

    Args:
        in_features: particle channels C. num_classes: logits.
        f_r: widths of the edge MLP f_R (the last is the effect size D_E).
        f_o: widths of the node MLP f_O (the last is D_O).
        phi_c: hidden widths of the jet-level classifier φ_C.
        act: activation name. dropout: in φ_C.
    """

    def __init__(
        self,
        *,
        in_features: int,
        num_classes: int,
        f_r: Sequence[int],
        f_o: Sequence[int],
        phi_c: Sequence[int],
        act: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.receiver = nn.Linear(in_features, f_r[0])  # W_r x_i + b, first layer of f_R
        self.sender = nn.Linear(in_features, f_r[0], bias=False)  # W_s x_j
        self.act = activation(act)
        self.f_r = mlp(list(f_r), act=act, final_act=True)
        self.f_o = mlp([in_features + f_r[-1], *f_o], act=act, final_act=True)
        self.phi_c = mlp([f_o[-1], *phi_c, num_classes], act=act, dropout=dropout)

    def forward(self, batch: Batch) -> Tensor:
        x, mask = batch.x, batch.mask.bool()
        n = x.shape[1]
        h = self.act(self.receiver(x).unsqueeze(2) + self.sender(x).unsqueeze(1))  # (B, N_recv, N_send, H)
        e = self.f_r(h)  # (B, N, N, D_E)
        eye = torch.eye(n, dtype=torch.bool, device=x.device)
        pair = mask.unsqueeze(2) & mask.unsqueeze(1) & ~eye  # (B, N, N) real i ≠ j
        effects = (e * pair.unsqueeze(-1).to(e.dtype)).sum(dim=2)  # (B, N, D_E) summed over senders
        o = self.f_o(torch.cat([x, effects], dim=-1))  # (B, N, D_O)
        return self.phi_c(masked_sum(o, mask))  # (B, K)


@register_model("jedinet", inputs=("x", "mask"), family="gnn", tags=("permutation",))
def jedinet(
    *,
    in_features: int = 7,
    num_classes: int = 2,
    f_r: Sequence[int] = (32, 32, 16),
    f_o: Sequence[int] = (64, 64, 32),
    phi_c: Sequence[int] = (64, 32),
    act: str = "relu",
    dropout: float = 0.0,
) -> InteractionNetwork:
    """JEDI-net interaction network (arXiv:1908.05318) on all particle pairs; O(N²), cap N at ~50."""
    return InteractionNetwork(in_features=in_features, num_classes=num_classes, f_r=f_r, f_o=f_o,
                              phi_c=phi_c, act=act, dropout=dropout)
