"""Stateful feature preprocessing with the scikit-learn contract, serializable to JSON.

Every transform acts on a 2-D array ``X (n, F)`` (particle features flattened over real particles by
the caller) and on a subset of its columns (``columns=`` indices, or names given ``feature_names``).
``__init__`` stores arguments, ``fit(X)`` learns state ending in ``_`` and returns ``self``;
``transform`` / ``inverse_transform`` / ``fit_transform`` as in scikit-learn. Fit on the training
split only. :class:`Preprocessor` chains the steps of a run config and saves them to JSON in the run
directory, so that inference applies exactly what training fitted.

Arithmetic is float64; the output keeps the input's floating dtype (float32 in, float32 out).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import os
from typing import Any, Sequence

import numpy as np

from hepnn.errors import ConfigError, DataError, HepnnError

Columns = Sequence[int] | Sequence[str] | None


class ColumnTransform(ABC):
    """Base class: resolves ``columns``, checks input, applies ``_forward``/``_inverse`` to them."""

    kind = ""
    _state: tuple[str, ...] = ()  # fitted attributes written by to_dict

    def __init__(self, *, columns: Columns = None, feature_names: Sequence[str] | None = None) -> None:
        self.columns = columns
        self.feature_names = feature_names

    # --- scikit-learn contract -------------------------------------------------------------
    def fit(self, X: np.ndarray, y: Any = None) -> "ColumnTransform":
        X = self._check(X, fitted=False)
        self.n_features_in_ = X.shape[1]
        self.columns_ = self._resolve(X.shape[1])
        self._fit(X[:, self.columns_].astype(np.float64))
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = self._check(X, fitted=True)
        out = X.astype(np.result_type(X.dtype, np.float32), copy=True)
        out[:, self.columns_] = self._forward(X[:, self.columns_].astype(np.float64))
        return out

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        X = self._check(X, fitted=True)
        out = X.astype(np.result_type(X.dtype, np.float32), copy=True)
        out[:, self.columns_] = self._inverse(X[:, self.columns_].astype(np.float64))
        return out

    def fit_transform(self, X: np.ndarray, y: Any = None) -> np.ndarray:
        return self.fit(X, y).transform(X)

    def output_names(self, names: list[str]) -> list[str]:
        """Feature names after this transform (unchanged except for PCA)."""
        return list(names)

    # --- serialization -----------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        return {}

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "columns": _jsonable(self.columns), "params": self.get_params()}
        if hasattr(self, "columns_"):
            d["state"] = {"n_features_in_": self.n_features_in_, "columns_": self.columns_.tolist(),
                          **{k: _jsonable(getattr(self, k)) for k in self._state}}
        return d

    def _set_state(self, state: dict[str, Any]) -> None:
        self.n_features_in_ = int(state["n_features_in_"])
        self.columns_ = np.asarray(state["columns_"], dtype=np.int64)
        for k in self._state:
            setattr(self, k, np.asarray(state[k], dtype=np.float64))

    # --- helpers -----------------------------------------------------------------------------
    def _name(self, j: int) -> str:
        col = int(self.columns_[j])
        return f"'{self.feature_names[col]}' (column {col})" if self.feature_names else f"column {col}"

    def _resolve(self, n_features: int) -> np.ndarray:
        if self.columns is None:
            return np.arange(n_features)
        idx = []
        for c in self.columns:
            if isinstance(c, str):
                if not self.feature_names or c not in self.feature_names:
                    known = list(self.feature_names or [])
                    raise ConfigError(f"{self.kind}: unknown feature '{c}'; features are {known}")
                idx.append(list(self.feature_names).index(c))
            elif not 0 <= int(c) < n_features:
                raise ConfigError(f"{self.kind}: column index {c} out of range for {n_features} features")
            else:
                idx.append(int(c))
        return np.asarray(idx, dtype=np.int64)

    def _check(self, X: np.ndarray, fitted: bool) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2:
            raise DataError(f"{self.kind}: expected a 2-D array (n, F), got shape {X.shape}")
        if fitted:
            if not hasattr(self, "columns_"):
                raise HepnnError(f"{self.kind}: call fit before transform")
            if X.shape[1] != self.n_features_in_:
                raise DataError(f"{self.kind}: fitted on {self.n_features_in_} features, got {X.shape[1]}")
        return X

    def _fit(self, X: np.ndarray) -> None:
        pass

    @abstractmethod
    def _forward(self, X: np.ndarray) -> np.ndarray:
        """The transform of the selected columns, (n, k) -> (n, k)."""

    @abstractmethod
    def _inverse(self, X: np.ndarray) -> np.ndarray:
        """The inverse of ``_forward`` (the identity where none exists, e.g. Clip)."""


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def _safe_scale(s: np.ndarray) -> np.ndarray:
    # A constant column keeps its values (scale 1), as in scikit-learn's scalers.
    return np.where(s > 0, s, 1.0)


class Standardize(ColumnTransform):
    """x' = (x - mean) / std per column (population std; std = 0 -> scale 1). Like StandardScaler."""

    kind = "standardize"
    _state = ("mean_", "scale_")

    def _fit(self, X):
        self.mean_, self.scale_ = X.mean(axis=0), _safe_scale(X.std(axis=0))

    def _forward(self, X):
        return (X - self.mean_) / self.scale_

    def _inverse(self, X):
        return X * self.scale_ + self.mean_


class RobustStandardize(ColumnTransform):
    """x' = (x - median) / (q_hi - q_lo) per column; robust to tails. Like RobustScaler(quantile_range)."""

    kind = "robust_standardize"
    _state = ("center_", "scale_")

    def __init__(self, *, quantile_range: tuple[float, float] = (16.0, 84.0), **kw: Any) -> None:
        super().__init__(**kw)
        self.quantile_range = quantile_range

    def get_params(self):
        return {"quantile_range": list(self.quantile_range)}

    def _fit(self, X):
        lo, hi = np.percentile(X, self.quantile_range, axis=0)
        self.center_, self.scale_ = np.median(X, axis=0), _safe_scale(hi - lo)

    def _forward(self, X):
        return (X - self.center_) / self.scale_

    def _inverse(self, X):
        return X * self.scale_ + self.center_


class Log(ColumnTransform):
    """x' = log(x - offset); every value must exceed ``offset`` (else a DataError naming the column)."""

    kind = "log"

    def __init__(self, *, offset: float = 0.0, **kw: Any) -> None:
        super().__init__(**kw)
        self.offset = offset

    def get_params(self):
        return {"offset": self.offset}

    def _forward(self, X):
        bad = ~(X > self.offset)  # also catches NaN
        if np.any(bad):
            row, j = np.argwhere(bad)[0]
            raise DataError(
                f"log: {self._name(j)} has value {X[row, j].item()!r} <= offset {self.offset} at row {row}; "
                "use a smaller offset (params.offset) or clip the column first"
            )
        return np.log(X - self.offset)

    def _inverse(self, X):
        return np.exp(X) + self.offset


class Clip(ColumnTransform):
    """x' = min(max(x, lo), hi). Not invertible: inverse_transform is the identity."""

    kind = "clip"

    def __init__(self, *, lo: float | None = None, hi: float | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.lo, self.hi = lo, hi

    def get_params(self):
        return {"lo": self.lo, "hi": self.hi}

    def _forward(self, X):
        return np.clip(X, self.lo, self.hi)

    def _inverse(self, X):
        return X


class SharedScale(ColumnTransform):
    """One scale for a group of correlated columns (e.g. px, py, pz): x' = (x - m) / s with a single s.

    ``s`` is the std of all the group's values pooled; ``m`` is their pooled mean if ``center`` else 0,
    so that with ``center=False`` ratios between the columns (directions) are kept exactly.
    """

    kind = "shared_scale"
    _state = ("mean_", "scale_")

    def __init__(self, *, center: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.center = center

    def get_params(self):
        return {"center": self.center}

    def _fit(self, X):
        self.mean_ = np.asarray(X.mean() if self.center else 0.0)
        self.scale_ = _safe_scale(np.asarray(X.std()))

    def _forward(self, X):
        return (X - self.mean_) / self.scale_

    def _inverse(self, X):
        return X * self.scale_ + self.mean_


class PCA(ColumnTransform):
    """Principal components of the selected columns (scikit-learn's PCA fits them), optional whitening.

    The output has the untouched columns first, in their order, then the ``n_components`` components
    (names ``pca0, pca1, ...``). ``explained_variance_ratio_`` reports each component's share.
    """

    kind = "pca"
    _state = ("mean_", "components_", "explained_variance_", "explained_variance_ratio_")

    def __init__(self, *, n_components: int | None = None, whiten: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.n_components, self.whiten = n_components, whiten

    def get_params(self):
        return {"n_components": self.n_components, "whiten": self.whiten}

    def _fit(self, X):
        from sklearn.decomposition import PCA as SkPCA

        pca = SkPCA(n_components=self.n_components, whiten=self.whiten, svd_solver="full").fit(X)
        for k in self._state:
            setattr(self, k, np.asarray(getattr(pca, k), dtype=np.float64))

    def _rest(self) -> np.ndarray:
        return np.setdiff1d(np.arange(self.n_features_in_), self.columns_)

    def _forward(self, X):
        z = (X - self.mean_) @ self.components_.T  # (n, k) -> (n, K)
        return z / np.sqrt(self.explained_variance_) if self.whiten else z

    def _inverse(self, z):
        if self.whiten:
            z = z * np.sqrt(self.explained_variance_)
        return z @ self.components_ + self.mean_  # (n, K) -> (n, k)

    def transform(self, X):
        # The column count changes (k inputs -> K components), so the base class's in-place update
        # does not apply: untouched columns first, then the components.
        X = self._check(X, fitted=True)
        z = self._forward(X[:, self.columns_].astype(np.float64))
        return np.concatenate([X[:, self._rest()], z], axis=1).astype(np.result_type(X.dtype, np.float32))

    def inverse_transform(self, X):
        X = np.asarray(X)
        n_rest = len(self._rest())
        out = np.empty((X.shape[0], self.n_features_in_), dtype=np.result_type(X.dtype, np.float32))
        out[:, self._rest()] = X[:, :n_rest]
        out[:, self.columns_] = self._inverse(X[:, n_rest:].astype(np.float64))
        return out

    def output_names(self, names):
        rest = [names[i] for i in self._resolve_rest(len(names))]
        return rest + [f"pca{k}" for k in range(len(self.components_))]

    def _resolve_rest(self, n: int) -> np.ndarray:
        return np.setdiff1d(np.arange(n), self._resolve(n))


TRANSFORMS: dict[str, type[ColumnTransform]] = {
    t.kind: t for t in (Standardize, RobustStandardize, Log, Clip, SharedScale, PCA)
}


class Preprocessor:
    """An ordered chain of transforms built from a run config's steps, saved to JSON with the run.

    Each step is ``{"kind": ..., "columns": [...], "params": {...}}`` with kind one of
    standardize, robust_standardize, log, clip, shared_scale, pca. Column names refer to the
    features entering that step (after a PCA step: the untouched names, then pca0, pca1, ...).
    """

    def __init__(self, steps: Sequence[dict[str, Any]], feature_names: Sequence[str] | None = None) -> None:
        self.steps = [dict(s) for s in steps]
        self.feature_names = list(feature_names) if feature_names is not None else None
        self.transforms_: list[ColumnTransform] = []

    def _build(self, step: dict[str, Any], names: list[str] | None) -> ColumnTransform:
        unknown = set(step) - {"kind", "columns", "params", "state"}
        if unknown or "kind" not in step:
            raise ConfigError(f"preprocessing step {step}: needs 'kind' and may have 'columns', 'params' only")
        cls = TRANSFORMS.get(step["kind"])
        if cls is None:
            raise ConfigError(f"preprocessing kind '{step['kind']}' is unknown; choose from {sorted(TRANSFORMS)}")
        try:
            t = cls(columns=step.get("columns"), feature_names=names, **(step.get("params") or {}))
        except TypeError as err:
            raise ConfigError(f"preprocessing step '{step['kind']}': bad params {step.get('params')} ({err})") from err
        if "state" in step:
            t._set_state(step["state"])
        return t

    def fit(self, X: np.ndarray, y: Any = None) -> "Preprocessor":
        names = self.feature_names
        self.transforms_ = []
        for step in self.steps:
            t = self._build({k: v for k, v in step.items() if k != "state"}, names)
            X = t.fit_transform(X)
            names = t.output_names(names) if names is not None else None
            self.transforms_.append(t)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        for t in self.transforms_:
            X = t.transform(X)
        return X

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        for t in reversed(self.transforms_):
            X = t.inverse_transform(X)
        return X

    def fit_transform(self, X: np.ndarray, y: Any = None) -> np.ndarray:
        return self.fit(X, y).transform(X)

    def to_dict(self) -> dict[str, Any]:
        steps = [t.to_dict() for t in self.transforms_] if self.transforms_ else self.steps
        return {"feature_names": self.feature_names, "steps": steps}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Preprocessor":
        """Rebuild a (fitted, if the dict holds state) preprocessor from :meth:`to_dict` output."""
        self = cls([{k: v for k, v in s.items() if k != "state"} for s in d["steps"]], d.get("feature_names"))
        if all("state" in s for s in d["steps"]) and d["steps"]:
            names = self.feature_names
            for step in d["steps"]:
                t = self._build(step, names)
                names = t.output_names(names) if names is not None else None
                self.transforms_.append(t)
        return self

    def save(self, path: str | os.PathLike[str]) -> None:
        from hepnn.io_utils import write_json_atomic

        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Preprocessor":
        import json

        try:
            return cls.from_dict(json.loads(open(path).read()))
        except (OSError, json.JSONDecodeError, KeyError) as err:
            raise DataError(f"{path}: cannot load preprocessing ({err}); is this a run directory's file?") from err
