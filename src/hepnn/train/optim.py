"""Optimizers by name, with weight decay applied only to the weight matrices that should shrink.

===============  =========================================================================
name             update (g = gradient, lambda = weight decay, all in ``torch.optim``)
===============  =========================================================================
``sgd``          theta -= lr (g + lambda theta)
``momentum``     v = mu v + g;  theta -= lr v                                  (SGD, momentum mu)
``nesterov``     v = mu v + g;  theta -= lr (g + mu v)                         (Sutskever et al. 2013)
``adagrad``      G += g^2;  theta -= lr g / (sqrt(G) + eps)                    (Duchi et al. 2011)
``rmsprop``      E = 0.99 E + 0.01 g^2;  v = mu v + g / (sqrt(E) + eps);  theta -= lr v
                                                                               (Hinton, lecture 6e)
``adadelta``     Adadelta (arXiv:1212.5701); ``lr`` scales the step, 1.0 is the paper's choice;
                 first steps are ~sqrt(eps) lr, so eps = 1e-8 starts very slowly (1e-6..1e-4 work)
``adam``         m, v moving averages of g, g^2 (betas); theta -= lr m_hat / (sqrt(v_hat) + eps)
                 (arXiv:1412.6980); weight decay is added to g (L2, coupled)
``amsgrad``      Adam with v_hat = running max of v (Reddi et al., ICLR 2018)
``adamw``        Adam with decoupled decay theta -= lr lambda theta (arXiv:1711.05101)
===============  =========================================================================

Weight-decay rule (shared with the L1/L2 penalties in ``hepnn.train.regularize``): a parameter is
decayed iff it is a ``weight`` with ndim >= 2 held by a Linear, Conv, ConvTranspose, Bilinear or
MultiheadAttention module. Decay pulls a weight matrix toward zero, which limits how sharply the
layer can respond; for everything else it only does harm: biases and LayerNorm/BatchNorm scales set
offsets and scales that should not be pulled to 0, and embeddings, class tokens and positional
encodings (free ``nn.Parameter``s, often ndim >= 2) are lookup vectors, not maps. This is nanoGPT's
``dim >= 2`` rule plus minGPT's module whitelist, so a (1, 1, C) class token is not decayed.
A custom layer that wants decay on its own matrix should hold it in an ``nn.Linear``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import torch
from torch import nn

from hepnn.errors import ConfigError

OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam", "amsgrad", "adamw")

# Modules whose ``*weight`` matrices are maps x -> W x: they get weight decay (here) and the
# Glorot/He initialization (train/init.py).
WEIGHT_MODULES: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Bilinear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.MultiheadAttention,  # in_proj_weight or q/k/v_proj_weight; out_proj is an nn.Linear
)


def is_decayed(module: nn.Module, param_name: str, param: torch.Tensor) -> bool:
    """The weight-decay rule above, for one parameter held directly by ``module``."""
    return isinstance(module, WEIGHT_MODULES) and param_name.endswith("weight") and param.ndim >= 2


def named_trainable(model: nn.Module) -> Iterator[tuple[str, nn.Module, str, nn.Parameter]]:
    """(full name, owning module, local name, parameter) of each trainable parameter, shared ones once."""
    seen: set[int] = set()
    for prefix, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                yield (f"{prefix}.{pname}" if prefix else pname), module, pname, p


def split_decay_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Trainable parameters split into (decayed, not decayed) by the rule; shared ones appear once."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for _, module, pname, p in named_trainable(model):
        (decay if is_decayed(module, pname, p) else no_decay).append(p)
    return decay, no_decay


def parameter_groups(model: nn.Module, weight_decay: float, *, lr: float | None = None,
                     lr_factor: Callable[[str], float] | None = None) -> list[dict[str, Any]]:
    """Optimizer groups by (weight decay, learning-rate factor): decayed weights get ``weight_decay``,
    the rest 0; with ``lr_factor`` (parameter name -> factor, discriminative fine-tuning) each group's
    lr is ``lr`` times its factor. Frozen parameters are left out; empty groups are dropped."""
    groups: dict[tuple[bool, float], dict[str, Any]] = {}
    for name, module, pname, p in named_trainable(model):
        decayed = is_decayed(module, pname, p)
        factor = 1.0 if lr_factor is None else float(lr_factor(name))
        group = groups.setdefault((decayed, factor), {
            "params": [], "weight_decay": weight_decay if decayed else 0.0,
            "name": ("decay" if decayed else "no_decay") + (f" x{factor:g}" if lr_factor is not None else "")})
        if lr is not None and lr_factor is not None:
            group["lr"] = lr * factor
        group["params"].append(p)
    if not groups:
        raise ConfigError(f"{type(model).__name__} has no trainable parameters to optimize")
    return list(groups.values())


def build_optimizer(
    model: nn.Module,
    name: str,
    *,
    lr: float,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    lr_factor: Callable[[str], float] | None = None,
) -> torch.optim.Optimizer:
    """Build the optimizer ``name`` (table in the module doc) over two weight-decay groups.

    Args:
        model: its trainable parameters are optimized (frozen ones are left out).
        name: one of ``OPTIMIZER_NAMES``.
        lr: learning rate (for ``adadelta`` a multiplier of the step; 1.0 is the paper's value).
        weight_decay: lambda, applied only to the decayed group (module doc).
        momentum: mu for ``momentum``, ``nesterov`` and ``rmsprop`` (ignored by the others).
        betas: Adam-family moving-average coefficients.
        eps: denominator term of the adaptive optimizers.
        lr_factor: parameter name -> factor on ``lr`` for its group (default 1 for all).
    """
    groups = parameter_groups(model, weight_decay, lr=lr, lr_factor=lr_factor)
    opt = torch.optim
    makers = {
        "sgd": lambda: opt.SGD(groups, lr=lr, momentum=0.0),
        "momentum": lambda: opt.SGD(groups, lr=lr, momentum=momentum),
        "nesterov": lambda: opt.SGD(groups, lr=lr, momentum=momentum, nesterov=True),
        "adagrad": lambda: opt.Adagrad(groups, lr=lr, eps=eps),
        "rmsprop": lambda: opt.RMSprop(groups, lr=lr, momentum=momentum, eps=eps),
        "adadelta": lambda: opt.Adadelta(groups, lr=lr, eps=eps),
        "adam": lambda: opt.Adam(groups, lr=lr, betas=betas, eps=eps),
        "amsgrad": lambda: opt.Adam(groups, lr=lr, betas=betas, eps=eps, amsgrad=True),
        "adamw": lambda: opt.AdamW(groups, lr=lr, betas=betas, eps=eps),
    }
    if name not in makers:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZER_NAMES)}")
    if name == "nesterov" and momentum <= 0:
        raise ConfigError("optimizer 'nesterov' needs train.optimizer.momentum > 0")
    return makers[name]()
