"""Int8 quantization of the Linear layers with torchao: dynamic and static PTQ, and QAT.

* dynamic PTQ: int8 weights (one scale per output row), activations quantized per token at run
  time (``Int8DynamicActivationInt8WeightConfig``); no data needed.
* static PTQ: activation scales fixed beforehand from calibration jets of the training split (the
  max |input| of every layer, one scale per layer; ``Int8StaticActivationInt8WeightConfig``).
* QAT: fake quantization of weights (per channel) and activations (per token) while fine-tuning
  through the normal engine, then converted to dynamic int8 (Jacob et al., arXiv:1712.05877).

torchao replaces ``torch.ao.quantization``, deprecated in torch 2.13. A quantized model's weights are
tensor subclasses, not a plain state dict, so a quantized run stores the float weights
(model.safetensors) plus the recipe (quantization.json: scheme, layers, calibrated scales) and is
re-quantized on load (``apply_recipe``, called by ``hepnn.evaluate.run.load_run``): no pickle.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

from hepnn.data.batch import Batch
from hepnn.errors import HepnnError, missing_extra
from hepnn.io_utils import write_json_atomic
from hepnn.log import get_logger

log = get_logger(__name__)

SCHEMES = ("int8_dynamic", "int8_static", "int8_qat")
RECIPE_FILE = "quantization.json"


def _torchao() -> Any:
    # torchao logs a failed load for every CUDA-only kernel library on a CPU machine; not our news.
    logging.getLogger("torchao").setLevel(logging.ERROR)
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)  # torchao's enum registrations
    try:
        import torchao.quantization as q
    except ImportError:
        raise missing_extra("quant", "torchao") from None
    return q


def linear_layers(model: nn.Module) -> list[str]:
    """Qualified names of the nn.Linear layers torchao may quantize (MultiheadAttention's own skipped)."""
    skip = {id(m.out_proj) for m in model.modules() if isinstance(m, nn.MultiheadAttention)}
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and id(m) not in skip]


@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable[Batch], layers: list[str]) -> dict[str, dict[str, Any]]:
    """Max |input| and input rank of every layer in ``layers`` over ``batches`` (eval mode)."""
    stats: dict[str, dict[str, Any]] = {n: {"absmax": 0.0, "ndim": None} for n in layers}
    modules = dict(model.named_modules())

    def hook(name: str):
        def fn(_m: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            x = args[0]
            stats[name]["absmax"] = max(stats[name]["absmax"], float(x.detach().abs().max()) if x.numel() else 0.0)
            stats[name]["ndim"] = x.ndim
        return fn

    handles = [modules[n].register_forward_pre_hook(hook(n)) for n in layers]
    model.eval()
    try:
        for batch in batches:
            model(batch)
    finally:
        for h in handles:
            h.remove()
    unseen = [n for n, s in stats.items() if s["ndim"] is None]
    if unseen:
        raise HepnnError(f"calibration never reached layers {unseen[:5]}: they cannot be statically quantized")
    return stats


def make_recipe(model: nn.Module, scheme: str, calibration: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The JSON recipe that re-creates a quantized model from its float weights."""
    if scheme not in SCHEMES:
        raise HepnnError(f"unknown quantization scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    if scheme == "int8_static" and calibration is None:
        raise HepnnError("static quantization needs calibration statistics (see calibrate)")
    recipe: dict[str, Any] = {"scheme": scheme, "dtype": "int8", "weight_granularity": "per_row",
                              "layers": linear_layers(model), "backend": "torchao"}
    if calibration is not None:
        recipe["activation_scales"] = {n: max(s["absmax"], 1e-8) / 127.0 for n, s in calibration.items()}
        recipe["activation_ndim"] = {n: s["ndim"] for n, s in calibration.items()}
    return recipe


def apply_recipe(model: nn.Module, recipe: dict[str, Any]) -> nn.Module:
    """Quantize the float ``model`` in place as ``recipe`` says (QAT models: their fine-tuned weights)."""
    q = _torchao()
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


def prepare_qat(model: nn.Module) -> nn.Module:
    """Insert fake quantizers: int8 weights per output channel, int8 activations per token."""
    q = _torchao()
    from torchao.quantization.qat import IntxFakeQuantizeConfig, QATConfig

    act = IntxFakeQuantizeConfig(torch.int8, "per_token", is_symmetric=False)  # symmetric per token: unsupported
    weight = IntxFakeQuantizeConfig(torch.int8, "per_channel", is_symmetric=True)
    layers = set(linear_layers(model))
    q.quantize_(model, QATConfig(activation_config=act, weight_config=weight, step="prepare"),
                filter_fn=lambda m, fqn: fqn in layers)
    return model


def convert_qat(model: nn.Module) -> nn.Module:
    """Remove the fake quantizers, leaving plain Linear layers with the QAT-trained float weights."""
    q = _torchao()
    from torchao.quantization.qat import QATConfig

    q.quantize_(model, QATConfig(step="convert"))
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


def quantize_run(run_dir: str | Path, out: str | Path, mode: str = "ptq", *, static: bool = False,
                 calib_jets: int = 2048, finetune_epochs: int = 2, progress: bool = False) -> dict[str, Any]:
    """Quantize a finished run into the run directory ``out`` and evaluate it.

    Args:
        mode: "ptq" (post-training; dynamic, or static with ``static=True``) or "qat".
        calib_jets: training jets whose activations set the static scales.
        finetune_epochs: QAT fine-tuning epochs.
    Returns the recipe plus the test metrics.
    """
    from hepnn.compress.rundir import finetune, finish_run, load_run_data, model_stats, start_run
    from hepnn.evaluate.run import load_run
    from hepnn.train.checkpoint import save_weights
    from hepnn.train.fit import make_loaders

    if mode not in ("ptq", "qat"):
        raise HepnnError(f"--quantize must be ptq or qat, got {mode!r}")
    run_dir, out = Path(run_dir), Path(out)
    cfg, model, _, _ = load_run(run_dir)
    if not isinstance(model, nn.Module):
        raise HepnnError("only torch models can be quantized")
    if (run_dir / RECIPE_FILE).is_file():
        raise HepnnError(f"{run_dir} is already quantized; quantize its parent run")
    cfg, pre, splits, kind, inputs = load_run_data(run_dir)
    cfg = start_run(out, cfg, parent=run_dir)
    float_stats = model_stats(model)
    calibration = None
    if mode == "qat":
        prepare_qat(model)
        finetune(cfg, model, splits, pre, out / "finetune", kind=kind, epochs=finetune_epochs, progress=progress)
        convert_qat(model)
    elif static:
        import numpy as np

        _, eval_loader = make_loaders(cfg, splits, pre, kind=kind, fields=(*inputs, "y"))
        sample = splits.train_sample.take(np.arange(min(calib_jets, len(splits.train_sample))))
        calibration = calibrate(model, eval_loader(sample), linear_layers(model))
    save_weights(model, out / "model.safetensors")  # the float weights; the recipe re-quantizes them
    scheme = "int8_qat" if mode == "qat" else "int8_static" if static else "int8_dynamic"
    recipe = make_recipe(model, scheme, calibration)
    write_json_atomic(out / RECIPE_FILE, recipe)
    apply_recipe(model, recipe)
    stats = {**model_stats(model), "n_params": float_stats["n_params"]}
    info = {"parent": str(run_dir), "compression": f"quantize {scheme}"}
    metrics = finish_run(out, cfg, model, pre, splits, kind, info, stats=stats)
    return {**recipe, "metrics": metrics}


def quantized_copy(model: nn.Module, scheme: str = "int8_dynamic") -> nn.Module:
    """A dynamically int8-quantized deep copy of a float model (for latency comparisons)."""
    return apply_recipe(copy.deepcopy(model).cpu().eval(), make_recipe(model, scheme))
