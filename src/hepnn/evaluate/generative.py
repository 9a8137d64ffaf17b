"""How close generated jets are to real ones: W1 per feature, Fréchet distance, classifier test.

Pure functions on numpy arrays (plus ``physics_features`` for jets in the native layout); every
number comes with a bootstrap error. The choice follows Kansal et al., "Evaluating generative models
in high energy physics", arXiv:2211.10295:

* W1: the 1-D Wasserstein distance (``scipy.stats.wasserstein_distance``) of each feature, in the
  feature's units (GeV for mass and pT). Error: std over bootstrap resamples of both samples.
* FPD: the Fréchet distance between Gaussians fitted to the jet-level physics features,
  ||mu_r − mu_g||² + Tr(S_r + S_g − 2 (S_r S_g)^{1/2}), after scaling every feature by the real
  sample's std (so GeV and ratios weigh alike). The paper extrapolates to infinite sample size; we
  report the finite-sample value at the given n, with its bootstrap error (an unbiased comparison
  needs equal n).
* Classifier two-sample test: a gradient-boosted classifier trained to tell generated from real jets
  (half of each sample), its test AUC (0.5 = indistinguishable); error by bootstrapping the test set.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from hepnn.errors import HepnnError


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _finite(a: Any) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64).ravel()
    return a[np.isfinite(a)]


def w1(real: Any, fake: Any, *, n_boot: int = 20, seed: int = 0) -> tuple[float, float]:
    """1-D Wasserstein distance and its bootstrap error. real (n,), fake (m,) -> (W1, err)."""
    from scipy.stats import wasserstein_distance

    r, f = _finite(real), _finite(fake)
    if r.size == 0 or f.size == 0:
        raise HepnnError("W1 needs at least one finite value in each sample")
    value = float(wasserstein_distance(r, f))
    g = _rng(seed)
    boot = [wasserstein_distance(g.choice(r, r.size), g.choice(f, f.size)) for _ in range(n_boot)]
    return value, float(np.std(boot)) if n_boot > 1 else 0.0


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two samples. real (n, d), fake (m, d) -> float."""
    from scipy import linalg

    r, f = np.atleast_2d(np.asarray(real, np.float64)), np.atleast_2d(np.asarray(fake, np.float64))
    mu_r, mu_f = r.mean(0), f.mean(0)
    cov_r, cov_f = np.atleast_2d(np.cov(r, rowvar=False)), np.atleast_2d(np.cov(f, rowvar=False))
    covmean = linalg.sqrtm(cov_r @ cov_f)
    covmean = np.real(covmean)  # sqrtm returns tiny imaginary parts from round-off
    return float(np.sum((mu_r - mu_f) ** 2) + np.trace(cov_r + cov_f - 2 * covmean))


def fpd(real: np.ndarray, fake: np.ndarray, *, n_boot: int = 20, seed: int = 0) -> tuple[float, float]:
    """Fréchet physics distance on features scaled by the real std (module doc). -> (FPD, err)."""
    r, f = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    keep_r, keep_f = np.isfinite(r).all(1), np.isfinite(f).all(1)
    r, f = r[keep_r], f[keep_f]
    scale = r.std(0)
    scale[scale == 0] = 1.0
    r, f = r / scale, f / scale
    value = frechet_distance(r, f)
    g = _rng(seed)
    boot = [frechet_distance(r[g.integers(0, len(r), len(r))], f[g.integers(0, len(f), len(f))])
            for _ in range(n_boot)]
    return value, float(np.std(boot)) if n_boot > 1 else 0.0


def classifier_test(real: np.ndarray, fake: np.ndarray, *, n_boot: int = 50, seed: int = 0) -> tuple[float, float]:
    """Test AUC of a classifier separating ``fake`` from ``real`` (equal numbers of each). -> (AUC, err).

    Shapes: real (n, d), fake (m, d); min(n, m) jets of each are used, half to train, half to test.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    g = _rng(seed)
    r, f = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    r, f = r[np.isfinite(r).all(1)], f[np.isfinite(f).all(1)]
    n = min(len(r), len(f))
    if n < 20:
        raise HepnnError(f"the classifier test needs at least 20 jets per sample, got {n}")
    x = np.concatenate([r[g.permutation(len(r))[:n]], f[g.permutation(len(f))[:n]]])
    y = np.concatenate([np.zeros(n), np.ones(n)])
    order = g.permutation(2 * n)
    x, y = x[order], y[order]
    half = n  # train on the first half of the shuffled jets, test on the second
    clf = HistGradientBoostingClassifier(max_iter=100, random_state=seed).fit(x[:half], y[:half])
    s, yt = clf.predict_proba(x[half:])[:, 1], y[half:]
    value = float(roc_auc_score(yt, s))
    boot = []
    for _ in range(n_boot):
        i = g.integers(0, len(yt), len(yt))
        if 0 < yt[i].sum() < len(i):
            boot.append(roc_auc_score(yt[i], s[i]))
    return value, float(np.std(boot)) if len(boot) > 1 else 0.0


def compare_samples(real: Mapping[str, Any], fake: Mapping[str, Any], *,
                    real_constituents: Mapping[str, Any] | None = None,
                    fake_constituents: Mapping[str, Any] | None = None,
                    n_boot: int = 20, seed: int = 0) -> dict[str, float]:
    """All metrics for two samples of per-jet features (name -> (n,)) and, optionally, flattened
    constituent features (name -> (P,)): ``w1_<name>`` and ``w1_<name>_err`` for each feature,
    ``fpd``/``fpd_err`` and ``c2st_auc``/``c2st_auc_err`` on the per-jet features."""
    names = [k for k in real if k in fake]
    if not names:
        raise HepnnError(f"no common features to compare: real has {sorted(real)}, generated {sorted(fake)}")
    out: dict[str, float] = {}
    for k in names:
        out[f"w1_{k}"], out[f"w1_{k}_err"] = w1(real[k], fake[k], n_boot=n_boot, seed=seed)
    for k in (real_constituents or {}):
        if k in (fake_constituents or {}):
            out[f"w1_{k}"], out[f"w1_{k}_err"] = w1(real_constituents[k], fake_constituents[k], n_boot=n_boot, seed=seed)
    r = np.stack([np.asarray(real[k], np.float64) for k in names], axis=1)  # (n, d)
    f = np.stack([np.asarray(fake[k], np.float64) for k in names], axis=1)  # (m, d)
    out["fpd"], out["fpd_err"] = fpd(r, f, n_boot=n_boot, seed=seed)
    out["c2st_auc"], out["c2st_auc_err"] = classifier_test(r, f, seed=seed)
    return out


def physics_features(arrays: Any, k: int | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Jet-level and constituent features of jets in the native layout, from their constituents.

    Args:
        arrays: awkward array with jagged ``part_E/px/py/pz`` (pT-ordered).
        k: use only the ``k`` hardest constituents (to compare with a generator of k particles).

    Returns:
        ``({"mass", "pt", "n_particles"} (n,) each, {"part_log_pt", "part_deta", "part_dphi"} (P,) each)``,
        angles relative to the jet axis (the summed constituents).
    """
    import awkward as ak

    parts = {c: arrays[c] if k is None else arrays[c][:, :k] for c in ("part_E", "part_px", "part_py", "part_pz")}
    e, px, py, pz = (ak.sum(parts[c], axis=1).to_numpy().astype(np.float64) for c in parts)
    pt = np.hypot(px, py)
    m2 = e**2 - px**2 - py**2 - pz**2
    jet = {"mass": np.sign(m2) * np.sqrt(np.abs(m2)), "pt": pt,
           "n_particles": ak.num(parts["part_E"], axis=1).to_numpy().astype(np.float64)}
    ppt = np.hypot(parts["part_px"], parts["part_py"])
    jet_eta, jet_phi = np.arcsinh(pz / np.where(pt > 0, pt, 1.0)), np.arctan2(py, px)
    peta = np.arcsinh(parts["part_pz"] / ak.where(ppt > 0, ppt, 1.0))
    dphi = np.arctan2(parts["part_py"], parts["part_px"]) - jet_phi
    dphi = (dphi + np.pi) % (2 * np.pi) - np.pi
    const = {"part_log_pt": np.log(ak.to_numpy(ak.flatten(ppt)).astype(np.float64).clip(1e-6)),
             "part_deta": ak.to_numpy(ak.flatten(peta - jet_eta)).astype(np.float64),
             "part_dphi": ak.to_numpy(ak.flatten(dphi)).astype(np.float64)}
    return jet, const
