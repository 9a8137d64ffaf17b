"""Run directories for compressed, distilled and exported models, and the numbers that compare them.

A derived run is an ordinary run directory (config.yaml, preprocess.json, weights, run.json,
metrics.json) that ``hepnn evaluate`` and ``hepnn compare`` accept. Its run.json and metrics.json carry
the sizes that matter for deployment: ``n_params``, ``n_nonzero`` (after pruning), ``size_bytes``
(the weights as held for inference: int8 tensors count one byte per value plus their scales) and,
once measured, ``latency_ms`` (per jet at batch 1, eager PyTorch).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hepnn.config import RunConfig, dump_config
from hepnn.data.dataset import Splits
from hepnn.errors import HepnnError
from hepnn.io_utils import write_json_atomic, write_text_atomic
from hepnn.log import get_logger
from hepnn.runs import Preprocessing, load_run, run_fields

log = get_logger(__name__)

# Columns of the compression trade-off table (hepnn.evaluate.compare takes extra columns).
COLUMNS = ("name", "model", "auc", "rej30", "n_params", "n_nonzero", "size_bytes", "latency_ms")


def tensor_bytes(t: torch.Tensor) -> int:
    """Bytes a tensor occupies; a tensor subclass (torchao int8) counts its inner tensors."""
    if hasattr(t, "__tensor_flatten__") and type(t) is not torch.Tensor and not isinstance(t, nn.Parameter):
        names, _ = t.__tensor_flatten__()
        return sum(tensor_bytes(getattr(t, n)) for n in names if getattr(t, n, None) is not None)
    if isinstance(t, nn.Parameter) and type(t.data) is not torch.Tensor:
        return tensor_bytes(t.data)
    return t.numel() * t.element_size()


def _nonzero(t: torch.Tensor) -> int:
    data = t.data if isinstance(t, nn.Parameter) else t
    if type(data) is not torch.Tensor and hasattr(data, "dequantize"):
        data = data.dequantize()
    return int(torch.count_nonzero(data))


def model_stats(model: nn.Module) -> dict[str, int]:
    """Parameters, non-zero parameters and bytes of parameters + buffers (pruning masks excluded)."""
    params = list(model.parameters())
    buffers = [b for name, b in model.named_buffers() if not name.endswith("_mask")]
    return {
        "n_params": int(sum(p.numel() for p in params)),
        "n_nonzero": int(sum(_nonzero(p) for p in params)),
        "size_bytes": int(sum(tensor_bytes(t) for t in (*params, *buffers))),
    }


def start_run(out: str | Path, cfg: RunConfig, parent: str | Path | None = None) -> RunConfig:
    """A new run directory with the config (named after ``out``) and the parent's preprocessing;
    returns the config as written."""
    out = Path(out)
    if parent is not None:  # its own name: `hepnn compare` groups runs with equal configs as seed repeats
        cfg = cfg.model_copy(update={"name": f"{cfg.name}-{out.name}"})
    if (out / "run.json").exists():
        raise HepnnError(f"{out} already holds a run; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "config.yaml", dump_config(cfg))
    if parent is not None and (Path(parent) / "preprocess.json").is_file():
        shutil.copy2(Path(parent) / "preprocess.json", out / "preprocess.json")
    return cfg


def finish_run(out: Path, cfg: RunConfig, model: nn.Module, pre: Preprocessing, splits: Splits, kind: str,
               info: dict[str, Any], stats: dict[str, int] | None = None) -> dict[str, Any]:
    """Write run.json (identity, sizes, ``info``) and evaluate ``model`` on the test split.

    ``stats`` overrides :func:`model_stats` (a quantized model reports its float parameter count).
    """
    from hepnn.evaluate.run import evaluate_loaded

    run = {"model": cfg.model.name, "name": cfg.name, "seed": cfg.train.seed, "task": kind,
           "n_test": len(splits.test), **(stats or model_stats(model)), **info}
    write_json_atomic(out / "run.json", run)
    return evaluate_loaded(cfg, model, pre, splits, out, kind=kind)  # copies the sizes into metrics.json


def record(run_dir: str | Path, values: dict[str, Any]) -> None:
    """Add ``values`` to a run's run.json and metrics.json (e.g. a measured latency)."""
    run_dir = Path(run_dir)
    for name in ("run.json", "metrics.json"):
        if (run_dir / name).is_file():
            _merge(run_dir / name, values)


def _merge(path: Path, values: dict[str, Any]) -> None:
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.update(values)
    write_json_atomic(path, data)


def compression_table(run_dirs: list[str | Path], columns: tuple[str, ...] = COLUMNS) -> str:
    """The trade-off table (markdown) over runs: AUC, 1/eps_B at 0.3, parameters, non-zeros, bytes, latency.

    A run without the sizes in its metrics (an ordinary ``hepnn train`` run) gets them from its weights.
    """
    from hepnn.evaluate.compare import compare_runs, to_markdown
    from hepnn.evaluate.comparison import read_run

    runs = []
    for d in run_dirs:
        run = read_run(Path(d))
        run["name"] = run["group"] = Path(d).name  # one row per directory, named by it
        if "size_bytes" not in run["metrics"]:
            model = load_run(d)[1]
            if isinstance(model, nn.Module):
                run["metrics"].update({k: v for k, v in model_stats(model).items() if k != "n_params"})
        runs.append(run)
    rows = compare_runs(runs)
    for row in rows:  # counts are integers, not (mean, std) floats
        for key in ("n_nonzero", "size_bytes"):
            if isinstance(row.get(key), tuple):
                row[key] = int(row[key][0])
    return to_markdown(rows, columns)


def finetune(cfg: RunConfig, model: nn.Module, splits: Splits, pre: Preprocessing, run_dir: Path, *, kind: str,
             epochs: int, lr_scale: float = 0.1, progress: bool = False) -> nn.Module:
    """Train ``model`` further through the normal engine (``hepnn.train.fit``), from its current weights.

    The learning rate is the run's times ``lr_scale`` without warm-up and early stopping, and the
    initialization is left alone (``train.init=default``, no ``init_from``): pruning masks, fake
    quantizers and the trained weights all stay in place. History and checkpoints go to ``run_dir``.
    """
    from hepnn.train.fit import train_torch

    tc = cfg.train
    ft = cfg.model_copy(update={"train": tc.model_copy(update={
        "epochs": epochs, "init": "default", "init_from": None, "early_stopping": None,
        "optimizer": tc.optimizer.model_copy(update={"lr": tc.optimizer.lr * lr_scale}),
        "schedule": tc.schedule.model_copy(update={"warmup_steps": 0}),
    })})
    run_dir.mkdir(parents=True, exist_ok=True)
    train_torch(ft, model, splits, pre, run_dir, kind=kind, fields=run_fields(ft, train=True), resume=False,
                progress=progress)
    return model.cpu().eval()
