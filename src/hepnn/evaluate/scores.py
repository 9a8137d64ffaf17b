"""Scores of a run on jets, and the tables evaluation writes: test_scores.parquet, history.

``predict_jets`` scores jets with a loaded run (any model kind); ``scores_table`` adds the labels
and the jets' pT and mass; ``read_history`` reads the per-epoch history a training wrote.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from hepnn.config import RunConfig
from hepnn.data.jagged import JaggedJets
from hepnn.registry import TreeModel
from hepnn.runs import Model, Preprocessing, eval_loader, make_builder, make_task, run_amp, run_fields


def predict_jets(cfg: RunConfig, model: Model, pre: Preprocessing, jets: JaggedJets, kind: str) -> dict[str, np.ndarray]:
    """Scores (classification) or predictions (regression) for ``jets``, in their order: on the
    model's device, at the run's ``train.amp`` precision."""
    if isinstance(model, TreeModel):
        x = pre["jet"].transform(jets.jet) if "jet" in pre else jets.jet
        out = model.predict_arrays(x)
        key = "score" if kind == "classify" else "pred"
        if kind == "classify" and out.ndim == 2 and out.shape[1] == 2:
            out = out[:, 1]
        return {key: out.astype(np.float32), "y": jets.y}
    from hepnn.train.engine import predict_outputs

    loader = eval_loader(cfg, make_builder(cfg, pre, kind=kind, fields=run_fields(cfg)), jets)
    task = make_task(cfg, kind, cfg.data.num_classes, None)
    first = next(iter(model.parameters()), None)
    device = first.device if first is not None else "cpu"  # where it was trained (fit) or loaded (the CPU)
    out = predict_outputs(model, task, loader, device, run_amp(cfg))
    if kind == "regress" and "target" in pre:  # back from standardized to physical units
        pred = out["pred"]
        out["pred"] = pre["target"].inverse_transform(pred.reshape(len(pred), -1)).reshape(pred.shape)
        out["y"] = jets.y.astype(np.float32)
    return out


def jet_kinematics(jets: JaggedJets) -> dict[str, np.ndarray]:
    """Jet pT and mass from the summed constituents (observers written next to the scores)."""
    p4 = jets.particles_p4.astype(np.float64)  # (P, 4)
    starts = jets.offsets[:-1]
    sums = np.zeros((len(jets), 4))
    nonempty = jets.counts > 0
    sums[nonempty] = np.add.reduceat(p4, starts[nonempty], axis=0)
    pt = np.hypot(sums[:, 1], sums[:, 2])
    m2 = sums[:, 0] ** 2 - (sums[:, 1:] ** 2).sum(axis=1)
    return {"jet_pt": pt.astype(np.float32), "jet_mass": np.sqrt(np.clip(m2, 0, None)).astype(np.float32)}


def scores_table(out: dict[str, np.ndarray], jets: JaggedJets) -> dict[str, np.ndarray]:
    """The columns of test_scores.parquet: one score per class (or the prediction), the label (or
    target), and the jets' pT and mass."""
    table = {k: v for k, v in out.items() if k != "loss" and v is not None and len(v) == len(jets)}
    if "score" in table and table["score"].ndim == 2:  # multi-class: one column per class
        probs = table.pop("score")
        table.update({f"score_{c}": probs[:, c] for c in range(probs.shape[1])})
    if "y" in table:
        y = table.pop("y")
        if "pred" in table:
            table["target"] = y
        else:
            table["label"] = y.astype(np.int64)
    table.update(jet_kinematics(jets))
    return table


def write_table(table: dict[str, np.ndarray], path: Path) -> None:
    """``table`` as a parquet file of flat columns, written atomically."""
    import awkward as ak

    from hepnn.data.io import write_parquet

    write_parquet(ak.Array({k: np.asarray(v) for k, v in table.items()}), path, metadata={"kind": "scores"})


def read_history(run_dir: Path) -> dict[str, list[float]] | None:
    """Per-epoch losses, validation metrics and speed from history.csv (None before any epoch)."""
    path = run_dir / "history.csv"
    if not path.is_file():
        return None
    rows = list(csv.DictReader(path.open()))
    keys = [k for k in rows[0] if k.endswith("loss") or k.startswith("val_") or k == "jets_per_s"] if rows else []
    return {k: [float(r[k]) for r in rows if r.get(k) not in (None, "")] for k in keys}


def mass_baseline(run_dir: Path, effs: tuple[float, ...] = (0.3, 0.5)) -> dict[str, float]:
    """The jet mass alone as the tagger, on a run's test jets (from its test_scores.parquet): ``auc``,
    ``rej30``, ... The trivial baseline of top tagging that a model must beat."""
    import awkward as ak

    from hepnn.evaluate.metrics import classification_metrics

    t = ak.from_parquet(Path(run_dir) / "test_scores.parquet")
    out = classification_metrics(ak.to_numpy(t["label"]), ak.to_numpy(t["jet_mass"]), effs)
    out.pop("accuracy")  # a mass in GeV has no 0.5 threshold
    return out
