"""Metrics against scikit-learn, scipy and hand-computed numbers."""

import numpy as np
import pytest
from scipy.stats import ks_2samp
from sklearn import metrics as skm

from hepnn.errors import HepnnError
from hepnn.evaluate import metrics as m


def _toy(rng, n=400, ties=False):
    y = rng.integers(0, 2, n)
    s = rng.normal(size=n) + 0.8 * y
    if ties:
        s = np.round(s, 1)  # many tied scores across both classes
    w = rng.uniform(0.2, 2.0, n)
    return y, s, w


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_roc_auc_match_sklearn(ties, weighted):
    rng = np.random.default_rng(1 + ties + 2 * weighted)
    y, s, w = _toy(rng, ties=ties)
    w = w if weighted else None
    eps_b, eps_s, thr = m.roc_curve(y, s, w)
    fpr, tpr, thr_ref = skm.roc_curve(y, s, sample_weight=w, drop_intermediate=False)
    np.testing.assert_allclose(eps_b, fpr, atol=1e-12)
    np.testing.assert_allclose(eps_s, tpr, atol=1e-12)
    np.testing.assert_allclose(thr[1:], thr_ref[1:])
    assert m.auc(y, s, w) == pytest.approx(skm.roc_auc_score(y, s, sample_weight=w), abs=1e-12)


def test_accuracy_matches_sklearn_binary_and_multiclass():
    rng = np.random.default_rng(2)
    y, s, w = _toy(rng)
    p = 1 / (1 + np.exp(-s))
    assert m.accuracy(y, p) == pytest.approx(skm.accuracy_score(y, p >= 0.5))
    assert m.accuracy(y, p, sample_weight=w) == pytest.approx(
        skm.accuracy_score(y, p >= 0.5, sample_weight=w)
    )
    y3 = rng.integers(0, 3, 300)
    probs = rng.dirichlet(np.ones(3), 300)
    assert m.accuracy(y3, probs) == pytest.approx(skm.accuracy_score(y3, probs.argmax(1)))


# 4 signal + 4 background jets; scanning the cut down, (εS, εB) goes
# (.25, 0) -> (.25, .25) -> (.5, .25) -> ...: at εS = 0.5, εB = 0.25, rejection 4.
SIG_HAND = [0.9, 0.7, 0.5, 0.3]
BKG_HAND = [0.8, 0.4, 0.2, 0.1]


def _hand(sig, bkg):
    return np.r_[np.ones(len(sig)), np.zeros(len(bkg))], np.r_[sig, bkg]


def test_rejection_hand_computed():
    y, s = _hand(SIG_HAND, BKG_HAND)
    assert m.background_rejection(y, s, 0.5) == pytest.approx(4.0)
    # εS = 1 is first reached at the cut 0.3, passing background {0.8, 0.4}: εB = 0.5, rejection 2
    assert m.background_rejection(y, s, 1.0) == pytest.approx(2.0)


def test_rejection_interpolated_between_tied_points():
    # a tie at 0.6 (two signal, one background) makes a diagonal segment (.25,.25) -> (.75,.5):
    # at εS = 0.5, εB = 0.25 + (0.25 / 0.5) * 0.25 = 0.375, rejection 8/3
    y, s = _hand([0.9, 0.6, 0.6, 0.2], [0.8, 0.6, 0.3, 0.1])
    assert m.background_rejection(y, s, 0.5) == pytest.approx(8 / 3)
    np.testing.assert_allclose(m.rejection_at(y, s, [0.5, 1.0]), [8 / 3, 1 / 0.75])


def test_rejection_infinite_when_no_background_passes():
    y, s = _hand([0.9, 0.8, 0.7, 0.6], [0.5, 0.4, 0.3, 0.2])
    assert m.background_rejection(y, s, 0.5) == np.inf
    assert m.classification_metrics(y, s)["rej30"] == np.inf


def test_weight_equals_duplication():
    y, s = _hand(SIG_HAND, BKG_HAND)
    w = np.ones(8)
    w[4] = 3.0  # the background jet at 0.8 counted three times
    y2, s2 = np.r_[y, 0, 0], np.r_[s, 0.8, 0.8]
    assert m.background_rejection(y, s, 0.5, w) == pytest.approx(m.background_rejection(y2, s2, 0.5))
    assert m.background_rejection(y, s, 0.5, w) == pytest.approx(1 / 0.5)


def test_classification_metrics_keys_and_values():
    rng = np.random.default_rng(3)
    y, s, _ = _toy(rng)
    out = m.classification_metrics(y, s, effs=(0.3, 0.5, 0.7))
    assert set(out) == {"accuracy", "auc", "rej30", "rej50", "rej70", "n_jets"}
    assert out["n_jets"] == 400
    assert out["auc"] == pytest.approx(skm.roc_auc_score(y, s))
    fpr, tpr, _ = skm.roc_curve(y, s)
    # independent reference: np.interp on sklearn's curve (no ties here, so conventions agree)
    assert out["rej50"] == pytest.approx(1 / np.interp(0.5, tpr, fpr))


def test_classification_metrics_multiclass():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 600)
    logits = rng.normal(size=(600, 3)) + 1.5 * np.eye(3)[y]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    out = m.classification_metrics(y, p)
    assert out["auc"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr", average="macro"))
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(y, p.argmax(1)))
    pair = y != 2
    disc = p[pair, 1] / (p[pair, 1] + p[pair, 0])
    fpr, tpr, _ = skm.roc_curve(y[pair] == 1, disc)
    assert out["rej30"] == pytest.approx(1 / np.interp(0.3, tpr, fpr))


def test_ks_overtraining_matches_scipy():
    rng = np.random.default_rng(5)
    y_tr, y_te = rng.integers(0, 2, 300), rng.integers(0, 2, 200)
    s_tr, s_te = rng.random(300) + 0.2 * y_tr, rng.random(200)
    out = m.ks_overtraining(s_tr, y_tr, s_te, y_te)
    ref = ks_2samp(s_tr[y_tr == 1], s_te[y_te == 1])
    assert out["ks_stat_1"] == pytest.approx(ref.statistic)
    assert out["ks_pvalue_1"] == pytest.approx(ref.pvalue)
    assert set(out) == {"ks_stat_0", "ks_pvalue_0", "ks_stat_1", "ks_pvalue_1"}


def test_regression_metrics_by_hand():
    out = m.regression_metrics([1.0, 2.0, 3.0, 4.0], [1.5, 2.0, 2.0, 5.0])
    # residuals 0.5, 0, -1, 1
    assert out["mse"] == pytest.approx(2.25 / 4)
    assert out["mae"] == pytest.approx(2.5 / 4)
    assert out["bias"] == pytest.approx(0.125)
    assert out["resolution"] == pytest.approx(np.sqrt(np.mean((np.array([0.5, 0, -1, 1]) - 0.125) ** 2)))
    rel = m.regression_metrics([2.0, 4.0], [3.0, 3.0], relative=True)
    assert rel["bias"] == pytest.approx(0.125)  # (0.5 - 0.25) / 2


@pytest.mark.parametrize("relative", [False, True])
def test_binned_response_matches_loop(relative):
    rng = np.random.default_rng(6)
    n = 2000
    x = rng.uniform(200, 1000, n)
    t = rng.uniform(50, 250, n)
    p = t * (1 + rng.normal(0.02, 0.1, n))
    edges = np.array([50.0, 100, 140, 300, 500, 700, 900, 950, 1000])
    x[:3] = [1000.0, 120.0, 10.0]  # right edge (closed last bin), single-jet bin, below the range
    x[3:] = np.where(x[3:] > 950, 900.0, x[3:])  # leaves 1000.0 alone in the last bin
    out = m.binned_response(t, p, x, edges, relative=relative)
    r = (p - t) / t if relative else p - t
    for b in range(len(edges) - 1):
        sel = (x >= edges[b]) & ((x < edges[b + 1]) | ((b == len(edges) - 2) & (x == edges[-1])))
        assert out["counts"][b] == sel.sum()
        if sel.sum() == 0:
            assert np.isnan(out["bias"][b]) and np.isnan(out["resolution_iqr"][b])
            continue
        q25, q75 = np.percentile(r[sel], [25, 75])
        assert out["bias"][b] == pytest.approx(r[sel].mean())
        assert out["resolution_std"][b] == pytest.approx(r[sel].std(), abs=1e-12)
        assert out["resolution_iqr"][b] == pytest.approx((q75 - q25) / 1.349, abs=1e-12)
    assert out["counts"][0] == 0 and out["counts"][1] == 1 and out["counts"][-1] == 1
    assert out["resolution_std"][1] == 0.0 and out["resolution_iqr"][1] == 0.0
    assert out["counts"].sum() == n - 1  # only the jet at x = 10 is outside


def test_mean_std_over_seeds():
    runs = [{"auc": 0.90, "rej50": 10.0, "n": 5, "tag": "a"}, {"auc": 0.92, "rej50": 14.0, "n": 5}]
    out = m.mean_std_over_seeds(runs)
    assert set(out) == {"auc", "rej50", "n"}
    assert out["auc"] == pytest.approx((0.91, np.sqrt(2e-4)))
    assert out["rej50"] == pytest.approx((12.0, np.sqrt(8.0)))
    assert m.mean_std_over_seeds(runs[:1])["auc"] == (0.90, 0.0)


def test_errors_are_clear():
    with pytest.raises(HepnnError, match="empty"):
        m.auc([], [])
    with pytest.raises(HepnnError, match="signal"):
        m.auc([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(HepnnError, match="efficiency"):
        m.background_rejection([0, 1], [0.1, 0.9], 0.0)


def _two_taggers(n=4000, shift_a=1.0, shift_b=1.0, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(int)
    common = rng.normal(size=n)  # what both taggers see (the same jets)
    a = common + shift_a * y + 0.3 * rng.normal(size=n)
    b = common + shift_b * y + 0.3 * rng.normal(size=n)
    return y, a, b


def test_paired_bootstrap_separates_a_real_gain_from_test_set_noise():
    y, a, b = _two_taggers(shift_b=1.3)
    r = m.paired_bootstrap(y, a, b, "auc", n_resamples=200)
    assert r["a"] == pytest.approx(m.auc(y, a)) and r["b"] == pytest.approx(m.auc(y, b))
    assert 0 < r["lo"] <= r["diff"] <= r["hi"] and r["p_b_better"] == 1.0
    y, a, b = _two_taggers()  # two taggers equal in the population: on 4000 test jets, no winner
    r = m.paired_bootstrap(y, a, b, "rej50", n_resamples=200, level=0.95)  # covers 0 for 20 of 20 seeds
    assert r["lo"] < 0 < r["hi"] and 0.02 < r["p_b_better"] < 0.98


def test_paired_bootstrap_is_exact_for_identical_taggers_and_antisymmetric():
    y, a, b = _two_taggers(shift_b=1.2)
    same = m.paired_bootstrap(y, a, a, "rej30", n_resamples=50)
    assert same["diff"] == same["lo"] == same["hi"] == 0.0 and same["p_b_better"] == 0.0
    ab = m.paired_bootstrap(y, a, b, "rej30", n_resamples=100, seed=3)
    ba = m.paired_bootstrap(y, b, a, "rej30", n_resamples=100, seed=3)
    assert ba["diff"] == pytest.approx(-ab["diff"])
    assert (ba["lo"], ba["hi"]) == pytest.approx((-ab["hi"], -ab["lo"]))


def test_paired_bootstrap_interval_is_narrower_than_with_independent_draws():
    # the shared jets cancel: resampling both taggers on the same draw is what makes the interval small
    y, a, b = _two_taggers(n=6000, shift_b=1.05)
    paired = m.paired_bootstrap(y, a, b, "rej50", n_resamples=200)
    rng = np.random.default_rng(1)
    classes = [np.flatnonzero(y == 1), np.flatnonzero(y != 1)]

    def draw():
        w = np.zeros(y.size)
        for idx in classes:
            w[idx] = rng.multinomial(idx.size, np.full(idx.size, 1.0 / idx.size))
        return w

    independent = [m.classification_metrics(y, b, (0.5,), sample_weight=draw())["rej50"]
                   - m.classification_metrics(y, a, (0.5,), sample_weight=draw())["rej50"] for _ in range(200)]
    lo, hi = np.quantile(independent, [0.16, 0.84])
    assert paired["hi"] - paired["lo"] < 0.6 * (hi - lo)


def test_paired_bootstrap_refuses_an_unknown_metric():
    y, a, b = _two_taggers(n=200)
    with pytest.raises(HepnnError, match="'precision'.*rej30"):
        m.paired_bootstrap(y, a, b, "precision")
