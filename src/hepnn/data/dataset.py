"""From a run's data config to train/val/test jets, fitted preprocessing and loaders.

Splits come from separate files (``data.val``/``data.test``) or, for a single source, from a seeded
stratified split of ``data.train`` by ``data.split`` fractions; the same config always gives the
same split, so ``hepnn evaluate RUN_DIR`` finds the very test jets the run never trained on.
Preprocessing is fitted on the training split only and saved beside the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hepnn.config import DataConfig, PreprocessStep
from hepnn.data.jagged import JaggedJets
from hepnn.errors import ConfigError, DataError
from hepnn.log import get_logger

log = get_logger(__name__)

# Jets used to fit particle-level preprocessing (more changes nothing but the time it takes).
_FIT_JETS = 20_000


@dataclass
class Splits:
    train: JaggedJets
    val: JaggedJets
    test: JaggedJets
    num_classes: int


def read_split(paths: Sequence[str], data: DataConfig, *, needs_jet: bool, target: str | None) -> JaggedJets:
    """Read files into memory as ``JaggedJets`` (jet features computed when the model reads them)."""
    from hepnn.data.io import read_jets

    arrays = read_jets(list(paths), max_jets=data.max_jets)
    return JaggedJets.from_awkward(
        arrays, target=target, jet_features=data.jet_features if needs_jet else (),
    )


def load_splits(data: DataConfig, *, fields: Sequence[str], task: str, seed: int) -> Splits:
    """Train/val/test jets for a run, by file or by a seeded stratified split of one source."""
    from hepnn.data.splits import split_indices

    if not data.train:
        raise ConfigError("data.train is empty: give one or more parquet/ROOT/HDF5 files, e.g. "
                          "data.train=data/toptag_small.parquet")
    needs_jet = "jet" in fields
    target = data.target
    if data.val and data.test:
        train = read_split(data.train, data, needs_jet=needs_jet, target=target)
        val = read_split(data.val, data, needs_jet=needs_jet, target=target)
        test = read_split(data.test, data, needs_jet=needs_jet, target=target)
    elif data.val or data.test:
        raise ConfigError("give both data.val and data.test (split by file), or neither (split by fractions)")
    else:
        jets = read_split(data.train, data, needs_jet=needs_jet, target=target)
        fr = data.split
        labels = jets.y if task == "classify" else np.zeros(len(jets), dtype=np.int64)
        tr, va, te = split_indices(labels, (fr.train, fr.val, fr.test), seed=seed, stratify=task == "classify")
        train, val, test = jets.take(tr), jets.take(va), jets.take(te)
    if len(train) == 0 or len(val) == 0:
        raise DataError(f"the split left {len(train)} training and {len(val)} validation jets; "
                        "use more jets or change data.split")
    num_classes = data.num_classes
    if task == "classify":
        seen = int(train.y.max()) + 1
        if seen > num_classes:
            raise DataError(f"labels go up to {seen - 1} but data.num_classes={num_classes}; "
                            f"set data.num_classes={seen}")
    log.info("jets: %d train, %d val, %d test", len(train), len(val), len(test))
    return Splits(train, val, test, num_classes)


# --------------------------------------------------------------------------------------------------
# preprocessing


def _steps(steps: Sequence[PreprocessStep], block: str) -> list[dict[str, Any]]:
    return [s.model_dump(exclude={"block"}) for s in steps if s.block == block]


def fit_preprocessors(steps: Sequence[PreprocessStep], train: JaggedJets, *, data: DataConfig,
                      fields: Sequence[str], seed: int) -> dict[str, Any]:
    """Fit the jet-level and particle-level preprocessing on the training split only."""
    from hepnn.data.preprocess import Preprocessor

    out: dict[str, Any] = {}
    jet_steps = _steps(steps, "jet")
    if jet_steps and "jet" in fields:
        out["jet"] = Preprocessor(jet_steps, feature_names=list(data.jet_features)).fit(train.jet)
    particle_steps = _steps(steps, "particle")
    if particle_steps and "x" in fields:
        from hepnn.data.features import expand_feature_names

        names = expand_feature_names(data.particle_features)
        real = _real_particle_features(train, data, seed)
        out["particle"] = Preprocessor(particle_steps, feature_names=names).fit(real)
    return out


def _real_particle_features(train: JaggedJets, data: DataConfig, seed: int) -> np.ndarray:
    """Features of the real particles of (up to ``_FIT_JETS``) training jets: (n_particles, C)."""
    from hepnn.data.loader import BatchBuilder

    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(train))[:_FIT_JETS]
    builder = BatchBuilder(fields=("x", "mask"), particle_features=data.particle_features,
                           max_particles=data.max_particles)
    parts = []
    for start in range(0, len(idx), 4096):
        batch = builder(train, np.sort(idx[start:start + 4096]))
        parts.append(batch.x[batch.mask].numpy())
    return np.concatenate(parts)


def save_preprocessors(pre: dict[str, Any], path: Path) -> None:
    from hepnn.io_utils import write_json_atomic

    write_json_atomic(path, {k: v.to_dict() for k, v in pre.items()})


def load_preprocessors(path: Path) -> dict[str, Any]:
    import json

    from hepnn.data.preprocess import Preprocessor

    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{path} is not valid JSON ({err}); the run's preprocessing is damaged") from None
    return {k: Preprocessor.from_dict(v) for k, v in raw.items()}
