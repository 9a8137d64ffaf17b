"""Convolutional network on jet images (DeepTop-style).

Kasieczka, Plehn, Russell, Schell, "Deep-learning top taggers or the end of QCD?", arXiv:1701.08784;
de Oliveira et al., "Jet-images — deep learning edition", arXiv:1511.05190.

Images are built per batch by the loader (``hepnn.data.images.jet_images``: centred, rotated to
the principal axis, flipped, intensity = pT). Translation symmetry of the calorimeter is what the
convolution exploits. Shapes: image (B, 1, H, W) -> (B, num_classes).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from hepnn.data.batch import Batch
from hepnn.nn.layers import activation, mlp
from hepnn.registry import register_model


class JetCNN(nn.Module):
    """Blocks of two convolutions followed by 2x2 pooling, then a dense head."""

    def __init__(
        self,
        *,
        image_size: int,
        num_classes: int,
        channels: Sequence[int] = (8, 8, 8, 8),
        kernel: int = 4,
        pool: str = "max",
        dense: Sequence[int] = (64, 256, 256),
        act: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if pool not in ("max", "avg"):
            raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
        layers: list[nn.Module] = []
        c_in, size = 1, image_size
        left = (kernel - 1) // 2  # "same" padding, also for the paper's even 4x4 kernels
        same = (left, kernel - 1 - left, left, kernel - 1 - left)
        for i, c in enumerate(channels):
            layers += [nn.ZeroPad2d(same), nn.Conv2d(c_in, c, kernel), activation(act)]
            c_in = c
            if i % 2 == 1:  # pool after every second convolution
                layers.append(nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2))
                size //= 2
        self.features = nn.Sequential(*layers)
        self.head = mlp([c_in * size * size, *dense, num_classes], act=act, dropout=dropout)

    def forward(self, batch: Batch) -> torch.Tensor:
        h = self.features(batch.image)  # (B, C, H', W')
        return self.head(h.flatten(1))  # (B, C*H'*W') -> (B, K)


@register_model("cnn", inputs=("image",), family="cnn")
def cnn(
    *,
    image_size: int = 40,
    num_classes: int = 2,
    channels: Sequence[int] = (8, 8, 8, 8),
    kernel: int = 4,
    pool: str = "max",
    dense: Sequence[int] = (64, 256, 256),
    act: str = "relu",
    dropout: float = 0.0,
) -> JetCNN:
    """CNN on 40x40 jet images (DeepTop, arXiv:1701.08784): 4 conv layers of 8 4x4 filters, max pooling."""
    return JetCNN(image_size=image_size, num_classes=num_classes, channels=channels, kernel=kernel,
                  pool=pool, dense=dense, act=act, dropout=dropout)
