"""Train/validation/test splits by jet, stratified by label, reproducible by seed; class weights.

Splitting by file (one list of files per split) is done by the caller; this module splits one
dataset's rows.
"""

from __future__ import annotations

import numpy as np

from hepnn.errors import DataError


def split_indices(
    labels: np.ndarray,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    seed: int = 0,
    stratify: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint, complete (train, val, test) row indices, each sorted ascending.

    Args:
        labels: (n,) integer class per jet.
        fractions: shares of train, validation, test; must sum to 1 (a share may be 0).
        seed: the same seed and labels give the same split.
        stratify: keep each class's share equal across splits (scikit-learn's ``train_test_split``).

    Returns:
        Three int64 index arrays whose union is ``arange(n)``.
    """
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    f = np.asarray(fractions, dtype=float)
    if f.shape != (3,) or np.any(f < 0) or not np.isclose(f.sum(), 1.0):
        raise DataError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    n = len(labels)
    n_test = int(round(f[2] * n))
    n_val = int(round(f[1] * n))
    if n_test + n_val > n:
        n_val = n - n_test
    idx = np.arange(n)
    rest, test = _take(idx, labels, n_test, seed, stratify, train_test_split)
    train, val = _take(rest, labels[rest], n_val, seed + 1, stratify, train_test_split)
    return np.sort(train), np.sort(val), np.sort(test)


def _take(idx, labels, k, seed, stratify, train_test_split):
    """Split ``idx`` into (the rest, k of them)."""
    if k == 0:
        return idx, idx[:0]
    if k == len(idx):
        return idx[:0], idx
    strat = labels if stratify and np.unique(labels).size > 1 else None
    try:
        rest, taken = train_test_split(idx, test_size=k, random_state=seed, stratify=strat)
    except ValueError:
        # Too few jets of some class to stratify (e.g. a tiny test sample): fall back to random.
        rest, taken = train_test_split(idx, test_size=k, random_state=seed, stratify=None)
    return np.asarray(rest, np.int64), np.asarray(taken, np.int64)


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """"Balanced" per-class weights ``n / (k * count_c)`` (scikit-learn's ``class_weight="balanced"``).

    A class absent from ``labels`` gets weight 0 (it contributes nothing to the loss anyway).

    Shapes: labels (n,) int -> (num_classes,) float64.
    """
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"labels must lie in [0, {num_classes}); got min {labels.min()}, max {labels.max()}")
    counts = np.bincount(labels.astype(np.int64), minlength=num_classes).astype(np.float64)
    with np.errstate(divide="ignore"):
        w = np.where(counts > 0, len(labels) / (num_classes * counts), 0.0)
    return w
