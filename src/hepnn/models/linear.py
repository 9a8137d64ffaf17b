"""Linear models on jet-level features: linear regression, logistic regression, the perceptron.

The lectures' starting point: a single neuron ``y = w . x + b`` is a linear discriminant. Logistic
regression adds a sigmoid/softmax and the cross-entropy loss; linear regression the MSE.
"""

from __future__ import annotations

import torch
from torch import nn

from hepnn.data.batch import Batch
from hepnn.registry import register_model


class LinearModel(nn.Module):
    """``y = W x + b`` on jet-level features. x (B, F) -> (B, num_classes)."""

    def __init__(self, *, jet_features: int, num_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(jet_features, num_classes)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.linear(batch.jet)  # (B, K)


@register_model("logistic", inputs=("jet",), family="linear")
def logistic(*, jet_features: int = 5, num_classes: int = 2) -> LinearModel:
    """Logistic regression on jet-level features (softmax over classes, cross-entropy loss)."""
    return LinearModel(jet_features=jet_features, num_classes=num_classes)


@register_model("linear", inputs=("jet",), family="linear")
def linear(*, jet_features: int = 5, num_classes: int = 1) -> LinearModel:
    """Linear regression on jet-level features (use with an MSE/MAE loss)."""
    return LinearModel(jet_features=jet_features, num_classes=num_classes)


@register_model("perceptron", inputs=("jet",), family="linear")
def perceptron(*, jet_features: int = 5, num_classes: int = 2) -> LinearModel:
    """Rosenblatt's perceptron: one linear unit thresholded at zero (train with loss: perceptron)."""
    return LinearModel(jet_features=jet_features, num_classes=num_classes)
