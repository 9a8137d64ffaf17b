"""Normalization layers for padded particle sets."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MaskedBatchNorm(nn.Module):
    """Batch normalization whose statistics use real entries only (particles or edges).

    Ioffe & Szegedy, arXiv:1502.03167. ``nn.BatchNorm1d`` over padded particles would count the
    padding in the mean and variance, so the output would depend on how much padding a batch
    has. Here the batch statistics are averages over entries with ``mask`` True; running averages
    (momentum as in torch, unbiased variance) are used in eval mode.

    Masked-out entries are not zeroed (that would cost a pass over the tensor): they hold the same
    affine map of their input as real entries and never enter the statistics. Callers zero padded
    rows where a result leaves the layer stack (e.g. before pooling).

    Args:
        num_features: channels C (the last axis). eps, momentum: as in ``nn.BatchNorm1d``.

    Shapes: x (..., C), mask broadcastable to x.shape[:-1] bool -> (..., C).
    """

    def __init__(self, num_features: int, *, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        if self.training:
            mean, var = self._batch_stats(x, mask)
        else:
            mean, var = self.running_mean.to(x.dtype), self.running_var.to(x.dtype)
        scale = self.weight * torch.rsqrt(var + self.eps)  # (C,)
        return torch.addcmul(self.bias - mean * scale, x, scale)  # x * scale + shift in one pass

    def _batch_stats(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and biased variance over real entries, in float32 whatever the autocast (as torch's own
        batch norm: under fp16 the sums below overflow past 65,504 entries, ParT's pairs of one batch
        being ~10⁵); updates the running averages."""
        with torch.autocast(x.device.type, enabled=False):
            c = x.shape[-1]
            flat = x.reshape(-1, c)  # (M, C)
            flat = flat.float() if flat.dtype.itemsize < 4 else flat  # bf16/fp16 inputs; float64 stays
            w = mask.expand(x.shape[:-1]).reshape(-1).to(flat.dtype)  # (M,) 1 for real entries
            count = w.sum().clamp_min(1.0)
            mean = (w @ flat) / count  # (C,) a matrix-vector product: no masked copy of x
            d = flat - mean  # (M, C) centred first: E[x²] − E[x]² loses precision in float32
            var = (w @ (d * d)) / count  # (C,)
        with torch.no_grad():
            unbiased = var * count / (count - 1).clamp_min(1.0)
            self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
            self.running_var.lerp_(unbiased.detach().to(self.running_var.dtype), self.momentum)
        return mean, var


def batch_norm_rows(norm: MaskedBatchNorm, h: Tensor) -> Tensor:
    """``norm`` on rows that are all real (packed, no padding): torch's fused batch norm over every
    row of ``h (M, C)``, the same statistics and running averages as ``norm(h, mask)`` with a full mask."""
    if norm.training and h.shape[0] < 2:  # F.batch_norm needs two values per channel to train
        return norm(h, torch.ones(h.shape[0], dtype=torch.bool, device=h.device))
    return F.batch_norm(h, norm.running_mean, norm.running_var, norm.weight, norm.bias,
                        norm.training, norm.momentum, norm.eps)


def fold_into_linear(norm: MaskedBatchNorm, linear: nn.Linear, x: Tensor) -> tuple[Tensor, Tensor]:
    """``linear(norm(x))`` for rows ``x (M, C)`` that are all real, as one affine map ``x @ w.T + b``.

    The normalization is folded into the weights: w = W diag(γ / σ), b = b_W + W (β − μ γ / σ), with
    the batch statistics of ``x`` in training (running averages updated as ``F.batch_norm`` does)
    and the running ones in eval. For few input channels (ParT's 4 pair features) this saves the
    normalized copy of ``x`` and its backward pass; gradients reach γ and β through w and b.

    Shapes: x (M, C) -> w (D, C), b (D,).
    """
    if norm.training:
        mean, var = norm._batch_stats(x, torch.ones(x.shape[0], dtype=torch.bool, device=x.device))
    else:
        mean, var = norm.running_mean.to(x.dtype), norm.running_var.to(x.dtype)
    scale = norm.weight * torch.rsqrt(var + norm.eps)  # (C,)
    shift = norm.bias - mean * scale  # (C,)
    return linear.weight * scale, torch.addmv(linear.bias, linear.weight, shift)


def uses_batch_norm(model: nn.Module) -> bool:
    """Whether ``model`` normalizes with batch statistics anywhere (torch's or ``MaskedBatchNorm``)."""
    return any(isinstance(m, (nn.modules.batchnorm._BatchNorm, MaskedBatchNorm)) for m in model.modules())
