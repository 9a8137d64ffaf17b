"""PointNet for jets: a shared per-particle MLP and a symmetric (max) pooling.

Qi et al., "PointNet: Deep Learning on Point Sets for 3D Classification and Segmentation",
arXiv:1612.00593.

    x̃_i = x_i T(x)                       optional input transform (T-Net), off by default
    y   = γ( max_i h(x̃_i) )              h: shared MLP, max over real particles (masked)

The paper's shared MLP is (64, 64, 64, 128, 1024) with a (512, 256) head; the defaults here,
(64, 128, 256) and (128,), are a CPU-sized version. Normalization is left out (BatchNorm over
padded particles would break padding invariance; the MLP trains well without it on jets).

Shapes: x (B, N, C), mask (B, N) -> logits (B, num_classes).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from hepnn.data.batch import Batch
from hepnn.nn.layers import masked_max, mlp
from hepnn.registry import register_model


class TNet(nn.Module):
    """Input transform network: a small PointNet that predicts a C×C matrix, near identity at start.

    Shapes: x (B, N, C), mask (B, N) -> T (B, C, C).
    """

    def __init__(self, *, in_features: int, shared: Sequence[int] = (64, 128), fc: Sequence[int] = (64,)) -> None:
        super().__init__()
        self.c = in_features
        self.shared = mlp([in_features, *shared], final_act=True)
        self.fc = mlp([shared[-1], *fc, in_features * in_features])
        last = self.fc[-1]
        nn.init.normal_(last.weight, std=1e-3)  # small, not zero: every parameter gets a gradient
        nn.init.zeros_(last.bias)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        t = self.fc(masked_max(self.shared(x), mask)).view(-1, self.c, self.c)  # (B, C, C)
        return t + torch.eye(self.c, dtype=x.dtype, device=x.device)


class PointNet(nn.Module):
    """PointNet classifier: [T-Net], shared MLP, masked max pooling, MLP head.

    Args:
        in_features: particle channels C. num_classes: logits.
        shared: widths of the per-particle MLP. head: hidden widths of the jet-level MLP.
        dropout: in the head. input_transform: learn a C×C input transform (T-Net).
    """

    def __init__(
        self,
        *,
        in_features: int,
        num_classes: int,
        shared: Sequence[int] = (64, 128, 256),
        head: Sequence[int] = (128,),
        dropout: float = 0.1,
        input_transform: bool = False,
    ) -> None:
        super().__init__()
        self.tnet = TNet(in_features=in_features) if input_transform else None
        self.shared = mlp([in_features, *shared], final_act=True)
        self.head = mlp([shared[-1], *head, num_classes], dropout=dropout)

    def forward(self, batch: Batch) -> Tensor:
        x, mask = batch.x, batch.mask.bool()
        if self.tnet is not None:
            x = x @ self.tnet(x, mask)  # (B, N, C) @ (B, C, C); padded rows stay 0
        return self.head(masked_max(self.shared(x), mask))  # (B, N, L) -> (B, L) -> (B, K)


@register_model("pointnet", inputs=("x", "mask"), family="pointcloud", tags=("permutation",))
def pointnet(
    *,
    in_features: int = 7,
    num_classes: int = 2,
    shared: Sequence[int] = (64, 128, 256),
    head: Sequence[int] = (128,),
    dropout: float = 0.1,
    input_transform: bool = False,
) -> PointNet:
    """PointNet (arXiv:1612.00593): shared MLP (64,128,256), masked max pooling, head (128,)."""
    return PointNet(in_features=in_features, num_classes=num_classes, shared=shared, head=head,
                    dropout=dropout, input_transform=input_transform)
