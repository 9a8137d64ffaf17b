"""Evaluation of unsupervised and generative runs (called by ``evaluate_loaded`` for those tasks).

Anomaly detection: the per-jet score (reconstruction error, −ELBO, −log p, ...) of the test jets,
with tops (label 1) as the anomaly: AUC and background rejection 1/εB at the configured signal
efficiencies (``hepnn.evaluate.metrics``), score distributions, the ROC curve, and the latent space
when it is two-dimensional. Generative models additionally sample as many jets as there are
reference test jets (the labels in ``data.train_labels``) and report W1 per feature, FPD and the
classifier two-sample AUC with bootstrap errors (``hepnn.evaluate.generative``), with overlaid
distributions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from torch import nn

from hepnn.config import RunConfig, dump_config
from hepnn.data.dataset import Splits
from hepnn.data.jagged import JaggedJets
from hepnn.evaluate.scores import predict_jets, read_history, scores_table, write_table
from hepnn.io_utils import write_json_atomic
from hepnn.log import get_logger
from hepnn.registry import Generator, LatentModel, get_model_spec
from hepnn.runs import Preprocessing, eval_loader, make_builder, run_fields

log = get_logger(__name__)

_MAX_GENERATED = 20_000


def anomaly_metrics(y: np.ndarray, score: np.ndarray, effs: list[float]) -> dict[str, float]:
    """AUC and rejections with label 1 as the anomaly (score: larger = more anomalous)."""
    from hepnn.evaluate import metrics as M

    out = M.classification_metrics(y, score, effs)
    out.pop("accuracy", None)  # a reconstruction error has no natural threshold
    return out


def _awkward(jets: JaggedJets) -> Any:
    """JaggedJets -> awkward array with the four-momentum columns (for ``physics_features``)."""
    import awkward as ak

    p4 = jets.particles_p4  # (P, 4)
    return ak.zip({c: ak.unflatten(p4[:, j], jets.counts) for j, c in
                   enumerate(("part_E", "part_px", "part_py", "part_pz"))}, depth_limit=1)


def generative_metrics(cfg: RunConfig, model: Generator, pre: Preprocessing, test: JaggedJets, *, seed: int = 0
                       ) -> tuple[dict[str, float], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Metrics of generated vs real test jets, and the (real, generated) arrays to overlay."""
    from hepnn.evaluate.generative import compare_samples, physics_features
    from hepnn.sample import generate_jets

    ref = test
    if cfg.data.train_labels is not None and test.y is not None:
        ref = test.take(np.flatnonzero(np.isin(test.y, cfg.data.train_labels)))
    n = min(len(ref), _MAX_GENERATED)
    ref = ref.take(np.arange(n))
    arrays, gen = generate_jets(cfg, model, pre, n, seed=seed)
    if model.space == "jet":
        real = {name: ref.jet[:, j].astype(np.float64) for j, name in enumerate(cfg.data.jet_features)}
        metrics = compare_samples(real, gen, seed=seed)
    else:  # compare with the real jets' k hardest constituents, all that the model generates
        real, real_c = physics_features(_awkward(ref), k=model.k)
        gen, gen_c = physics_features(arrays)
        metrics = compare_samples(real, gen, real_constituents=real_c, fake_constituents=gen_c, seed=seed)
        real, gen = {**real, **real_c}, {**gen, **gen_c}
    metrics["n_generated"] = n
    return metrics, {k: (real[k], gen[k]) for k in real if k in gen}


def _latent(cfg: RunConfig, model: nn.Module, pre: Preprocessing, jets: JaggedJets, kind: str) -> np.ndarray | None:
    """The 2-D latent codes of ``jets`` (None when the model has no 2-D latent space)."""
    import torch

    if not isinstance(model, LatentModel) or model.latent_dim != 2:
        return None
    loader = eval_loader(cfg, make_builder(cfg, pre, kind=kind, fields=run_fields(cfg)), jets)
    model.eval()
    with torch.no_grad():
        return torch.cat([model.encode(b).float() for b in loader]).numpy()


def _plot_latent(z: np.ndarray, y: np.ndarray, path: Path) -> list[Path]:
    from hepnn.evaluate.plots import figure, save_figure

    with figure() as (fig, ax):
        ax = ax[0, 0]
        for label, name in ((0, "QCD"), (1, "top")):
            sel = y == label
            ax.scatter(z[sel, 0], z[sel, 1], s=2, alpha=0.4, label=f"{name} (label {label})")
        ax.set(xlabel="$z_1$", ylabel="$z_2$")
        ax.legend(fontsize="small", markerscale=4)
        return save_figure(fig, path)


def _plots(cfg: RunConfig, run_dir: Path, test: dict, latent: np.ndarray | None,
           overlays: dict[str, tuple[np.ndarray, np.ndarray]], out_dir: Path) -> list[Path]:
    from hepnn.evaluate import metrics as M
    from hepnn.evaluate import plots as P

    out: list[Path] = []
    pdir = out_dir / "plots"
    y, s = test["y"], test["score"]
    if set(np.unique(y)) >= {0, 1}:
        out += P.plot_distributions({"QCD (label 0)": s[y == 0], "top (label 1)": s[y == 1]}, pdir / "scores",
                                    xlabel="anomaly score", logy=True)
        eps_b, eps_s, _ = M.roc_curve(y == 1, s)
        curves, effs = {cfg.model.name: (eps_s, eps_b)}, cfg.evaluate.signal_efficiencies
        out += P.plot_roc(curves, pdir / "roc", effs=effs) + P.plot_rejection(curves, pdir / "rejection", effs=effs)
    if latent is not None:
        out += _plot_latent(latent, y, pdir / "latent")
    for name, (real, gen) in overlays.items():
        out += P.plot_distributions({"real": real, "generated": gen}, pdir / f"gen_{name}", xlabel=name)
    history = read_history(run_dir)
    if history and any(history.values()):
        out += P.plot_history(history, pdir / "history")
    return [p for p in out if p.suffix == ".png"]


def evaluate_unsupervised(cfg: RunConfig, model: nn.Module, pre: Preprocessing, splits: Splits, run_dir: Path, *,
                          kind: str, out_dir: Path | None = None) -> dict[str, Any]:
    """Score the test split, write test_scores.parquet, metrics.json, plots and the report into
    ``out_dir`` (default: the run directory)."""
    import json

    from hepnn.evaluate.report import write_report

    out_dir = run_dir if out_dir is None else out_dir
    test = predict_jets(cfg, model, pre, splits.test, kind)
    write_table(scores_table(test, splits.test), out_dir / "test_scores.parquet")
    metrics: dict[str, Any] = {"score_mean": float(np.mean(test["score"]))}
    y = test.get("y")
    if y is not None and set(np.unique(y)) >= {0, 1}:
        metrics.update(anomaly_metrics(y, test["score"], cfg.evaluate.signal_efficiencies))
    overlays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if get_model_spec(cfg.model.name).kind == "generative":
        gen_metrics, overlays = generative_metrics(cfg, model, pre, splits.test, seed=cfg.train.seed)
        metrics.update(gen_metrics)
    info = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    metrics.update({k: info[k] for k in ("model", "n_params", "train_time_s") if k in info})
    write_json_atomic(out_dir / "metrics.json", metrics)
    plots: list[Path] = []
    if cfg.evaluate.plots:
        latent = _latent(cfg, model, pre, splits.test, kind) if y is not None else None
        plots = _plots(cfg, run_dir, test, latent, overlays, out_dir)
    write_report(out_dir, title=f"{cfg.name}: {cfg.model.name} ({kind})", config_yaml=dump_config(cfg),
                 metrics=metrics, plots=plots, history=read_history(run_dir))
    log.info("test: %s", "  ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, float)))
    return metrics
