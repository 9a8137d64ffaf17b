"""hepnn.evaluate.summary: the per-epoch validation summary (loss, accuracy, AUC, MAE) by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hepnn.evaluate.summary import quick_metrics

Y = np.array([0, 0, 1, 1, 1])
SCORE = np.array([0.1, 0.6, 0.4, 0.8, 0.9])  # 3 of 5 right at 0.5; 5 of 6 (signal, background) pairs ordered


def test_binary_scores_by_hand():
    m = quick_metrics("classify", {"y": Y.astype(np.float32), "score": SCORE, "loss": np.array([0.5, 0.7])})
    assert m == {"loss": pytest.approx(0.6), "acc": pytest.approx(3 / 5), "auc": pytest.approx(5 / 6)}


def test_two_column_probabilities_use_the_signal_column():
    probs = np.stack([1 - SCORE, SCORE], axis=1)
    m = quick_metrics("classify", {"y": Y, "score": probs})
    assert m == {"acc": pytest.approx(3 / 5), "auc": pytest.approx(5 / 6)}  # no loss key, no loss


def test_multiclass_has_accuracy_only():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.4, 0.1]])
    m = quick_metrics("classify", {"y": np.array([0, 1, 1, 0]), "score": probs})
    assert m == {"acc": pytest.approx(3 / 4)}


def test_one_class_gives_a_nan_auc():
    m = quick_metrics("classify", {"y": np.ones(3), "score": np.array([0.2, 0.7, 0.9])})
    assert math.isnan(m["auc"]) and m["acc"] == pytest.approx(2 / 3)


def test_regression_mae():
    m = quick_metrics("regress", {"pred": np.array([1.0, 2.0, 5.0]), "y": np.array([1.5, 2.0, 3.0]),
                                  "loss": np.array([2.0])})
    assert m == {"loss": 2.0, "mae": pytest.approx((0.5 + 0 + 2) / 3)}


def test_other_kinds_report_the_loss_only():
    assert quick_metrics("reconstruct", {"loss": np.array([1.0, 3.0])}) == {"loss": 2.0}
