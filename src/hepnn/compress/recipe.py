"""A quantized run's recipe: which Linear layers are int8 and how (quantization.json), applied on load.

A quantized model's weights are torchao tensor subclasses, not a plain state dict, so a quantized run
stores its float weights (model.safetensors) plus this recipe, and ``hepnn.runs.load_run``
re-quantizes them with ``apply_recipe``: no pickle. Making recipes (calibration, QAT) is
``hepnn.compress.quantize``; this module is what loading a run needs, and imports nothing of hepnn's
but its errors.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hepnn.errors import HepnnError, missing_extra

SCHEMES = ("int8_dynamic", "int8_static", "int8_qat")
RECIPE_FILE = "quantization.json"


def torchao_quantization() -> Any:
    # torchao logs a failed load for every CUDA-only kernel library on a CPU machine; not our news.
    logging.getLogger("torchao").setLevel(logging.ERROR)
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)  # torchao's enum registrations
    try:
        import torchao.quantization as q
    except ImportError:
        raise missing_extra("quant", "torchao") from None
    return q


def read_directly(model: nn.Module) -> set[int]:
    """ids of the layers whose weight their owner reads itself instead of calling the layer.

    Pruning masks (a hook on the layer's call) and int8 weights (a tensor subclass that only the
    layer's own ``F.linear`` understands) act through the call, so these layers are left out of both.
    A module declares them with ``weights_read_directly()``; torch's ``nn.MultiheadAttention`` reads
    ``out_proj.weight``.
    """
    ids = {id(m.out_proj) for m in model.modules() if isinstance(m, nn.MultiheadAttention)}
    for m in model.modules():
        declared = getattr(m, "weights_read_directly", None)
        if callable(declared):
            ids.update(id(layer) for layer in declared())
    return ids


def linear_layers(model: nn.Module) -> list[str]:
    """Qualified names of the nn.Linear layers torchao may quantize (those in ``read_directly`` skipped)."""
    skip = read_directly(model)
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and id(m) not in skip]


def apply_recipe(model: nn.Module, recipe: dict[str, Any]) -> nn.Module:
    """Quantize the float ``model`` in place as ``recipe`` says (QAT models: their fine-tuned weights)."""
    q = torchao_quantization()
    from torchao.quantization.granularity import PerRow, PerTensor

    layers = set(recipe["layers"])
    missing = layers - set(linear_layers(model))
    if missing:
        raise HepnnError(f"the quantization recipe names layers the model lacks: {sorted(missing)[:5]}")
    model.eval()
    if recipe["scheme"] in ("int8_dynamic", "int8_qat"):
        q.quantize_(model, q.Int8DynamicActivationInt8WeightConfig(), filter_fn=lambda m, fqn: fqn in layers)
        return model
    for name in recipe["layers"]:  # static: each layer has its own calibrated activation scale
        shape = (1,) * int(recipe["activation_ndim"][name])  # torchao wants the scale at the input's rank
        scale = torch.full(shape, float(recipe["activation_scales"][name]))
        config = q.Int8StaticActivationInt8WeightConfig(act_quant_scale=scale, granularity=[PerTensor(), PerRow()])
        q.quantize_(model, config, filter_fn=lambda m, fqn, name=name: fqn == name)
    return model


def load_recipe(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        recipe = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise HepnnError(f"{path} is not a readable quantization recipe ({err})") from None
    if recipe.get("scheme") not in SCHEMES:
        raise HepnnError(f"{path}: unknown scheme {recipe.get('scheme')!r}")
    return recipe
