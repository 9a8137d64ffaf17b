"""Preprocessing transforms against scikit-learn / numpy numbers; inverses; JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.decomposition import PCA as SkPCA
from sklearn.preprocessing import RobustScaler, StandardScaler

from hepnn.data.preprocess import PCA, Clip, Log, Preprocessor, RobustStandardize, SharedScale, Standardize
from hepnn.errors import ConfigError, DataError

NAMES = ["pt", "eta", "px", "py", "pz", "const"]


@pytest.fixture()
def X() -> np.ndarray:
    g = np.random.default_rng(0)
    x = np.stack([g.exponential(30, 500) + 1, g.normal(0, 2, 500), g.normal(5, 40, 500), g.normal(0, 30, 500),
                  g.normal(0, 80, 500), np.full(500, 3.0)], axis=1)
    x[:, 1] += 0.5 * x[:, 2] / 40  # correlated, for PCA
    return x


def test_standardize_matches_sklearn_and_constant_column_gets_scale_one(X):
    t = Standardize().fit(X)
    ref = StandardScaler().fit(X)
    np.testing.assert_allclose(t.transform(X), ref.transform(X), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t.mean_, ref.mean_)
    assert t.scale_[5] == 1.0 and np.all(t.transform(X)[:, 5] == 0)
    np.testing.assert_allclose(t.inverse_transform(t.transform(X)), X, rtol=1e-12)


def test_robust_standardize_matches_sklearn_robust_scaler(X):
    t = RobustStandardize(quantile_range=(16, 84), columns=[0, 2]).fit(X)
    ref = RobustScaler(quantile_range=(16, 84)).fit(X[:, [0, 2]])
    out = t.transform(X)
    np.testing.assert_allclose(out[:, [0, 2]], ref.transform(X[:, [0, 2]]), rtol=1e-12)
    np.testing.assert_array_equal(out[:, [1, 3, 4, 5]], X[:, [1, 3, 4, 5]])  # other columns untouched
    np.testing.assert_allclose(t.inverse_transform(out), X, rtol=1e-12)


def test_log_with_offset_and_bad_column_is_named(X):
    t = Log(offset=-1.0, columns=["pt"], feature_names=NAMES).fit(X)
    np.testing.assert_allclose(t.transform(X)[:, 0], np.log(X[:, 0] + 1.0))
    np.testing.assert_allclose(t.inverse_transform(t.transform(X)), X, rtol=1e-12)
    bad = X.copy()
    bad[[7, 9], 5] = -3.0
    t2 = Log(columns=["pt", "const"], feature_names=NAMES).fit(X)
    with pytest.raises(DataError, match=r"log: 'const' \(column 5\) has value -3.0 <= offset 0.0 at row 7"):
        t2.transform(bad)


def test_clip_and_columns_by_name(X):
    out = Clip(lo=-10, hi=10, columns=["eta", "px"], feature_names=NAMES).fit_transform(X)
    np.testing.assert_array_equal(out[:, 2], np.clip(X[:, 2], -10, 10))
    np.testing.assert_array_equal(out[:, 0], X[:, 0])
    with pytest.raises(ConfigError, match="unknown feature 'mass'"):
        Clip(lo=0, columns=["mass"], feature_names=NAMES).fit(X)


def test_shared_scale_keeps_ratios_and_uses_one_pooled_std(X):
    t = SharedScale(columns=[2, 3, 4]).fit(X)
    out = t.transform(X)
    s = np.std(X[:, 2:5].ravel())
    np.testing.assert_allclose(out[:, 2:5], X[:, 2:5] / s)
    np.testing.assert_allclose(out[:, 2] / out[:, 3], X[:, 2] / X[:, 3])  # directions kept
    c = SharedScale(columns=[2, 3, 4], center=True).fit(X)
    np.testing.assert_allclose(c.transform(X)[:, 2:5], (X[:, 2:5] - X[:, 2:5].mean()) / s)
    np.testing.assert_allclose(c.inverse_transform(c.transform(X)), X, rtol=1e-12)


@pytest.mark.parametrize("whiten", [False, True])
def test_pca_matches_sklearn(X, whiten):
    cols = [1, 2, 3, 4]
    t = PCA(n_components=3, whiten=whiten, columns=cols).fit(X)
    ref = SkPCA(n_components=3, whiten=whiten, svd_solver="full").fit(X[:, cols])
    out = t.transform(X)
    assert out.shape == (500, 2 + 3)
    np.testing.assert_array_equal(out[:, :2], X[:, [0, 5]])
    np.testing.assert_allclose(out[:, 2:], ref.transform(X[:, cols]), atol=1e-9)
    np.testing.assert_allclose(t.explained_variance_ratio_, ref.explained_variance_ratio_)
    full = PCA(columns=cols, whiten=whiten).fit(X)
    np.testing.assert_allclose(full.inverse_transform(full.transform(X)), X, atol=1e-9)


STEPS = [
    {"kind": "log", "columns": ["pt"], "params": {"offset": 0.0}},
    {"kind": "clip", "columns": ["eta"], "params": {"lo": -3, "hi": 3}},
    {"kind": "shared_scale", "columns": ["px", "py", "pz"]},
    {"kind": "robust_standardize", "columns": ["eta"]},
    {"kind": "pca", "columns": ["px", "py", "pz"], "params": {"n_components": 2, "whiten": True}},
    {"kind": "standardize", "columns": ["pca0", "pca1", "pt"]},
]


def test_preprocessor_json_round_trip_gives_identical_outputs(X, tmp_path):
    train, test = X[:400], X[400:]
    p = Preprocessor(STEPS, feature_names=NAMES).fit(train)
    out = p.transform(test)
    assert out.shape == (100, 3 + 2)
    p.save(tmp_path / "preprocess.json")
    q = Preprocessor.load(tmp_path / "preprocess.json")
    np.testing.assert_array_equal(q.transform(test), out)
    assert json.loads((tmp_path / "preprocess.json").read_text())["steps"][0]["kind"] == "log"
    # columns now: pt, eta, const, pca0, pca1. fit saw only the training rows: the final standardize
    # gives mean 0 on train, not on test
    np.testing.assert_allclose(p.transform(train)[:, [0, 3, 4]].mean(axis=0), 0, atol=1e-9)
    assert abs(out[:, [0, 3, 4]].mean(axis=0)).max() > 1e-3
    np.testing.assert_array_equal(out[:, 2], test[:, 5])
    lossless = [dict(s, params={"n_components": 3, "whiten": True}) if s["kind"] == "pca" else s for s in STEPS]
    r = Preprocessor.from_dict(Preprocessor(lossless[:-1], feature_names=NAMES).fit(train).to_dict())
    back = r.inverse_transform(r.transform(test))  # the clip on eta is not undone
    np.testing.assert_allclose(back[:, [0, 2, 3, 4, 5]], test[:, [0, 2, 3, 4, 5]], rtol=1e-9, atol=1e-9)


def test_float32_in_float32_out_and_config_errors(X):
    out = Standardize().fit(X.astype(np.float32)).transform(X.astype(np.float32))
    assert out.dtype == np.float32
    with pytest.raises(ConfigError, match="kind 'minmax' is unknown"):
        Preprocessor([{"kind": "minmax"}]).fit(X)
    with pytest.raises(ConfigError, match="bad params"):
        Preprocessor([{"kind": "clip", "params": {"low": 0}}]).fit(X)
    with pytest.raises(DataError, match="fitted on 6 features, got 5"):
        Standardize().fit(X).transform(X[:, :5])
