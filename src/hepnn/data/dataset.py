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
    """Jets of a run. ``train`` is in memory, or a list of files streamed in chunks; ``train_sample``
    is the in-memory training jets, or the first chunk of the stream (for fitting preprocessing)."""

    train: JaggedJets | list[str]
    val: JaggedJets
    test: JaggedJets
    num_classes: int
    train_sample: JaggedJets


def loader_mode(data: DataConfig, *, needs_jet: bool) -> str:
    """"memory" or "stream" for the training files (``data.loader``; "auto" asks the memory estimate)."""
    if data.loader == "memory":
        return "memory"
    from hepnn.data.io import count_jets, expand_paths
    from hepnn.data.loader import mean_particles, choose_loader

    files = [str(p) for p in expand_paths(data.train)]
    n_jets = sum(count_jets(f) for f in files)
    if data.max_jets is not None:
        n_jets = min(n_jets, data.max_jets)
    n_jet = len(data.jet_features) if needs_jet else 0
    return choose_loader(n_jets, mean_particles(files), n_jet, data.memory_limit_gb, data.loader)


def read_split(paths: Sequence[str], data: DataConfig, *, needs_jet: bool, target: str | None) -> JaggedJets:
    """Read files into memory as ``JaggedJets`` (jet features computed when the model reads them)."""
    from hepnn.data.io import read_jets

    arrays = read_jets(list(paths)) if data.max_jets is None else _read_first(paths, data.max_jets)
    return JaggedJets.from_awkward(
        arrays, target=target, jet_features=data.jet_features if needs_jet else (),
    )


def _read_first(paths: Sequence[str], max_jets: int) -> Any:
    """The first jets of every file, in proportion to the file sizes, ``max_jets`` in all: with
    ``[top.parquet, qcd.parquet]`` a quick run still sees both classes."""
    import awkward as ak

    from hepnn.data.io import count_jets, expand_paths, read_jets

    files = expand_paths(paths)
    counts = np.array([count_jets(f) for f in files])
    quota = np.floor(max_jets * counts / max(counts.sum(), 1)).astype(int)
    quota[: max_jets - quota.sum()] += 1  # hand out the remainder, one jet per file
    parts = [read_jets(f, max_jets=int(q)) for f, q in zip(files, np.minimum(quota, counts)) if q > 0]
    return parts[0] if len(parts) == 1 else ak.concatenate(parts)


def load_splits(data: DataConfig, *, fields: Sequence[str], task: str, seed: int, mode: str = "memory") -> Splits:
    """Train/val/test jets for a run, by file or by a seeded stratified split of one source.

    With ``mode="stream"`` the training files stay on disk (``Splits.train`` is their list) and
    validation and test must be separate files, read into memory.
    """
    from hepnn.data.splits import split_indices

    if not data.train:
        raise ConfigError("data.train is empty: give one or more parquet/ROOT/HDF5 files, e.g. "
                          "data.train=data/toptag_small.parquet")
    needs_jet = "jet" in fields
    target = data.target
    if bool(data.val) != bool(data.test):
        raise ConfigError("give both data.val and data.test (split by file), or neither (split by fractions)")
    if mode == "stream" and not data.val:
        raise ConfigError("streaming the training files (data.loader=stream, or too large for "
                          "data.memory_limit_gb) needs separate data.val and data.test files")
    if data.val:
        val = read_split(data.val, data, needs_jet=needs_jet, target=target)
        test = read_split(data.test, data, needs_jet=needs_jet, target=target)
        if mode == "stream":
            from hepnn.data.io import expand_paths

            train: JaggedJets | list[str] = [str(p) for p in expand_paths(data.train)]
            sample = read_split(data.train, data.model_copy(update={"max_jets": _FIT_JETS}),
                                needs_jet=needs_jet, target=target)
        else:
            train = sample = read_split(data.train, data, needs_jet=needs_jet, target=target)
    else:
        jets = read_split(data.train, data, needs_jet=needs_jet, target=target)
        fr = data.split
        labels = jets.y if task == "classify" else np.zeros(len(jets), dtype=np.int64)
        tr, va, te = split_indices(labels, (fr.train, fr.val, fr.test), seed=seed, stratify=task == "classify")
        train, val, test = jets.take(tr), jets.take(va), jets.take(te)
        sample = train
    if len(sample) == 0 or len(val) == 0:
        raise DataError(f"the split left {len(sample)} training and {len(val)} validation jets; "
                        "use more jets or change data.split")
    num_classes = data.num_classes
    if task == "classify":
        seen = int(max(sample.y.max(), val.y.max())) + 1
        if seen > num_classes:
            raise DataError(f"labels go up to {seen - 1} but data.num_classes={num_classes}; "
                            f"set data.num_classes={seen}")
    log.info("jets: %s train, %d val, %d test", "streamed" if mode == "stream" else len(sample), len(val), len(test))
    return Splits(train, val, test, num_classes, sample)


def keep_labels(splits: Splits, labels: list[int]) -> None:
    """Train and validate on jets with ``labels`` only (e.g. QCD for anomaly detection); test keeps all."""
    if isinstance(splits.train, list):
        raise ConfigError("data.train_labels needs the training jets in memory (data.loader=memory)")
    for name in ("train", "val", "train_sample"):
        jets = getattr(splits, name)
        idx = np.flatnonzero(np.isin(jets.y, labels))
        if len(idx) == 0:
            raise ConfigError(f"data.train_labels={labels} leaves no {name} jets (labels present: "
                              f"{sorted(set(np.unique(jets.y).tolist()))})")
        setattr(splits, name, jets.take(idx))
    log.info("data.train_labels=%s: %d train, %d val jets kept", labels, len(splits.train), len(splits.val))


# --------------------------------------------------------------------------------------------------
# preprocessing


def _steps(steps: Sequence[PreprocessStep], block: str) -> list[dict[str, Any]]:
    return [s.model_dump(exclude={"block"}) for s in steps if s.block == block]


def fit_preprocessors(steps: Sequence[PreprocessStep], train: JaggedJets, *, data: DataConfig,
                      fields: Sequence[str], seed: int) -> dict[str, Any]:
    """Fit the jet-level and particle-level preprocessing on the training split only
    (``train``: the in-memory training jets, or the first chunk of a stream)."""
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
    target_steps = _steps(steps, "target")
    if target_steps and train.y is not None and train.y.dtype.kind == "f":
        y = train.y.reshape(len(train.y), -1).astype(np.float64)  # (n, T)
        out["target"] = Preprocessor(target_steps, feature_names=[data.target]).fit(y)
    return out


def _real_particle_features(train: JaggedJets, data: DataConfig, seed: int) -> np.ndarray:
    """Features of the real particles of (up to ``_FIT_JETS``) training jets: (n_particles, C)."""
    from hepnn.data.loader import BatchBuilder

    idx = np.sort(np.random.default_rng(seed).permutation(len(train))[:_FIT_JETS])
    builder = BatchBuilder(fields=("x", "mask"), particle_features=data.particle_features)
    return builder.feature_table(train.take(idx))[:-1]  # drop the padding row


def save_preprocessors(pre: dict[str, Any], path: Path) -> None:
    from hepnn.io_utils import write_json_atomic

    write_json_atomic(path, {k: v.to_dict() for k, v in pre.items()})


def load_preprocessors(path: Path) -> dict[str, Any]:
    """A run's fitted preprocessing. Anything but a complete preprocess.json as ``fit`` wrote it (missing,
    not JSON, unknown kinds, steps without fitted state, state of the wrong shape) is a DataError:
    predicting with silently different preprocessing would give wrong scores."""
    import json

    from hepnn.data.preprocess import Preprocessor
    from hepnn.errors import HepnnError

    if not path.is_file():
        raise DataError(f"{path} is missing; a run directory needs the preprocessing fitted at training "
                        "time: restore the file or retrain the run")
    try:
        raw = json.loads(path.read_text())
        if not isinstance(raw, dict):
            raise TypeError(f"expected an object of blocks, got {type(raw).__name__}")
        pre = {k: Preprocessor.from_dict(v) for k, v in raw.items()}
        for block, p in pre.items():
            if len(p.transforms_) != len(p.steps):
                raise ValueError(f"block '{block}' has steps without fitted state")
            if p.transforms_:  # a transform of ones catches state arrays of the wrong shape now, not mid-run
                p.transform(np.ones((1, p.transforms_[0].n_features_in_)))
    except (HepnnError, ValueError, TypeError, KeyError, AttributeError, IndexError) as err:
        raise DataError(f"{path} is not a valid preprocessing file ({type(err).__name__}: {err}); the run's "
                        "preprocessing is damaged: restore the file or retrain the run") from err
    return pre
