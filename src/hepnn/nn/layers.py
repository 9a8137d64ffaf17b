"""Small building blocks shared by the model zoo: MLP stacks and masked pooling over particles."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
}


def activation(name: str) -> nn.Module:
    """An activation module by name (relu, gelu, tanh, sigmoid, leaky_relu, elu, silu)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def mlp(
    dims: Sequence[int],
    *,
    act: str = "relu",
    norm: str = "none",
    dropout: float = 0.0,
    final_act: bool = False,
) -> nn.Sequential:
    """Linear layers ``dims[0] -> dims[1] -> ... -> dims[-1]`` with activation between them.

    Args:
        dims: layer widths including input and output.
        act: activation name. norm: "none", "batch" or "layer" (after each hidden Linear).
        dropout: dropout probability after each hidden activation.
        final_act: also apply norm/activation/dropout after the last Linear.

    Batch norm is only used on inputs of shape (B, C) (jet-level MLPs); per-particle stacks use
    "layer" norm, which never mixes padded particles into the statistics.
    """
    layers: list[nn.Module] = []
    n = len(dims) - 1
    for i in range(n):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < n - 1 or final_act:
            if norm == "batch":
                layers.append(nn.BatchNorm1d(dims[i + 1]))
            elif norm == "layer":
                layers.append(nn.LayerNorm(dims[i + 1]))
            elif norm != "none":
                raise ValueError(f"unknown norm {norm!r}; choose none, batch or layer")
            layers.append(activation(act))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def masked_sum(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum over particles of real entries. x (B, N, C), mask (B, N) -> (B, C)."""
    return (x * mask.unsqueeze(-1).to(x.dtype)).sum(dim=1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real particles (0 for an empty jet). x (B, N, C), mask (B, N) -> (B, C)."""
    n = mask.sum(dim=1, keepdim=True).clamp(min=1).to(x.dtype)  # (B, 1)
    return masked_sum(x, mask) / n


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over real particles (0 for an empty jet). x (B, N, C), mask (B, N) -> (B, C)."""
    filled = x.masked_fill(~mask.unsqueeze(-1), float("-inf"))
    out = filled.max(dim=1).values
    return torch.where(torch.isinf(out), torch.zeros_like(out), out)


POOLING = {"sum": masked_sum, "mean": masked_mean, "max": masked_max}


def masked_pool(x: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """Masked pooling by name: sum, mean or max. x (B, N, C) -> (B, C)."""
    if how not in POOLING:
        raise ValueError(f"unknown pooling {how!r}; choose from {', '.join(POOLING)}")
    return POOLING[how](x, mask)
