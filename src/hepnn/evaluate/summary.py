"""Per-epoch validation summaries computed from a task's concatenated outputs."""

from __future__ import annotations

import numpy as np


def quick_metrics(kind: str, out: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean loss plus accuracy/AUC (classification) or MAE (regression) over the outputs."""
    metrics = {"loss": float(np.mean(out["loss"]))} if "loss" in out else {}
    if kind == "classify":
        from hepnn.evaluate.metrics import accuracy, auc

        y, score = out["y"].astype(np.int64), out["score"]
        metrics["acc"] = float(accuracy(y, score))
        if score.ndim == 1 or score.shape[1] == 2:
            s = score if score.ndim == 1 else score[:, 1]
            metrics["auc"] = float(auc(y, s)) if len(np.unique(y)) > 1 else float("nan")
    elif kind == "regress":
        metrics["mae"] = float(np.mean(np.abs(out["pred"] - out["y"])))
    return metrics
