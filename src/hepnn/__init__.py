"""hepnn: from collision events to trained, evaluated, tuned and compressed neural networks.

The short public API (heavy modules are imported on first use)::

    import hepnn
    cfg = hepnn.load_config("configs/top_tagging/pfn.yaml", ["train.epochs=5"])
    run_dir = hepnn.fit(cfg, "runs/pfn")
    metrics = hepnn.evaluate_run(run_dir)            # accuracy, auc, rej30, rej50, ...
    hepnn.predict_run(run_dir, ["jets.parquet"], "scores.parquet")
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("hepnn")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

from hepnn.registry import create_model, list_models, register_model  # noqa: E402

# name -> module; evaluation is `evaluate_run` because `hepnn.evaluate` is the subpackage.
_LAZY = {
    "load_config": "hepnn.config",
    "fit": "hepnn.train.fit",
    "resume": "hepnn.train.fit",
    "evaluate_run": "hepnn.evaluate.run",
    "predict_run": "hepnn.evaluate.run",
}

__all__ = ["__version__", "create_model", "list_models", "register_model", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hepnn' has no attribute {name!r}")
