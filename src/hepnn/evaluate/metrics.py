"""Physics metrics for classifiers and regressors: pure functions on numpy arrays, no state, no I/O.

Classification follows the conventions of the top-tagging comparison (Kasieczka et al.,
"The Machine Learning Landscape of Top Taggers", arXiv:1902.09914): signal is label 1, the ROC curve
is background efficiency εB against signal efficiency εS, and the headline numbers are accuracy, AUC
and the background rejection 1/εB at εS = 0.3 and 0.5. Sample weights (e.g. generator weights) are
honoured everywhere an efficiency is computed.

Shapes: ``y_true (n,)`` integer labels; ``score (n,)`` a discriminant (larger = more signal-like) or
``(n, k)`` class probabilities; ``sample_weight (n,)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hepnn.errors import HepnnError

__all__ = [
    "accuracy",
    "auc",
    "background_rejection",
    "binned_response",
    "classification_metrics",
    "interpolate_eps_b",
    "ks_overtraining",
    "mean_std_over_seeds",
    "paired_bootstrap",
    "regression_metrics",
    "rejection_at",
    "rejection_key",
    "roc_curve",
]


def _as_1d(name: str, a: Any, n: int | None = None) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise HepnnError(f"{name} must be 1-D, got shape {a.shape}")
    if a.size == 0:
        raise HepnnError(f"{name} is empty: metrics need at least one jet")
    if n is not None and a.shape[0] != n:
        raise HepnnError(f"{name} has {a.shape[0]} entries, expected {n}")
    return a


def _weights(sample_weight: Any, n: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n, dtype=np.float64)
    return _as_1d("sample_weight", sample_weight, n).astype(np.float64)


def roc_curve(
    y_true: Any, score: Any, sample_weight: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve as background efficiency εB against signal efficiency εS (signal = label 1).

    One point per distinct score value, scanned from the highest threshold down; a jet passes when
    ``score >= threshold``. The first point is (0, 0) at threshold +inf, the last is (1, 1). This is
    ``sklearn.metrics.roc_curve(..., drop_intermediate=False)`` with (fpr, tpr) = (εB, εS).

    Args:
        y_true: labels, 1 = signal, anything else = background.
        score: discriminant, larger = more signal-like.
        sample_weight: per-jet weights (may be negative; the class totals must be positive).

    Returns:
        ``(eps_b, eps_s, thresholds)``, each ``(m,)`` with ``m`` = number of distinct scores + 1.
    """
    y = _as_1d("y_true", y_true)
    s = _as_1d("score", score, y.shape[0]).astype(np.float64)
    w = _weights(sample_weight, y.shape[0])
    if not np.all(np.isfinite(s)):
        raise HepnnError("score contains NaN or inf; the ROC curve is undefined")
    order = np.argsort(-s, kind="mergesort")  # descending score; stable for reproducibility
    s, w, is_sig = s[order], w[order], (y[order] == 1)
    # the last jet of each run of tied scores closes one threshold step
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]
    tp = np.cumsum(np.where(is_sig, w, 0.0))[last]  # (m-1,) signal weight passing
    fp = np.cumsum(np.where(is_sig, 0.0, w))[last]  # (m-1,) background weight passing
    if tp[-1] <= 0 or fp[-1] <= 0:
        raise HepnnError(
            "the ROC curve needs signal (label 1) and background jets with positive total weight"
        )
    eps_s = np.r_[0.0, tp / tp[-1]]
    eps_b = np.r_[0.0, fp / fp[-1]]
    thresholds = np.r_[np.inf, s[last]]
    return eps_b, eps_s, thresholds


def auc(y_true: Any, score: Any, sample_weight: Any = None) -> float:
    """Area under the ROC curve (trapezoidal rule; tied scores count one half, as scikit-learn)."""
    eps_b, eps_s, _ = roc_curve(y_true, score, sample_weight)
    return _trapezoid(eps_s, eps_b)


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    # np.trapezoid is numpy >= 2 only; the project supports numpy 1.26
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1])) / 2.0)


def accuracy(
    y_true: Any, score_or_pred: Any, threshold: float = 0.5, sample_weight: Any = None
) -> float:
    """Fraction of correctly classified jets (weighted if ``sample_weight`` is given).

    Binary ``(n,)`` scores are class 1 when ``score >= threshold`` (so hard 0/1 predictions pass
    through unchanged); ``(n, k)`` probabilities are classified by their argmax.
    """
    y = _as_1d("y_true", y_true)
    p = np.asarray(score_or_pred)
    if p.ndim == 2 and p.shape[1] > 1:
        if p.shape[0] != y.shape[0]:
            raise HepnnError(f"scores have {p.shape[0]} rows, expected {y.shape[0]}")
        pred = np.argmax(p, axis=1)
    else:
        pred = (_as_1d("score", p, y.shape[0]) >= threshold).astype(np.int64)
    w = _weights(sample_weight, y.shape[0])
    return float(np.sum(w * (pred == y)) / np.sum(w))


def interpolate_eps_b(eps_s: Any, eps_b: Any, eff_s: float) -> float:
    """εB at signal efficiency ``eff_s`` on a ROC curve, linearly interpolated in εS.

    Convention (the one used for the rejection numbers of arXiv:1902.09914): walk the curve from the
    tightest cut, take the first point ``i`` with ``eps_s[i] >= eff_s``; if it hits ``eff_s`` exactly
    return ``eps_b[i]``, otherwise interpolate linearly between points ``i-1`` and ``i``::

        εB = εB[i-1] + (eff_s - εS[i-1]) / (εS[i] - εS[i-1]) * (εB[i] - εB[i-1])

    Where several points share the same εS (a cut that only removes background) this picks the
    smallest εB, i.e. the best working point. For curves without tied scores the segment crossing
    ``eff_s`` is horizontal, so the result is the εB of the loosest cut that still keeps ``eff_s``.

    Args:
        eps_s, eps_b: ``(m,)`` ROC points ordered from the tightest to the loosest cut.
        eff_s: target signal efficiency in (0, 1].
    """
    if not 0.0 < eff_s <= 1.0:
        raise HepnnError(f"signal efficiency must be in (0, 1], got {eff_s}")
    es, eb = np.asarray(eps_s, dtype=np.float64), np.asarray(eps_b, dtype=np.float64)
    reached = es >= eff_s - 1e-12  # tolerance: εS = 0.5 from 2/4 must count as reaching 0.5
    if es.size == 0 or not reached.any():
        raise HepnnError(f"the ROC curve never reaches εS = {eff_s}")
    i = int(np.argmax(reached))
    if i == 0 or es[i] <= eff_s + 1e-12:
        return float(eb[i])
    frac = (eff_s - es[i - 1]) / (es[i] - es[i - 1])
    return float(eb[i - 1] + frac * (eb[i] - eb[i - 1]))


def background_rejection(
    y_true: Any, score: Any, eff_s: float, sample_weight: Any = None
) -> float:
    """Background rejection 1/εB at signal efficiency ``eff_s`` (arXiv:1902.09914).

    εB is interpolated as in :func:`interpolate_eps_b`. When no background passes at that working
    point (εB = 0) the rejection is ``inf`` (``float("inf")``; JSON writers emit ``Infinity``);
    quote it as a lower limit 1/εB > N_background in a table.
    """
    eps_b, eps_s, _ = roc_curve(y_true, score, sample_weight)
    return _rejection(eps_s, eps_b, eff_s)


def _rejection(eps_s: np.ndarray, eps_b: np.ndarray, eff_s: float) -> float:
    e_b = interpolate_eps_b(eps_s, eps_b, eff_s)
    return float("inf") if e_b <= 0.0 else 1.0 / e_b


def rejection_at(
    y_true: Any, score: Any, effs: Sequence[float] = (0.3, 0.5), sample_weight: Any = None
) -> np.ndarray:
    """Background rejections 1/εB at several signal efficiencies from one ROC curve.

    Shapes: returns ``(len(effs),)`` in the order of ``effs``.
    """
    eps_b, eps_s, _ = roc_curve(y_true, score, sample_weight)
    return np.array([_rejection(eps_s, eps_b, e) for e in effs])


def rejection_key(eff_s: float) -> str:
    """Metric name of a rejection: 0.3 -> ``"rej30"``, 0.5 -> ``"rej50"``."""
    return f"rej{round(100 * eff_s)}"


def classification_metrics(
    y_true: Any,
    score: Any,
    effs: Sequence[float] = (0.3, 0.5),
    sample_weight: Any = None,
    *,
    signal_class: int = 1,
    background_class: int = 0,
) -> dict[str, float]:
    """Headline tagging metrics: ``accuracy``, ``auc``, ``rej30``, ``rej50`` (one per ``effs``), ``n_jets``.

    Binary: ``score (n,)`` is the signal discriminant. Multi-class: ``score (n, k)`` are class
    probabilities; accuracy uses the argmax, ``auc`` is the macro-averaged one-vs-rest AUC (as
    ``roc_auc_score(multi_class="ovr", average="macro")``), and the rejections are for
    ``signal_class`` against ``background_class`` using only jets of those two classes and the
    discriminant p_s / (p_s + p_b) (the JetClass convention, arXiv:2202.03772).
    """
    y = _as_1d("y_true", y_true)
    s = np.asarray(score, dtype=np.float64)
    w = _weights(sample_weight, y.shape[0])
    out: dict[str, float] = {"accuracy": accuracy(y, s, sample_weight=w)}
    if s.ndim == 2 and s.shape[1] > 1:
        k = s.shape[1]
        out["auc"] = float(np.mean([auc(y == c, s[:, c], w) for c in range(k)]))
        pair = (y == signal_class) | (y == background_class)
        p_s, p_b = s[pair, signal_class], s[pair, background_class]
        disc = p_s / np.maximum(p_s + p_b, np.finfo(np.float64).tiny)
        eps_b, eps_s, _ = roc_curve(y[pair] == signal_class, disc, w[pair])
    else:
        eps_b, eps_s, _ = roc_curve(y, s, w)
        out["auc"] = _trapezoid(eps_s, eps_b)
    for e in effs:
        out[rejection_key(e)] = _rejection(eps_s, eps_b, e)
    out["n_jets"] = int(y.shape[0])
    return out


def ks_overtraining(
    score_train: Any, y_train: Any, score_test: Any, y_test: Any
) -> dict[str, float]:
    """Kolmogorov–Smirnov overtraining check per class (the TMVA convention).

    For each class ``c`` the classifier output of training jets of class ``c`` is compared with that of
    test jets of class ``c`` (``scipy.stats.ks_2samp``). A small p-value (≲ 0.01) means the model
    responds differently to jets it was trained on: overtraining. For ``(n, k)`` probabilities, class
    ``c`` is tested on column ``c``.

    Returns:
        ``{"ks_stat_<c>": D, "ks_pvalue_<c>": p}`` for every class present in both samples.
    """
    from scipy.stats import ks_2samp

    s_tr, s_te = np.asarray(score_train), np.asarray(score_test)
    y_tr, y_te = _as_1d("y_train", y_train), _as_1d("y_test", y_test)
    out: dict[str, float] = {}
    for c in np.intersect1d(np.unique(y_tr), np.unique(y_te)):
        a = s_tr[y_tr == c] if s_tr.ndim == 1 else s_tr[y_tr == c, int(c)]
        b = s_te[y_te == c] if s_te.ndim == 1 else s_te[y_te == c, int(c)]
        res = ks_2samp(a, b)
        out[f"ks_stat_{int(c)}"] = float(res.statistic)
        out[f"ks_pvalue_{int(c)}"] = float(res.pvalue)
    if not out:
        raise HepnnError("ks_overtraining: train and test share no class")
    return out


def _residual(y_true: Any, y_pred: Any, relative: bool) -> np.ndarray:
    t = _as_1d("y_true", y_true).astype(np.float64)
    p = _as_1d("y_pred", y_pred, t.shape[0]).astype(np.float64)
    return (p - t) / t if relative else p - t


def regression_metrics(y_true: Any, y_pred: Any, *, relative: bool = False) -> dict[str, float]:
    """``mse``, ``mae``, ``bias`` = mean(r) and ``resolution`` = std(r) of the residual r = pred − true.

    With ``relative=True`` the residual is (pred − true) / true, the usual energy/mass response.
    ``std`` uses ddof = 0.
    """
    r = _residual(y_true, y_pred, relative)
    return {
        "mse": float(np.mean(r**2)),
        "mae": float(np.mean(np.abs(r))),
        "bias": float(np.mean(r)),
        "resolution": float(np.std(r)),
    }


def binned_response(
    y_true: Any, y_pred: Any, x: Any, bins: int | Sequence[float], *, relative: bool = False
) -> dict[str, np.ndarray]:
    """Bias and resolution of the residual in bins of a variable ``x`` (e.g. truth pT), vectorized.

    Bins follow ``np.histogram``: half-open ``[lo, hi)`` except the last, which includes its upper
    edge; jets outside the edges are ignored. An ``int`` gives that many equal-width bins over the
    range of ``x``. Empty bins give NaN; a bin with one jet has resolution 0.

    Returns:
        ``bin_edges (b+1,)``, ``bin_centers (b,)``, ``counts (b,)``, ``bias (b,)`` = mean residual,
        ``resolution_std (b,)`` (ddof = 0) and ``resolution_iqr (b,)`` = (q75 − q25) / 1.349, the
        outlier-robust width that equals σ for a Gaussian (quantiles interpolated as ``np.percentile``).
    """
    r = _residual(y_true, y_pred, relative)
    xv = _as_1d("x", x, r.shape[0]).astype(np.float64)
    edges = np.histogram_bin_edges(xv, bins=bins)
    nb = edges.size - 1
    idx = np.digitize(xv, edges) - 1  # (n,) bin index, -1 below and nb above
    idx[xv == edges[-1]] = nb - 1  # the last bin is closed on the right
    keep = (idx >= 0) & (idx < nb)
    idx, r = idx[keep], r[keep]
    counts = np.bincount(idx, minlength=nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(idx, weights=r, minlength=nb) / counts
        # two-pass variance: subtracting the bin mean first avoids E[r²] − E[r]² cancellation
        var = np.bincount(idx, weights=(r - mean[idx]) ** 2, minlength=nb) / counts
    q25, q75 = _binned_quantiles(idx, r, counts, (0.25, 0.75))
    return {
        "bin_edges": edges,
        "bin_centers": 0.5 * (edges[:-1] + edges[1:]),
        "counts": counts,
        "bias": mean,
        "resolution_std": np.sqrt(var),
        "resolution_iqr": (q75 - q25) / 1.349,
    }


def _binned_quantiles(
    idx: np.ndarray, r: np.ndarray, counts: np.ndarray, qs: Sequence[float]
) -> list[np.ndarray]:
    """Per-bin quantiles with ``np.percentile``'s linear interpolation, without a loop over bins."""
    if r.size == 0:
        return [np.full(counts.shape, np.nan) for _ in qs]
    sorted_r = r[np.lexsort((r, idx))]  # grouped by bin, ascending within each bin
    start = np.r_[0, np.cumsum(counts)[:-1]]  # (b,) offset of each bin in sorted_r
    last = np.maximum(counts - 1, 0)  # (b,) rank of the largest residual in each bin
    out = []
    for q in qs:
        pos = q * last  # (b,) fractional rank of the quantile inside its bin
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, last)
        glo = np.minimum(start + lo, r.size - 1)  # empty bins index safely, masked below
        ghi = np.minimum(start + hi, r.size - 1)
        vals = sorted_r[glo] + (pos - lo) * (sorted_r[ghi] - sorted_r[glo])
        out.append(np.where(counts > 0, vals, np.nan))
    return out


def mean_std_over_seeds(metric_dicts: Sequence[Mapping[str, Any]]) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation of each numeric metric over runs that differ only by seed.

    Uses the keys present (with a number) in every dict; the std has ddof = 1 for n > 1 and is 0 for a
    single run. An ``inf`` rejection in any seed makes the mean ``inf`` and the std NaN.
    """
    if not metric_dicts:
        raise HepnnError("mean_std_over_seeds needs at least one metrics dict")
    keys = [
        k
        for k, v in metric_dicts[0].items()
        if _is_number(v) and all(_is_number(d.get(k)) for d in metric_dicts)
    ]
    out: dict[str, tuple[float, float]] = {}
    for k in keys:
        v = np.array([float(d[k]) for d in metric_dicts])
        with np.errstate(invalid="ignore"):
            std = float(np.std(v, ddof=1)) if v.size > 1 else 0.0
        out[k] = (float(np.mean(v)), std)
    return out


def paired_bootstrap(
    y_true: Any,
    score_a: Any,
    score_b: Any,
    metric: str = "rej30",
    *,
    n_resamples: int = 1000,
    level: float = 0.68,
    seed: int = 0,
) -> dict[str, float]:
    """Is tagger B better than tagger A on this test set, or is the difference test-set noise?

    Both taggers scored the same jets. Each resample draws the test jets again with replacement, the
    signal and background jets separately (class counts fixed), as integer weights, and computes
    ``metric`` (``auc``, ``accuracy`` or ``rejNN``, e.g. ``rej30``) for both taggers on the same draw,
    so what the two share (the same hard QCD jets) cancels in the difference. At 1/εB ~ 1000 with
    20 000 QCD test jets only ~20 background jets pass, and the test set alone moves the rejection by
    ~20 %: compare the interval, not the two numbers.

    Shapes: ``y_true, score_a, score_b (n,)``. Returns ``a``, ``b`` (the metric on the test set),
    ``diff`` (b − a), ``lo``, ``hi`` (the central ``level`` interval of b − a over the resamples),
    ``p_b_better`` (the fraction of resamples where b > a) and ``n_resamples``. Rejections that are
    infinite in a resample (no background passes) count as larger than any finite one.
    """
    if metric not in ("auc", "accuracy") and not metric.startswith("rej"):
        raise HepnnError(f"paired_bootstrap: metric {metric!r} is not auc, accuracy or rejNN (e.g. rej30)")
    y = _as_1d("y_true", y_true)
    a = _as_1d("score_a", score_a, y.shape[0])
    b = _as_1d("score_b", score_b, y.shape[0])
    effs = (int(metric[3:]) / 100,) if metric.startswith("rej") else ()

    def value(score: np.ndarray, w: np.ndarray | None) -> float:
        return classification_metrics(y, score, effs, sample_weight=w)[metric]

    rng = np.random.default_rng(seed)
    classes = [np.flatnonzero(y == 1), np.flatnonzero(y != 1)]
    diffs = np.empty(n_resamples)
    for r in range(n_resamples):
        w = np.zeros(y.shape[0])
        for idx in classes:
            w[idx] = rng.multinomial(idx.size, np.full(idx.size, 1.0 / idx.size))
        va, vb = value(a, w), value(b, w)
        diffs[r] = 0.0 if va == vb else vb - va  # inf - finite = inf; both inf compare equal
    tail = (1.0 - level) / 2
    va, vb = value(a, None), value(b, None)
    return {"a": va, "b": vb, "diff": vb - va, "lo": float(np.quantile(diffs, tail)),
            "hi": float(np.quantile(diffs, 1 - tail)), "p_b_better": float(np.mean(diffs > 0)),
            "n_resamples": n_resamples}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
