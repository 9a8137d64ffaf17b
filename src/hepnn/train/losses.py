"""Loss functions for classification and regression, with class and per-jet weights.

Every loss built here has the signature ``loss(output, target, weight=None) -> scalar`` and is the
*weighted mean* of per-jet losses ``l_i``::

    L = sum_i w_i l_i / sum_i w_i,    w_i = class_weight[target_i] * jet_weight_i

(either factor is 1 when absent). With class weights only this is exactly what
``torch.nn.functional.cross_entropy(weight=...)`` computes; with neither it is the plain mean.

==========  =====================================  =========================================
name        per-jet loss l_i                       output / target
==========  =====================================  =========================================
``ce``      -log softmax(z_i)[y_i]                 logits (B, K), K >= 2; long (B,)
``bce``     -[y log s(z) + (1-y) log(1-s(z))]      one logit (B,) or (B, 1); 0/1 (B,)
``mse``     mean_t (yhat_it - y_it)^2              (B,) or (B, T); same shape (or (B,) vs (B, 1))
``mae``     mean_t |yhat_it - y_it|                as mse
``huber``   mean_t h_delta(yhat_it - y_it)         as mse; h = r^2/2 if |r| < delta else
                                                   delta (|r| - delta/2)
``perceptron`` max(0, -t_i s_i), t = 2y - 1,       two logits (B, 2), s = z_1 - z_0; 0/1 (B,)
            Rosenblatt's criterion                 (a wrong side costs its distance, a right one 0)
==========  =====================================  =========================================

Convention for ``"auto"`` (see :func:`resolve_loss_name`): classification (``num_classes >= 2``),
binary included, uses ``ce`` over ``num_classes`` logits, and the signal score of a binary tagger is
``softmax(z)[:, 1]`` as in ParticleNet (arXiv:1902.08570) and ParT (arXiv:2202.03772). Regression
(``num_classes == 1``) uses ``mse``. ``bce`` is for single-logit models and is chosen explicitly.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from hepnn.errors import ConfigError

LOSS_NAMES = ("ce", "bce", "perceptron", "mse", "mae", "huber")
CLASSIFICATION_LOSSES = ("ce", "bce", "perceptron")

LossFn = Callable[[Tensor, Tensor, "Tensor | None"], Tensor]


def resolve_loss_name(name: str, num_classes: int) -> str:
    """``"auto"`` -> ``"ce"`` for classification (num_classes >= 2), ``"mse"`` for regression."""
    if name == "auto":
        return "ce" if num_classes >= 2 else "mse"
    if name not in LOSS_NAMES:
        raise ConfigError(f"unknown loss {name!r}; choose one of auto, {', '.join(LOSS_NAMES)}")
    return name


def balanced_class_weights(labels: Tensor, num_classes: int) -> Tensor:
    """Class weights ``n / (K * n_c)`` that make every class count equally (scikit-learn's "balanced").

    Shapes: labels (B,) integer -> weights (K,) float32. A class absent from ``labels`` gets weight 0.
    """
    counts = torch.bincount(labels.long().reshape(-1), minlength=num_classes).double()  # (K,)
    weights = torch.where(counts > 0, labels.numel() / (num_classes * counts.clamp(min=1)), 0.0)
    return weights.float()


def _per_jet_ce(output: Tensor, target: Tensor) -> Tensor:
    if output.ndim != 2 or output.shape[1] < 2:
        raise ValueError(f"loss 'ce' wants logits of shape (B, K>=2), got {tuple(output.shape)}")
    return F.cross_entropy(output, target.long(), reduction="none")  # (B,)


def _per_jet_bce(output: Tensor, target: Tensor) -> Tensor:
    if output.ndim == 2 and output.shape[1] == 1:
        output = output[:, 0]  # (B, 1) -> (B,)
    if output.ndim != 1:
        raise ValueError(f"loss 'bce' wants one logit per jet, (B,) or (B, 1), got {tuple(output.shape)}")
    return F.binary_cross_entropy_with_logits(output, target.reshape(-1).to(output.dtype), reduction="none")


def _per_jet_perceptron(output: Tensor, target: Tensor) -> Tensor:
    if output.ndim != 2 or output.shape[1] != 2:
        raise ValueError(f"loss 'perceptron' wants two logits (B, 2), got {tuple(output.shape)}")
    margin = output[:, 1] - output[:, 0]  # (B,) signed distance from the decision boundary
    sign = 2.0 * target.reshape(-1).to(output.dtype) - 1.0  # (B,) +1 signal, -1 background
    return torch.relu(-sign * margin)


def _match_regression(output: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Bring (B,), (B, 1) and (B, T) outputs and targets to a common (B, T) shape."""
    output = output.reshape(output.shape[0], -1)  # (B, T)
    target = target.reshape(target.shape[0], -1).to(output.dtype)  # (B, T)
    if output.shape != target.shape:
        raise ValueError(f"regression output {tuple(output.shape)} and target {tuple(target.shape)} differ")
    return output, target


def _per_jet_regression(kind: str, huber_delta: float) -> Callable[[Tensor, Tensor], Tensor]:
    elementwise = {
        "mse": lambda o, t: F.mse_loss(o, t, reduction="none"),
        "mae": lambda o, t: F.l1_loss(o, t, reduction="none"),
        "huber": lambda o, t: F.huber_loss(o, t, reduction="none", delta=huber_delta),
    }[kind]

    def per_jet(output: Tensor, target: Tensor) -> Tensor:
        output, target = _match_regression(output, target)
        return elementwise(output, target).mean(dim=1)  # (B, T) -> (B,)

    return per_jet


def build_loss(
    name: str,
    *,
    num_classes: int,
    class_weights: Tensor | None = None,
    huber_delta: float = 1.0,
) -> LossFn:
    """Build ``loss(output, target, weight=None) -> scalar``, the weighted mean of per-jet losses.

    Args:
        name: one of ``auto``, ``ce``, ``bce``, ``mse``, ``mae``, ``huber`` (table in the module doc).
        num_classes: classes of the task (1 = regression); decides ``auto`` and checks class weights.
        class_weights: (K,) weights per class (K = 2 for ``bce``), multiplied into w_i as
            ``class_weights[target_i]``; classification only.
        huber_delta: the Huber transition point delta (in target units).

    Shapes: output as in the table; target (B,) or (B, T); weight (B,) per-jet weights or None.
    """
    name = resolve_loss_name(name, num_classes)
    _check_task(name, num_classes)
    if name == "ce":
        per_jet = _per_jet_ce
    elif name == "bce":
        per_jet = _per_jet_bce
    elif name == "perceptron":
        per_jet = _per_jet_perceptron
    else:
        per_jet = _per_jet_regression(name, huber_delta)
    cw = _check_class_weights(name, num_classes, class_weights)

    def loss(output: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
        l = per_jet(output, target)  # (B,)
        w = torch.ones_like(l) if weight is None else weight.reshape(-1).to(l.dtype)  # (B,)
        if cw is not None:
            w = w * cw.to(device=l.device, dtype=l.dtype)[target.reshape(-1).long()]
        return (w * l).sum() / w.sum()

    loss.__name__ = f"loss_{name}"
    return loss


def _check_task(name: str, num_classes: int) -> None:
    if name == "ce" and num_classes < 2:
        raise ConfigError("loss 'ce' is for classification (data.num_classes >= 2); use mse, mae or huber")
    if name in ("bce", "perceptron") and num_classes != 2:
        raise ConfigError(f"loss 'bce' is for binary classification, the task has {num_classes} classes; use 'ce'")
    if name not in CLASSIFICATION_LOSSES and num_classes != 1:
        raise ConfigError(f"loss {name!r} is for regression (data.num_classes = 1); use 'ce' for classification")


def _check_class_weights(name: str, num_classes: int, class_weights: Tensor | None) -> Tensor | None:
    if class_weights is None:
        return None
    if name not in CLASSIFICATION_LOSSES:
        raise ConfigError(f"class weights apply to classification losses only, not to {name!r}")
    cw = torch.as_tensor(class_weights, dtype=torch.float32).reshape(-1)
    expected = 2 if name == "bce" else num_classes
    if cw.numel() != expected:
        raise ConfigError(f"train.class_weights has {cw.numel()} entries, the task has {expected} classes")
    if (cw < 0).any():
        raise ConfigError(f"train.class_weights must be non-negative, got {cw.tolist()}")
    return cw


def scores_from_output(output: Tensor, loss_name: str) -> Tensor:
    """Turn raw model outputs into scores: signal probability, class probabilities or the regression value.

    ``ce`` with 2 classes -> softmax(z)[:, 1], shape (B,); ``ce`` with K > 2 -> softmax(z), shape (B, K);
    ``bce`` -> sigmoid(z), shape (B,); regression losses -> the output unchanged. ``loss_name`` must be
    resolved (not ``"auto"``; see :func:`resolve_loss_name`).
    """
    if loss_name in ("ce", "perceptron"):
        probs = torch.softmax(output, dim=-1)  # (B, K)
        return probs[:, 1] if probs.shape[-1] == 2 else probs
    if loss_name == "bce":
        return torch.sigmoid(output.reshape(output.shape[0]))  # (B,)
    if loss_name in LOSS_NAMES:
        return output
    raise ConfigError(f"scores_from_output needs a resolved loss name ({', '.join(LOSS_NAMES)}), got {loss_name!r}")
