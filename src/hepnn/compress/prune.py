"""Magnitude pruning: iterative, to a target sparsity, fine-tuned in between, then made permanent.

Han et al., "Learning both Weights and Connections for Efficient Neural Networks" (arXiv:1506.02626):
remove the smallest-magnitude weights, retrain, repeat. The sparsity after step k of K follows the
cubic schedule of Zhu & Gupta (arXiv:1710.01878), s_k = s (1 - (1 - k/K)^3): large cuts early,
while the network still has redundancy, small ones at the end.

* unstructured: global L1 over the weights of every Linear/Conv layer
  (``torch.nn.utils.prune.global_unstructured``), so layers with many small weights lose more;
* structured: L2 norm of whole output channels per layer (``prune.ln_structured``, dim 0); the
  last layer (the class logits) is left whole, since removing a row would delete a class.

During fine-tuning the masks stay in place as forward pre-hooks (``weight = weight_orig * mask``), so
pruned weights stay zero through the optimizer steps; ``make_permanent`` folds them in at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn
from torch.nn.utils import prune

from hepnn.compress.recipe import read_directly
from hepnn.errors import HepnnError
from hepnn.log import get_logger

log = get_logger(__name__)

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every Linear/Conv layer with a weight, in module order.

    Layers whose weight their owner reads itself (``hepnn.compress.recipe.read_directly``) are
    skipped: the hook that re-applies the mask runs only when the layer is called.
    """
    skip = read_directly(model)
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, PRUNABLE) and id(m) not in skip and getattr(m, "weight", None) is not None]


def cubic_schedule(sparsity: float, steps: int) -> list[float]:
    """Target sparsity after each of ``steps`` steps (Zhu & Gupta, arXiv:1710.01878); the last is ``sparsity``."""
    if not 0 <= sparsity < 1:
        raise HepnnError(f"--prune must be a fraction in [0, 1), got {sparsity}")
    if steps < 1:
        raise HepnnError(f"--steps must be at least 1, got {steps}")
    return [sparsity * (1 - (1 - k / steps) ** 3) for k in range(1, steps + 1)]


def prune_step(model: nn.Module, target: float, previous: float = 0.0, *, structured: bool = False) -> None:
    """Prune ``model`` from sparsity ``previous`` to ``target`` (fractions of the prunable weights).

    torch's pruning containers apply a new amount to the still-unpruned weights (or channels), so
    the step removes the fraction 1 - (1 - target) / (1 - previous) of what is left.
    """
    amount = 1.0 - (1.0 - target) / (1.0 - previous)
    if amount <= 0:
        return
    layers = prunable_layers(model)
    if not layers:
        raise HepnnError(f"{type(model).__name__} has no Linear/Conv layers to prune")
    if structured:
        for _, module in layers[:-1]:  # the output layer keeps every class
            prune.ln_structured(module, "weight", amount=amount, n=2, dim=0)
    else:
        prune.global_unstructured([(m, "weight") for _, m in layers], pruning_method=prune.L1Unstructured,
                                  amount=amount)


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold every pruning mask into its weight and remove the hooks (plain state dict again)."""
    for _, module in prunable_layers(model):
        if prune.is_pruned(module) and hasattr(module, "weight_orig"):
            prune.remove(module, "weight")
    return model


def sparsity_report(model: nn.Module) -> dict[str, Any]:
    """Per-layer and total fraction of zero weights over the prunable layers.

    Returns ``{"layers": [{"layer", "shape", "weights", "zeros", "sparsity"}], "total": float,
    "zero_rows": int}`` (``zero_rows``: output channels that are entirely zero).
    """
    rows, zeros_all, n_all, zero_rows = [], 0, 0, 0
    for name, module in prunable_layers(model):
        w = module.weight.detach()  # with hooks in place: weight_orig * mask
        zeros = int((w == 0).sum())
        zero_rows += int((w.reshape(w.shape[0], -1) == 0).all(dim=1).sum())
        rows.append({"layer": name, "shape": list(w.shape), "weights": w.numel(), "zeros": zeros,
                     "sparsity": zeros / max(w.numel(), 1)})
        zeros_all += zeros
        n_all += w.numel()
    return {"layers": rows, "total": zeros_all / max(n_all, 1), "zero_rows": zero_rows}


def format_report(report: dict[str, Any]) -> str:
    """The sparsity report as a markdown table (one row per layer, then the total)."""
    lines = ["| Layer | Shape | Weights | Zeros | Sparsity |", "|---|---|---|---|---|"]
    for r in report["layers"]:
        lines.append(f"| {r['layer']} | {'x'.join(map(str, r['shape']))} | {r['weights']:,} | {r['zeros']:,} "
                     f"| {r['sparsity']:.3f} |")
    n = sum(r["weights"] for r in report["layers"])
    z = sum(r["zeros"] for r in report["layers"])
    lines.append(f"| **total** | | {n:,} | {z:,} | {report['total']:.3f} |")
    return "\n".join(lines) + "\n"


def prune_model(model: nn.Module, sparsity: float, *, structured: bool = False, steps: int = 1,
                between: Any = None) -> dict[str, Any]:
    """Prune ``model`` to ``sparsity`` in ``steps`` steps, calling ``between(model, k)`` after each
    step (fine-tuning with the masks in place), then make the pruning permanent.

    Returns the final :func:`sparsity_report`.
    """
    previous = 0.0
    for k, target in enumerate(cubic_schedule(sparsity, steps), start=1):
        prune_step(model, target, previous, structured=structured)
        previous = target
        log.info("pruning step %d/%d: sparsity %.3f", k, steps, sparsity_report(model)["total"])
        if between is not None:
            between(model, k)
    make_permanent(model)
    return sparsity_report(model)


def _check_torch(model: object) -> None:
    if not isinstance(model, nn.Module):
        raise HepnnError("only torch models can be pruned (a BDT has no weights to prune)")


def prune_run(run_dir: str | Path, out: str | Path, sparsity: float, *, structured: bool = False, steps: int = 1,
              finetune_epochs: int = 1, progress: bool = False) -> dict[str, Any]:
    """Prune a finished run into a new run directory ``out`` and evaluate it.

    Between the steps the model is fine-tuned for ``finetune_epochs`` epochs on the run's training
    split (0 = no fine-tuning). Returns the sparsity report plus the test metrics.
    """
    from hepnn.compress.rundir import finetune, finish_run, start_run
    from hepnn.runs import load_run, load_run_data
    from hepnn.train.checkpoint import save_weights

    run_dir, out = Path(run_dir), Path(out)
    cfg, model, _, _ = load_run(run_dir)
    _check_torch(model)
    cfg, pre, splits, kind, _ = load_run_data(run_dir)
    cfg = start_run(out, cfg, parent=run_dir)

    def between(m: nn.Module, k: int) -> None:
        if finetune_epochs > 0:
            finetune(cfg, m, splits, pre, out / "finetune" / f"step{k}", kind=kind, epochs=finetune_epochs,
                     progress=progress)

    report = prune_model(model, sparsity, structured=structured, steps=steps, between=between)
    save_weights(model, out / "model.safetensors")
    info = {"parent": str(run_dir), "compression": f"prune {'structured' if structured else 'unstructured'} "
            f"{sparsity:g} in {steps} steps, {finetune_epochs} fine-tuning epochs each",
            "sparsity": report["total"], "sparsity_layers": report["layers"]}
    metrics = finish_run(out, cfg, model, pre, splits, kind, info)
    return {**report, "metrics": metrics}
