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
re-quantized on load (``hepnn.compress.recipe``, applied by ``hepnn.runs.load_run``): no pickle.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

from hepnn.compress.recipe import RECIPE_FILE, SCHEMES, apply_recipe, linear_layers, torchao_quantization
from hepnn.data.batch import Batch
from hepnn.errors import HepnnError
from hepnn.io_utils import write_json_atomic
from hepnn.log import get_logger

log = get_logger(__name__)


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


def prepare_qat(model: nn.Module) -> nn.Module:
    """Insert fake quantizers: int8 weights per output channel, int8 activations per token."""
    q = torchao_quantization()
    from torchao.quantization.qat import IntxFakeQuantizeConfig, QATConfig

    act = IntxFakeQuantizeConfig(torch.int8, "per_token", is_symmetric=False)  # symmetric per token: unsupported
    weight = IntxFakeQuantizeConfig(torch.int8, "per_channel", is_symmetric=True)
    layers = set(linear_layers(model))
    q.quantize_(model, QATConfig(activation_config=act, weight_config=weight, step="prepare"),
                filter_fn=lambda m, fqn: fqn in layers)
    return model


def convert_qat(model: nn.Module) -> nn.Module:
    """Remove the fake quantizers, leaving plain Linear layers with the QAT-trained float weights."""
    q = torchao_quantization()
    from torchao.quantization.qat import QATConfig

    q.quantize_(model, QATConfig(step="convert"))
    return model


def quantize_run(run_dir: str | Path, out: str | Path, mode: str = "ptq", *, static: bool = False,
                 calib_jets: int = 2048, finetune_epochs: int = 2, progress: bool = False) -> dict[str, Any]:
    """Quantize a finished run into the run directory ``out`` and evaluate it.

    Args:
        mode: "ptq" (post-training; dynamic, or static with ``static=True``) or "qat".
        calib_jets: training jets whose activations set the static scales.
        finetune_epochs: QAT fine-tuning epochs.
    Returns the recipe plus the test metrics.
    """
    from hepnn.compress.rundir import finetune, finish_run, model_stats, start_run
    from hepnn.runs import load_run, load_run_data, make_loaders
    from hepnn.train.checkpoint import save_weights

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
