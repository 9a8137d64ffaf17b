"""``hepnn distill``: train a small student on a teacher run's softened scores and the labels.

The student's run config is the teacher's data, split and training settings with the student model
(``student_config``); the loss is the distillation task of ``hepnn.train.distill``
(Hinton, Vinyals & Dean, arXiv:1503.02531).
"""

from __future__ import annotations

from pathlib import Path
import yaml

from hepnn.config import RunConfig, apply_overrides, load_config, validate_config
from hepnn.errors import HepnnError
from hepnn.registry import get_model_spec
from hepnn.runs import require_run_dir


def student_config(teacher: str | Path, student: str | None = None, *, config: str | Path | None = None,
                   temperature: float = 4.0, alpha: float = 0.7, overrides: list[str] | None = None) -> RunConfig:
    """The student's run config: the teacher's data, split and training settings with the ``student``
    model at its registered defaults (default "mlp"), or the model/preprocess/train sections of a
    student ``config`` file (not both), plus the distill section.

    Preprocessing keeps the teacher's steps and standardizes any block the student reads that the
    teacher did not (e.g. jet features for an MLP student of a PFN).
    """
    if student is not None and config is not None:
        raise HepnnError(f"give the student as --student {student} or as --config {config}, not both "
                         "(the config's model section names the student)")
    teacher = require_run_dir(teacher)
    tcfg = load_config(teacher / "config.yaml")
    raw = tcfg.model_dump(mode="json", exclude={"distill", "tune"})
    raw["model"] = {"name": student or "mlp", "params": {}}
    if config is not None:
        given = load_config(config).model_dump(mode="json", exclude={"distill", "tune"})
        raw.update({k: given[k] for k in ("model", "preprocess", "train")})
        raw["data"].update({k: given["data"][k] for k in ("particle_features", "jet_features", "batch_size")})
    inputs = get_model_spec(raw["model"]["name"]).inputs
    blocks = {s["block"] for s in raw["preprocess"]}
    for field, block in (("jet", "jet"), ("x", "particle")):
        if field in inputs and block not in blocks:
            raw["preprocess"].append({"block": block, "kind": "standardize"})
    raw["distill"] = {"teacher": str(teacher.resolve()), "temperature": temperature, "alpha": alpha}
    raw = apply_overrides(raw, list(overrides or []))
    return validate_config(yaml.safe_load(yaml.safe_dump(raw)), f"distill {teacher} -> {raw['model']['name']}")


def distill(teacher: str | Path, student: str | None = None, out: str | Path | None = None, *, config: str | Path | None = None,
            temperature: float = 4.0, alpha: float = 0.7, overrides: list[str] | None = None,
            progress: bool = True) -> Path:
    """Train ``student`` with knowledge distillation from the ``teacher`` run; returns the run directory."""
    from hepnn.train.fit import fit

    cfg = student_config(teacher, student, config=config, temperature=temperature, alpha=alpha, overrides=overrides)
    return fit(cfg, out, progress=progress)

