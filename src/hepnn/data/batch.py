"""The ``Batch`` every model consumes (the contract in DESIGN.md).

Particles ``x (B, N, C)``; ``mask (B, N)`` bool, True = real particle; ``p4 (B, N, 4)`` as
(E, px, py, pz) in GeV; ``jet (B, F)`` jet-level features; ``image (B, 1, H, W)`` for CNNs;
``y`` targets; ``weight (B,)`` per-jet weights. Pair features are built on the fly inside the models
that need them and never stored. Fields a model does not read may be ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch


@dataclass
class Batch:
    x: torch.Tensor | None = None  # (B, N, C) float
    mask: torch.Tensor | None = None  # (B, N) bool
    p4: torch.Tensor | None = None  # (B, N, 4) float, (E, px, py, pz)
    jet: torch.Tensor | None = None  # (B, F) float
    image: torch.Tensor | None = None  # (B, 1, H, W) float
    y: torch.Tensor | None = None  # (B,) long for classes, (B,) or (B, T) float for regression
    weight: torch.Tensor | None = None  # (B,) float

    def __len__(self) -> int:
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None:
                return int(v.shape[0])
        return 0

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        """Move every tensor to ``device`` (pinned host memory makes ``non_blocking`` real)."""
        return replace(
            self,
            **{
                f.name: getattr(self, f.name).to(device, non_blocking=non_blocking)
                for f in fields(self)
                if getattr(self, f.name) is not None
            },
        )

    def pin_memory(self) -> "Batch":
        return replace(
            self,
            **{f.name: getattr(self, f.name).pin_memory() for f in fields(self) if getattr(self, f.name) is not None},
        )

    def __getitem__(self, index: slice | torch.Tensor) -> "Batch":
        """Select jets (rows) from every present field."""
        return replace(
            self,
            **{f.name: getattr(self, f.name)[index] for f in fields(self) if getattr(self, f.name) is not None},
        )
