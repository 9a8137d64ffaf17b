"""Starting from weights: ``train.init_from``, the load report, frozen parameters, per-pattern
learning rates and linear probing (the lectures' answer for small datasets, beside Lorentz symmetry).

``init_from`` takes a run directory (its model.safetensors), a ``.safetensors`` file, or
``pretrained:NAME`` (a shipped backbone, sha256-checked: ``hepnn.pretrained``). Weights are matched
by state-dict name and shape. A module with any parameter of another shape (a head with another
number of classes) keeps its fresh initialization as a whole, so nothing is half-loaded; the load
report (``init_report.json``) lists what was loaded, what kept its initialization and why, and what
the source held that the model does not use. Nothing loaded at all is an error.

Parameter-name patterns (``train.freeze``, ``train.lr_factors``) are shell-style (``fnmatch``) on
names such as ``blocks.0.attn.in_proj_weight``; a pattern that matches nothing is an error.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from hepnn.errors import ConfigError, HepnnError
from hepnn.log import get_logger

log = get_logger(__name__)


def resolve_source(source: str) -> Path:
    """The safetensors file that ``init_from`` names (a run directory, a file, ``pretrained:NAME``)."""
    from hepnn import pretrained

    if source.startswith(pretrained.PREFIX):
        return pretrained.weights_path(source.removeprefix(pretrained.PREFIX))
    path = Path(source)
    if path.is_dir():
        weights = path / "model.safetensors"
        if not weights.is_file():
            raise ConfigError(f"train.init_from: {path} holds no model.safetensors; give a finished run "
                              "directory, a .safetensors file or pretrained:NAME (hepnn pretrained list)")
        return weights
    if path.suffix != ".safetensors" or not path.is_file():
        raise ConfigError(f"train.init_from: {source} is neither a run directory, an existing .safetensors file "
                          "nor pretrained:NAME (hepnn pretrained list)")
    return path


def load_init(model: nn.Module, source: str) -> dict[str, Any]:
    """Load the matching weights of ``source`` into ``model``; returns the load report."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = resolve_source(source)
    try:
        state = load_file(str(path))
    except SafetensorError as err:
        raise HepnnError(f"train.init_from: {path} is not a valid safetensors file ({err})") from None
    own = model.state_dict()
    mismatched = {k: (tuple(v.shape), tuple(own[k].shape)) for k, v in state.items() if k in own and v.shape != own[k].shape}
    # a module with any mismatched tensor keeps all of its fresh initialization: never half-loaded
    fresh_modules = {k.rpartition(".")[0] for k in mismatched}
    loadable = {k: v for k, v in state.items() if k in own and k not in mismatched and k.rpartition(".")[0] not in fresh_modules}
    if not loadable:
        raise HepnnError(f"train.init_from: {path} shares no tensor (same name and shape) with model "
                         f"{type(model).__name__}; its keys start {sorted(state)[:3]}, the model's {sorted(own)[:3]}")
    model.load_state_dict(loadable, strict=False)
    report = {
        "source": source, "file": str(path), "loaded": sorted(loadable),
        "initialized": sorted(k for k in own if k not in loadable),
        "shape_mismatch": {k: {"source": s, "model": m} for k, (s, m) in sorted(mismatched.items())},
        "reinitialized_with_module": sorted(k for k in own if k not in loadable and k in state and k not in mismatched),
        "unused": sorted(k for k in state if k not in own),
    }
    log.info("init_from %s: %d tensors loaded, %d initialized fresh (%d of another shape), %d unused in the source",
             source, len(report["loaded"]), len(report["initialized"]), len(mismatched), len(report["unused"]))
    return report


def matching(names: Sequence[str], patterns: Sequence[str], key: str) -> dict[str, list[str]]:
    """pattern -> the names it matches; a pattern that matches none is an error naming ``key``."""
    out = {p: [n for n in names if fnmatch.fnmatchcase(n, p)] for p in patterns}
    empty = [p for p, hits in out.items() if not hits]
    if empty:
        sample = ", ".join(list(names)[:6])
        raise ConfigError(f"{key}: pattern(s) {', '.join(empty)} match no parameter; names look like {sample}, ...")
    return out


def output_layer(build: Callable[[int], nn.Module], num_classes: int) -> list[str]:
    """Names of the parameters whose shape follows the number of classes (the output layer), found by
    building the model once more with one class more."""
    a = dict(build(num_classes).named_parameters())
    b = dict(build(num_classes + 1).named_parameters())
    return [k for k in a if k in b and a[k].shape != b[k].shape]


def freeze(model: nn.Module, patterns: Sequence[str], *, key: str = "train.freeze") -> list[str]:
    """Set ``requires_grad=False`` on every parameter matching ``patterns``; returns their names."""
    names = [n for n, _ in model.named_parameters()]
    frozen = sorted({n for hits in matching(names, patterns, key).values() for n in hits})
    params = dict(model.named_parameters())
    for n in frozen:
        params[n].requires_grad_(False)
    if len(frozen) == len(names):
        raise ConfigError(f"{key} freezes every parameter of the model; leave at least the head trainable")
    log.info("%s: %d of %d parameter tensors frozen", key, len(frozen), len(names))
    return frozen


def probe(model: nn.Module, head: Sequence[str]) -> list[str]:
    """Linear probing: freeze everything but the ``head`` parameters; returns the frozen names."""
    if not head:
        raise ConfigError("train.linear_probe: this model has no output layer sized by the number of classes")
    keep = set(head)
    frozen = [n for n, p in model.named_parameters() if n not in keep]
    for n, p in model.named_parameters():
        p.requires_grad_(n in keep)
    log.info("linear probe: training %s only, %d parameter tensors frozen", ", ".join(head), len(frozen))
    return frozen


def lr_factor_of(model: nn.Module, factors: Mapping[str, float]) -> Callable[[str], float]:
    """name -> the factor of the first pattern (in the order given) that matches it, else 1."""
    matching([n for n, _ in model.named_parameters()], list(factors), "train.lr_factors")

    def factor(name: str) -> float:
        return next((f for p, f in factors.items() if fnmatch.fnmatchcase(name, p)), 1.0)

    return factor


def trainable_count(model: nn.Module) -> tuple[int, int]:
    """(trainable, all) parameter counts."""
    return (sum(p.numel() for p in model.parameters() if p.requires_grad),
            sum(p.numel() for p in model.parameters()))
