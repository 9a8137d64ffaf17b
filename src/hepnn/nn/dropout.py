"""Dropout with a cheap random mask on CPUs (Srivastava et al., JMLR 15 (2014), inverted dropout).

``torch.nn.Dropout`` draws one Bernoulli variable per element with ``bernoulli_``, which on a CPU
costs ~14 ns per element: 15 % of a paper-size ParT training step (its attention weights alone are
B·H·N² per block). Here 64 random bits from ``torch.randint`` make four 16-bit lanes, and a lane
below ``round(p · 2¹⁶)`` drops its element: ~5× cheaper to draw. p is thereby rounded to a multiple
of 2⁻¹⁶ (0.1 becomes 0.100006). The kept elements are scaled by 1 / (1 − p) as in torch, the
mask is saved as bool (1 byte per element) for the backward pass, and the global RNG is used, so
a seeded run is reproducible. On GPUs ``F.dropout`` is already cheap and is used as is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_LANES = 4  # 16-bit lanes per random int64


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, device: torch.device) -> Tensor:
    """A bool mask of ``shape``, True (kept) with probability 1 − p, from 16-bit random lanes."""
    n = 1
    for s in shape:
        n *= s
    words = torch.randint(-(2**63), 2**63 - 1, ((n + _LANES - 1) // _LANES,), dtype=torch.int64, device=device)
    lanes = words.view(torch.int16)[:n].view(shape)  # uniform in [-2¹⁵, 2¹⁵)
    return lanes >= round(p * 2**16) - 2**15


class _MaskedScale(torch.autograd.Function):
    """y = x · keep / (1 − p); backward multiplies by the same saved bool mask."""

    @staticmethod
    def forward(ctx, x: Tensor, keep: Tensor, scale: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return torch.where(keep, x, 0.0).mul_(scale)  # where: ~1.5x faster than a float x bool product

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (keep,) = ctx.saved_tensors
        return torch.where(keep, grad, 0.0).mul_(ctx.scale), None, None


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Inverted dropout of ``x`` with probability ``p`` (identity when not training or p = 0)."""
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, True)
    return _MaskedScale.apply(x, keep_mask(x.shape, p, x.device), 1.0 / (1.0 - p))


class Dropout(nn.Module):
    """``nn.Dropout`` with the cheap CPU mask of ``dropout``. Shapes: any -> same."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must lie in [0, 1], got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
