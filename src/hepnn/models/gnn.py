"""Graph convolutional (GCN) and graph attention (GAT) networks on the jet's kNN graph in (Δη, Δφ).

Kipf & Welling, "Semi-Supervised Classification with Graph Convolutional Networks", arXiv:1609.02907:

    H' = ReLU( D̂^{-1/2} Â D̂^{-1/2} H W + b ),   Â = A + I,  D̂_ii = Σ_j Â_ij

Veličković et al., "Graph Attention Networks", arXiv:1710.10903 (per head, j ∈ kNN(i) ∪ {i}):

    e_ij = LeakyReLU_0.2( aᵀ [W h_i ‖ W h_j] ),  α_ij = softmax_{j ∈ N(i) ∪ {i}} e_ij,
    h_i' = ELU( ‖_heads Σ_j α_ij W h_j + b )

The graph: each real particle's k nearest real particles in (Δη, Δφ) relative to the jet axis
(computed from ``p4``); GCN symmetrizes it (A ∨ Aᵀ), GAT attends over the directed neighbour list.
A jet is read out by a masked mean over particles and an MLP. The papers classify nodes; the
graph-level readout and the widths here are ours, chosen for jets on a CPU.

Shapes: x (B, N, C), p4 (B, N, 4), mask (B, N) -> logits (B, num_classes).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hepnn.data.batch import Batch
from hepnn.data.graphs import knn
from hepnn.nn.graph import gather_neighbours, knn_adjacency, masked_softmax, neighbour_mask
from hepnn.nn.layers import masked_mean, mlp
from hepnn.registry import register_model


def eta_phi_knn(p4: Tensor, mask: Tensor, k: int) -> Tensor:
    """kNN neighbour indices of each particle in (Δη, Δφ). Shapes: (B, N, 4), (B, N) -> (B, N, k)."""
    from hepnn.data.features import particle_features

    return knn(particle_features(p4, mask, ["deta", "dphi"]), mask, k)


def normalized_adjacency(idx: Tensor, mask: Tensor, dtype: torch.dtype) -> Tensor:
    """GCN propagation matrix D̂^{-1/2}(A + I)D̂^{-1/2} of the symmetrized kNN graph.

    Shapes: idx (B, N, k), mask (B, N) -> (B, N, N); rows/columns of padded particles are 0.
    """
    adj = knn_adjacency(idx, mask, symmetric=True, self_loops=True, dtype=dtype)  # (B, N, N)
    d = adj.sum(-1).clamp_min(1.0).rsqrt() * mask.to(dtype)  # (B, N)
    return d.unsqueeze(2) * adj * d.unsqueeze(1)


class GCN(nn.Module):
    """Graph convolutional network: GCN layers, masked mean pooling, MLP head.

    Args:
        in_features, num_classes: input channels and logits. hidden: widths of the GCN layers.
        k: neighbours per particle. head: hidden widths of the jet-level MLP. dropout: in the head.
    """

    def __init__(
        self, *, in_features: int, num_classes: int, hidden: Sequence[int], k: int, head: Sequence[int], dropout: float
    ) -> None:
        super().__init__()
        self.k = k
        dims = [in_features, *hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.head = mlp([hidden[-1], *head, num_classes], dropout=dropout)

    def weights_read_directly(self) -> list[nn.Module]:
        """The graph-convolution layers: Â (h Wᵀ) + b is formed from their weights."""
        return list(self.layers)

    def forward(self, batch: Batch) -> Tensor:
        x, mask = batch.x, batch.mask.bool()
        a_hat = normalized_adjacency(eta_phi_knn(batch.p4.to(x.dtype), mask, self.k), mask, x.dtype)  # (B, N, N)
        keep = mask.unsqueeze(-1).to(x.dtype)  # (B, N, 1)
        h = x
        for layer in self.layers:
            h = torch.relu(a_hat @ (h @ layer.weight.T) + layer.bias) * keep  # (B, N, H)
        return self.head(masked_mean(h, mask))  # (B, K)


class GATLayer(nn.Module):
    """One multi-head graph attention layer over neighbour lists (heads concatenated).

    Logits and softmax run on the (1 + k) slots of each particle: itself, then its kNN list. For
    the weighted sum the weights are scattered into a dense (N × N) matrix per head and applied
    with one batched matmul, which on CPU is faster than gathering k copies of the features.

    Args:
        in_features: input channels. out_features: channels per head. heads: attention heads.
        negative_slope: of the LeakyReLU on the attention logits (0.2 in the paper).

    Shapes: x (B, N, C), idx (B, N, k) from ``knn``, mask (B, N) -> (B, N, heads * out_features);
    padded rows are 0.
    """

    def __init__(self, *, in_features: int, out_features: int, heads: int, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.heads, self.out_features, self.negative_slope = heads, out_features, negative_slope
        self.linear = nn.Linear(in_features, heads * out_features, bias=False)
        self.att_src = nn.Parameter(torch.empty(heads, out_features))
        self.att_dst = nn.Parameter(torch.empty(heads, out_features))
        self.bias = nn.Parameter(torch.zeros(heads * out_features))
        nn.init.xavier_uniform_(self.att_src)
        nn.init.xavier_uniform_(self.att_dst)

    def attention(self, x: Tensor, idx: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Attention weights over [self, kNN list]; per head they sum to 1 over the real slots.

        Slots that hold no real neighbour (the self fill of ``knn``, padded rows) get weight 0.
        Shapes: -> alpha (B, N, 1+k, H), slot indices (B, N, 1+k), W x as z (B, N, H, F).
        """
        b, n, _ = x.shape
        z = self.linear(x).view(b, n, self.heads, self.out_features)  # (B, N, H, F)
        self_idx = torch.arange(n, device=x.device).view(1, n, 1).expand(b, n, 1)
        nbr = torch.cat([self_idx, idx], dim=-1)  # (B, N, 1+k)
        valid = torch.cat([mask.bool().unsqueeze(-1), neighbour_mask(idx, mask)], dim=-1)  # (B, N, 1+k)
        s_i = (z * self.att_src).sum(-1)  # (B, N, H): the a_srcᵀ W h_i half of aᵀ[W h_i ‖ W h_j]
        s_j = gather_neighbours((z * self.att_dst).sum(-1), nbr)  # (B, N, 1+k, H)
        e = F.leaky_relu(s_i.unsqueeze(2) + s_j, self.negative_slope)  # (B, N, 1+k, H)
        return masked_softmax(e, valid.unsqueeze(-1), dim=2), nbr, z

    def forward(self, x: Tensor, idx: Tensor, mask: Tensor) -> Tensor:
        b, n, _ = x.shape
        alpha, nbr, z = self.attention(x, idx, mask)
        slots = nbr.unsqueeze(1).expand(b, self.heads, n, nbr.shape[-1])  # (B, H, N, 1+k)
        dense = alpha.new_zeros(b, self.heads, n, n).scatter_add(3, slots, alpha.permute(0, 3, 1, 2))  # (B, H, N, N)
        out = (dense @ z.transpose(1, 2)).transpose(1, 2).reshape(b, n, -1)  # (B, H, N, F) -> (B, N, H*F)
        return (out + self.bias) * mask.unsqueeze(-1).to(out.dtype)


class GAT(nn.Module):
    """Graph attention network: GAT layers (ELU), masked mean pooling, MLP head.

    Args:
        in_features, num_classes: input channels and logits. hidden: channels per head of each layer.
        heads: attention heads (concatenated). k: neighbours per particle.
        head: hidden widths of the jet-level MLP. dropout: in the head.
    """

    def __init__(
        self, *, in_features: int, num_classes: int, hidden: Sequence[int], heads: int, k: int,
        head: Sequence[int], dropout: float,
    ) -> None:
        super().__init__()
        self.k = k
        dims = [in_features, *(h * heads for h in hidden)]
        self.layers = nn.ModuleList(
            GATLayer(in_features=dims[i], out_features=h, heads=heads) for i, h in enumerate(hidden)
        )
        self.head = mlp([dims[-1], *head, num_classes], dropout=dropout)

    def forward(self, batch: Batch) -> Tensor:
        h, mask = batch.x, batch.mask.bool()
        idx = eta_phi_knn(batch.p4.to(h.dtype), mask, self.k)  # (B, N, k)
        for layer in self.layers:
            h = F.elu(layer(h, idx, mask))  # (B, N, heads*F); ELU(0) = 0 keeps padding at 0
        return self.head(masked_mean(h, mask))  # (B, K)


@register_model("gcn", inputs=("x", "p4", "mask"), family="gnn", tags=("permutation",))
def gcn(
    *,
    in_features: int = 7,
    num_classes: int = 2,
    hidden: Sequence[int] = (64, 128, 128),
    k: int = 16,
    head: Sequence[int] = (128,),
    dropout: float = 0.1,
) -> GCN:
    """Graph convolutional network (arXiv:1609.02907) on the kNN graph in (Δη, Δφ)."""
    return GCN(in_features=in_features, num_classes=num_classes, hidden=hidden, k=k, head=head, dropout=dropout)


@register_model("gat", inputs=("x", "p4", "mask"), family="gnn", tags=("permutation",))
def gat(
    *,
    in_features: int = 7,
    num_classes: int = 2,
    hidden: Sequence[int] = (16, 32, 32),
    heads: int = 4,
    k: int = 16,
    head: Sequence[int] = (128,),
    dropout: float = 0.1,
) -> GAT:
    """Graph attention network (arXiv:1710.10903), multi-head attention over kNN neighbours."""
    return GAT(in_features=in_features, num_classes=num_classes, hidden=hidden, heads=heads, k=k,
               head=head, dropout=dropout)
