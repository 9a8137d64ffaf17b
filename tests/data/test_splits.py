"""Stratified, reproducible, disjoint and complete splits; balanced class weights vs scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

from hepnn.data.splits import class_weights, split_indices
from hepnn.errors import DataError


def test_split_is_disjoint_complete_stratified_and_reproducible():
    labels = np.r_[np.zeros(700, int), np.ones(300, int)]
    np.random.default_rng(0).shuffle(labels)
    tr, va, te = split_indices(labels, (0.6, 0.2, 0.2), seed=3)
    assert (len(tr), len(va), len(te)) == (600, 200, 200)
    allidx = np.concatenate([tr, va, te])
    assert np.array_equal(np.sort(allidx), np.arange(1000))  # disjoint and complete
    for part in (tr, va, te):
        assert labels[part].mean() == pytest.approx(0.3, abs=0.006)  # stratified
    again = split_indices(labels, (0.6, 0.2, 0.2), seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again))
    other = split_indices(labels, (0.6, 0.2, 0.2), seed=4)
    assert not np.array_equal(te, other[2])


def test_unstratified_zero_fractions_and_bad_fractions():
    labels = np.arange(10) % 2
    tr, va, te = split_indices(labels, (0.8, 0.0, 0.2), stratify=False)
    assert len(va) == 0 and len(te) == 2 and len(tr) == 8
    with pytest.raises(DataError, match="sum"):
        split_indices(labels, (0.5, 0.2, 0.2))


def test_class_weights_match_sklearn_balanced():
    labels = np.r_[np.zeros(50, int), np.ones(30, int), np.full(20, 2)]
    expected = compute_class_weight("balanced", classes=np.arange(3), y=labels)
    np.testing.assert_allclose(class_weights(labels, 3), expected)
    np.testing.assert_allclose(class_weights(labels, 3), [100 / 150, 100 / 90, 100 / 60])
    assert class_weights(np.zeros(4, int), 2).tolist() == [0.5, 0.0]
    with pytest.raises(DataError):
        class_weights(np.array([0, 3]), 2)
