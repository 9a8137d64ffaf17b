"""Explicit regularization terms added to a task's loss (the engine multiplies each by its lambda).

=====================  ====================================================  =========================
name                   term                                                  config key (lambda)
=====================  ====================================================  =========================
``l1_penalty``         sum_W sum_ij |W_ij|                                   ``train.l1``
``l2_penalty``         sum_W sum_ij W_ij^2  (no 1/2)                         ``train.l2``
``gradient_penalty``   (1/B) sum_b || d yhat_b / d x_b ||^2                  ``train.grad_penalty``
=====================  ====================================================  =========================

The sums over W run over the same weights that get weight decay (``hepnn.train.optim``: weight
matrices of Linear/Conv/attention layers; never biases, norm parameters, embeddings or class tokens).
``l2`` with SGD equals weight decay 2 lambda; with Adam it differs from AdamW's decoupled decay.

The gradient penalty (input-gradient regularization, Drucker & LeCun 1992; arXiv:1711.09404) makes
the output insensitive to small input changes, e.g. to calibration shifts of the particle features.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hepnn.train.optim import split_decay_parameters


def _decayed_weights(model: nn.Module) -> list[nn.Parameter]:
    decay, _ = split_decay_parameters(model)
    return decay


def _zero_like(model: nn.Module) -> Tensor:
    p = next(model.parameters(), None)
    return torch.zeros(()) if p is None else p.new_zeros(())


def l1_penalty(model: nn.Module) -> Tensor:
    """Sum of |W_ij| over the decayed weights; a scalar tensor on the model's device (0 if none)."""
    weights = _decayed_weights(model)
    if not weights:
        return _zero_like(model)
    return torch.stack([w.abs().sum() for w in weights]).sum()


def l2_penalty(model: nn.Module) -> Tensor:
    """Sum of W_ij^2 over the decayed weights; a scalar tensor on the model's device (0 if none)."""
    weights = _decayed_weights(model)
    if not weights:
        return _zero_like(model)
    return torch.stack([w.square().sum() for w in weights]).sum()


def gradient_penalty(output: Tensor, inputs: Tensor) -> Tensor:
    """Mean over jets of the squared norm of the gradient of the per-jet output with respect to its inputs.

    The graph is kept (``create_graph=True``) so the penalty can be back-propagated into the model.
    Gradients of ``output.sum()`` give each jet's own gradient as long as jets do not interact
    (BatchNorm in training mode couples them slightly). For padded particles the gradient is whatever
    the model gives, which is 0 for a model whose output ignores padding (the padding contract).

    Args:
        output: one scalar per jet, e.g. the signal logit or score of a classifier.
        inputs: the tensor the model read, created with ``requires_grad_(True)`` before the forward.

    Shapes: output (B,) or (B, 1); inputs (B, ...), e.g. (B, N, C) -> scalar.
    """
    if output.ndim == 2 and output.shape[1] == 1:
        output = output[:, 0]  # (B, 1) -> (B,)
    if output.ndim != 1 or output.shape[0] != inputs.shape[0]:
        raise ValueError(f"gradient_penalty wants one output per jet (B,), got {tuple(output.shape)}")
    if not inputs.requires_grad:
        raise ValueError("gradient_penalty: call inputs.requires_grad_(True) before the model's forward pass")
    (grad,) = torch.autograd.grad(output.sum(), inputs, create_graph=True)  # same shape as inputs
    return grad.reshape(grad.shape[0], -1).square().sum(dim=1).mean()  # (B, ...) -> (B,) -> scalar
