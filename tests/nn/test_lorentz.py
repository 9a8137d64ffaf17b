"""Lorentz ops against scikit-hep/vector and by-hand values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import vector

from hepnn.nn.lorentz import (
    add_beams, boost_matrix, minkowski_dot, minkowski_gram, minkowski_norm2, pairwise_norm2, psi,
    rotation_matrix, transform,
)  # fmt: skip


def random_p4(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 4) massive four-vectors (E, px, py, pz)."""
    p = rng.normal(0, 20, size=(n, 3))
    m = rng.uniform(0, 5, size=n)
    return np.column_stack([np.sqrt(m**2 + (p**2).sum(1)), p])


def as_vector(p: np.ndarray):
    return vector.array({"E": p[:, 0], "px": p[:, 1], "py": p[:, 2], "pz": p[:, 3]})


def test_minkowski_dot_gram_and_distance_match_vector(rng):
    p = random_p4(rng, 7)
    v = as_vector(p)
    t = torch.from_numpy(p)
    np.testing.assert_allclose(minkowski_norm2(t).numpy(), v.mass2, rtol=1e-10)
    gram = minkowski_gram(t[None])[0].numpy()
    dist = pairwise_norm2(t[None])[0].numpy()
    for i in range(7):
        np.testing.assert_allclose(gram[i], v.dot(v[i]), rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose(dist[i], (v - v[i]).mass2, rtol=1e-10, atol=1e-8)
    assert minkowski_dot(t[0], t[1]).item() == pytest.approx(gram[0, 1])


def test_boost_matrix_matches_vector_boost_beta3(rng):
    p = random_p4(rng, 5)
    beta = np.array([0.3, -0.5, 0.6])
    boosted = as_vector(p).boost_beta3(vector.obj(x=beta[0], y=beta[1], z=beta[2]))
    ours = transform(torch.from_numpy(p), boost_matrix(torch.from_numpy(beta))).numpy()
    expected = np.column_stack([boosted.E, boosted.px, boosted.py, boosted.pz])
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-10)


def test_rotation_matrix_matches_vector_rotate_axis(rng):
    p = random_p4(rng, 5)
    axis = np.array([0.2, -1.0, 0.7])
    rotated = as_vector(p).rotate_axis(vector.obj(x=axis[0], y=axis[1], z=axis[2]), 0.8)
    ours = transform(torch.from_numpy(p), rotation_matrix(torch.from_numpy(axis), 0.8)).numpy()
    expected = np.column_stack([rotated.E, rotated.px, rotated.py, rotated.pz])
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-10)


def test_boost_preserves_metric():
    lam = boost_matrix(torch.tensor([0.5, 0.1, -0.8], dtype=torch.float64))
    eta = torch.diag(torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=torch.float64))
    torch.testing.assert_close(lam.T @ eta @ lam, eta)


def test_psi_by_hand():
    x = torch.tensor([-math.e + 1, 0.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(psi(x), torch.tensor([-1.0, 0.0, math.log(4.0)], dtype=torch.float64))


def test_add_beams_prepends_two_real_lightlike_beams():
    p4 = torch.ones(3, 5, 4)
    mask = torch.tensor([[1, 1, 0, 0, 0]] * 3, dtype=torch.bool)
    out, m, is_beam = add_beams(p4, mask)
    assert out.shape == (3, 7, 4) and m.shape == is_beam.shape == (3, 7)
    torch.testing.assert_close(out[0, :2], torch.tensor([[1.0, 0, 0, 1], [1.0, 0, 0, -1]]))
    assert m[:, :2].all() and (m[:, 2:] == mask).all()
    assert is_beam[:, :2].all() and not is_beam[:, 2:].any()
