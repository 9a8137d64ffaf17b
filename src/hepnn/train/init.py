"""Weight initialization schemes for Linear, Conv and attention-projection weights (biases set to 0).

fan_in = in_features x kernel size, fan_out = out_features x kernel size (``nn.init`` conventions).

==================  ====================================================  ======================
scheme              weights W                                             reference
==================  ====================================================  ======================
``default``         left as PyTorch initialized them (biases too)
``glorot_uniform``  U(-a, a),  a = sqrt(6 / (fan_in + fan_out))           Glorot & Bengio 2010
``glorot_normal``   N(0, s^2), s = sqrt(2 / (fan_in + fan_out))           Glorot & Bengio 2010
``he_uniform``      U(-a, a),  a = sqrt(6 / fan_in)                       arXiv:1502.01852
``he_normal``       N(0, s^2), s = sqrt(2 / fan_in)                       arXiv:1502.01852
==================  ====================================================  ======================

Glorot keeps the activation variance constant through symmetric, saturating activations
(tanh, sigmoid); He doubles it to make up for ReLU zeroing half of its inputs
(:func:`recommended_init`). Norm layers, embeddings and free parameters (class tokens) keep their
own initialization.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from hepnn.train.optim import WEIGHT_MODULES

from hepnn.errors import ConfigError

INIT_SCHEMES = ("default", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal")

_INITIALIZERS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "glorot_uniform": nn.init.xavier_uniform_,
    "glorot_normal": nn.init.xavier_normal_,
    # gain sqrt(2) with mode fan_in: exactly the He formulas in the table (independent of the act.)
    "he_uniform": lambda w: nn.init.kaiming_uniform_(w, mode="fan_in", nonlinearity="relu"),
    "he_normal": lambda w: nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu"),
}


_RELU_LIKE = {"relu", "relu6", "leaky_relu", "leakyrelu", "prelu", "rrelu", "elu", "celu", "gelu", "silu",
              "swish", "mish", "softplus", "hardswish"}
_SATURATING = {"tanh", "sigmoid", "hardtanh", "hardsigmoid", "softsign", "linear", "identity", "none"}


def init_weights(model: nn.Module, scheme: str) -> nn.Module:
    """Re-initialize every Linear/Conv/Bilinear/MultiheadAttention weight with ``scheme``, biases to 0.

    Args:
        model: modified in place (and returned).
        scheme: one of ``INIT_SCHEMES`` (table in the module doc); ``default`` changes nothing.
    """
    if scheme not in INIT_SCHEMES:
        raise ConfigError(f"unknown init scheme {scheme!r}; choose one of {', '.join(INIT_SCHEMES)}")
    if scheme == "default":
        return model
    fill = _INITIALIZERS[scheme]
    with torch.no_grad():
        for module in model.modules():
            if not isinstance(module, WEIGHT_MODULES):
                continue
            # MultiheadAttention holds in_proj_weight (3E, E) or q/k/v_proj_weight; out_proj is a Linear.
            for pname, p in module.named_parameters(recurse=False):
                if pname.endswith("weight") and p.ndim >= 2:
                    fill(p)
                elif pname.endswith("bias"):
                    p.zero_()
    return model


def recommended_init(activation: str | nn.Module | type[nn.Module]) -> str:
    """The init scheme that suits an activation: ReLU-like -> ``he_normal``, tanh/sigmoid -> ``glorot_uniform``.

    ``activation`` is a name (``"relu"``, ``"gelu"``, ``"tanh"``...), a module or a module class.
    """
    if isinstance(activation, str):
        key = activation
    else:
        key = (activation if isinstance(activation, type) else type(activation)).__name__
    key = key.lower().replace("-", "_")
    if key in _RELU_LIKE:
        return "he_normal"
    if key in _SATURATING:
        return "glorot_uniform"
    known = ", ".join(sorted(_RELU_LIKE | _SATURATING))
    raise ConfigError(f"no recommended init for activation {activation!r}; known: {known}")
