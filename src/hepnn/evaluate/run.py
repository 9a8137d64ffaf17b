"""Evaluate and predict with a run directory: metrics.json, scores, plots and the report.

A run directory is enough (``hepnn.runs.load_run``): the resolved config rebuilds the model and the
data split, the fitted preprocessing comes from preprocess.json, the weights from model.safetensors
(model.json for tree models).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from hepnn.config import RunConfig, dump_config
from hepnn.data.dataset import Splits
from hepnn.data.jagged import JaggedJets
from hepnn.errors import HepnnError
from hepnn.evaluate.scores import predict_jets, read_history, scores_table, write_table
from hepnn.io_utils import write_json_atomic
from hepnn.log import get_logger
from hepnn.runs import Model, Preprocessing, load_run, run_fields

log = get_logger(__name__)


def evaluate_loaded(cfg: RunConfig, model: Model, pre: Preprocessing, splits: Splits, run_dir: Path, *,
                    kind: str, out_dir: Path | None = None) -> dict[str, Any]:
    """Score the test split (and part of the training split for the overtraining check), write
    metrics.json, test_scores.parquet, plots and the report into ``out_dir`` (default: the run)."""
    from hepnn.evaluate import metrics as M
    from hepnn.train.tasks_unsupervised import UNSUPERVISED_KINDS

    if kind in UNSUPERVISED_KINDS:  # anomaly scores and generated-vs-real metrics
        from hepnn.evaluate.unsupervised import evaluate_unsupervised

        return evaluate_unsupervised(cfg, model, pre, splits, run_dir, kind=kind, out_dir=out_dir)
    out_dir = run_dir if out_dir is None else out_dir
    cpu0 = time.process_time()
    test = predict_jets(cfg, model, pre, splits.test, kind)
    cpu_s = time.process_time() - cpu0  # CPU seconds: robust to other jobs sharing the machine
    write_table(scores_table(test, splits.test), out_dir / "test_scores.parquet")
    info = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    if kind == "classify":
        metrics: dict[str, Any] = M.classification_metrics(test["y"], test["score"], cfg.evaluate.signal_efficiencies)
        n_ks = min(len(splits.train_sample), cfg.evaluate.overtraining_jets)
        train = predict_jets(cfg, model, pre, splits.train_sample.take(np.arange(n_ks)), kind) if n_ks else None
        if train is not None:
            metrics.update(M.ks_overtraining(train["score"], train["y"], test["score"], test["y"]))
    else:
        train = None
        metrics = M.regression_metrics(test["y"], test["pred"])
    metrics.update({k: info[k] for k in ("model", "n_params", "train_time_s", "train_cpu_s", "n_nonzero", "size_bytes",
                                         "latency_ms")
                    if k in info})  # the last three: compressed runs (hepnn.compress)
    metrics["inference_jets_per_cpu_s"] = len(splits.test) / max(cpu_s, 1e-9)
    write_json_atomic(out_dir / "metrics.json", metrics)
    plots = _plots(cfg, run_dir, kind, test, train, out_dir) if cfg.evaluate.plots else []
    from hepnn.evaluate.report import write_report

    write_report(out_dir, title=f"{cfg.name}: {cfg.model.name}", config_yaml=dump_config(cfg),
                 metrics=metrics, plots=plots, history=read_history(run_dir), info=info)
    log.info("test: %s", "  ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, float)))
    return metrics


def _plots(cfg: RunConfig, run_dir: Path, kind: str, test: dict, train: dict | None, out_dir: Path) -> list[Path]:
    from hepnn.evaluate import metrics as M
    from hepnn.evaluate import plots as P

    out: list[Path] = []
    pdir = out_dir / "plots"
    if kind == "classify":
        s = test["score"] if test["score"].ndim == 1 else test["score"][:, 1]
        eps_b, eps_s, _ = M.roc_curve(test["y"] == 1, s)
        curves, effs = {cfg.model.name: (eps_s, eps_b)}, cfg.evaluate.signal_efficiencies
        out += P.plot_roc(curves, pdir / "roc", effs=effs) + P.plot_rejection(curves, pdir / "rejection", effs=effs)
        if train is not None:
            ts = train["score"] if train["score"].ndim == 1 else train["score"][:, 1]
            out += P.plot_scores(ts, train["y"], s, test["y"], pdir / "scores")
    else:
        y, pred = test["y"].reshape(-1), test["pred"].reshape(-1)
        out += P.plot_distributions({"true": y, "predicted": pred}, pdir / "prediction", xlabel=cfg.data.target)
        edges = np.unique(np.quantile(y, np.linspace(0, 1, 11)))  # deciles: every bin well filled
        if len(edges) > 2:
            response = M.binned_response(y, pred, y, edges, relative=bool(np.all(y > 0)))
            out += P.plot_response(response, pdir / "response", xlabel=f"true {cfg.data.target}",
                                   ylabel="(pred - true) / true" if np.all(y > 0) else "pred - true")
    history = read_history(run_dir)
    if history and any(history.values()):
        out += P.plot_history(history, pdir / "history")
    return [p for p in out if p.suffix == ".png"]


def evaluate_run(run_dir: str | Path, data: list[str] | None = None, out: str | Path | None = None) -> dict[str, Any]:
    """Re-evaluate a run on its own test split (outputs replace the run's), or on other files
    (``data``): then metrics.json, test_scores.parquet, plots and the report go to ``out``, by default
    ``RUN/eval-<first file's stem>``, and the run's own test results stay as they are."""
    from hepnn.data.dataset import load_splits

    run_dir = Path(run_dir)
    if out is not None and not data:
        raise HepnnError("evaluate: --out is for evaluating on other files (--data); the run's own test split "
                         f"is evaluated into the run directory {run_dir}")
    if data:
        out = Path(out) if out is not None else run_dir / f"eval-{Path(data[0]).name.split('.')[0]}"
        if out.resolve() == run_dir.resolve():
            raise HepnnError(f"evaluate: --out {out} is the run directory; the run's own test results would be "
                             "overwritten by the other files'; choose another folder")
        out.mkdir(parents=True, exist_ok=True)
    cfg, model, pre, kind = load_run(run_dir)
    fields = run_fields(cfg)
    # split by file: only the test files and a sample of the training files are read
    mode = "stream" if cfg.data.val else "memory"
    splits = load_splits(cfg.data, fields=fields, task=kind, seed=cfg.train.seed, mode=mode)
    if data:
        from hepnn.data.dataset import read_split

        splits.test = read_split(data, cfg.data, needs_jet="jet" in fields, target=cfg.data.target)
    return evaluate_loaded(cfg, model, pre, splits, run_dir, kind=kind, out_dir=Path(out) if data else None)


def predict_run(run_dir: str | Path, data: list[str], out: str | Path) -> Path:
    """Scores (or predictions), labels when present, and jet pT/mass for every jet of ``data``."""
    from hepnn.data.io import read_jets

    cfg, model, pre, kind = load_run(run_dir)
    fields = run_fields(cfg)
    arrays = read_jets(list(data))
    has_target = cfg.data.target in arrays.fields
    jets = JaggedJets.from_awkward(arrays, target=cfg.data.target if has_target else None,
                                   jet_features=cfg.data.jet_features if "jet" in fields else ())
    if not has_target:  # the batch builder wants a target; unlabeled data gets a placeholder, dropped below
        log.info("no %s column in %s: writing scores without labels", cfg.data.target, ", ".join(data))
        jets.y = np.zeros(len(jets), dtype=np.int64 if kind == "classify" else np.float32)
    result = predict_jets(cfg, model, pre, jets, kind)
    if not has_target:
        result.pop("y", None)
    write_table(scores_table(result, jets), Path(out))
    return Path(out)
