"""Fully connected network on jet-level features (mass, pT, N-subjettiness ratios, ...)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from hepnn.data.batch import Batch
from hepnn.nn.layers import mlp as mlp_stack
from hepnn.registry import register_model


class MLP(nn.Module):
    """Multi-layer perceptron. jet (B, F) -> (B, num_classes)."""

    def __init__(
        self,
        *,
        jet_features: int,
        num_classes: int,
        hidden: Sequence[int] = (64, 64, 64),
        act: str = "relu",
        norm: str = "none",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.net = mlp_stack([jet_features, *hidden, num_classes], act=act, norm=norm, dropout=dropout)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.net(batch.jet)  # (B, K)


@register_model("mlp", inputs=("jet",), family="mlp")
def mlp(
    *,
    jet_features: int = 5,
    num_classes: int = 2,
    hidden: Sequence[int] = (64, 64, 64),
    act: str = "relu",
    norm: str = "none",
    dropout: float = 0.0,
) -> MLP:
    """MLP on jet-level features; ``norm`` none/batch/layer, ``dropout`` after each hidden layer."""
    return MLP(jet_features=jet_features, num_classes=num_classes, hidden=hidden, act=act, norm=norm, dropout=dropout)
