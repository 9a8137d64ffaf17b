"""Property-based tests of the feature functions: random valid jets never give NaN or inf, padded
entries are exactly zero, and extra padding (whatever the padded rows hold) changes nothing."""

from __future__ import annotations

import awkward as ak
import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hepnn.data.features import PARTICLE_FEATURES, particle_features
from hepnn.data.pair_features import PAIR_FEATURES, pair_features
from hepnn.data.jet_features import JET_FEATURES, jet_features

FUZZ = settings(max_examples=40, deadline=None)
# Padding changes nothing but the rounding of vectorized kernels, whose SIMD tails move with N (seen:
# 1 ulp in pair features). Anything beyond a few ulp would be a real leak from the padded slots.
ULP = dict(rtol=1e-6, atol=1e-6)
ALL_PARTICLE = list(PARTICLE_FEATURES)


@st.composite
def padded_jets(draw, max_jets: int = 4, max_particles: int = 12, zero_pt: bool = True):
    """(p4 (B, N, 4) float32 with E >= |p|, mask (B, N), charge, pid): physical momenta from 0 to a few
    TeV, some particles exactly collinear or (``zero_pt``) at zero pT, every jet with a particle."""
    b = draw(st.integers(1, max_jets))
    n = draw(st.integers(1, max_particles))
    counts = np.array(draw(st.lists(st.integers(1, n), min_size=b, max_size=b)))
    mask = np.arange(n)[None, :] < counts[:, None]  # (B, N)
    comp = st.one_of(st.just(0.0), st.floats(-3000, 3000), st.floats(-1e-3, 1e-3))
    p = np.array(draw(st.lists(comp, min_size=3 * b * n, max_size=3 * b * n)), np.float64).reshape(b, n, 3)
    if not zero_pt:  # a detected particle has pT > 0 (its rapidity is defined)
        p[..., 0] = np.where(np.hypot(p[..., 0], p[..., 1]) > 0.01, p[..., 0], 0.5)
    if draw(st.booleans()):  # collinear copies of the leading particle: zero opening angles
        p[:, 1:] = p[:, :1] * draw(st.floats(0.1, 2.0))
    m = np.array(draw(st.lists(st.floats(0, 5), min_size=b * n, max_size=b * n))).reshape(b, n)
    e = np.sqrt((p**2).sum(-1) + m**2)
    p4 = np.concatenate([e[..., None], p], axis=-1) * mask[..., None]  # (B, N, 4), padded rows zero
    charge = np.array(draw(st.lists(st.sampled_from([-1, 0, 1]), min_size=b * n, max_size=b * n))).reshape(b, n)
    pid = np.array(draw(st.lists(st.sampled_from([211, -211, 22, 130, 11, -13, 2212, 0]),
                                 min_size=b * n, max_size=b * n))).reshape(b, n)
    return (torch.tensor(p4, dtype=torch.float32), torch.tensor(mask), torch.tensor(charge * mask),
            torch.tensor(pid * mask))


def _pad(t: torch.Tensor, extra: int, fill: torch.Tensor | None = None) -> torch.Tensor:
    """Append ``extra`` particle slots (axis 1) filled with ``fill`` (garbage: they are masked)."""
    shape = (t.shape[0], extra, *t.shape[2:])
    more = torch.zeros(shape, dtype=t.dtype) if fill is None else fill.expand(shape).to(t.dtype)
    return torch.cat([t, more], dim=1)


@FUZZ
@given(jets=padded_jets())
def test_particle_features_are_finite_and_zero_on_padding(jets):
    p4, mask, charge, pid = jets
    x = particle_features(p4, mask, ALL_PARTICLE, charge=charge, pid=pid)  # (B, N, C)
    assert torch.isfinite(x).all()
    assert (x[~mask] == 0).all()


@FUZZ
@given(jets=padded_jets(), extra=st.integers(1, 6), garbage=st.floats(-1e3, 1e3))
def test_particle_features_padding_invariance(jets, extra, garbage):
    p4, mask, charge, pid = jets
    x = particle_features(p4, mask, ALL_PARTICLE, charge=charge, pid=pid)
    filler = torch.full((4,), garbage)  # masked slots holding nonsense must not matter either
    xp = particle_features(_pad(p4, extra, filler), _pad(mask, extra), ALL_PARTICLE,
                           charge=_pad(charge, extra), pid=_pad(pid, extra, torch.tensor(211)))
    torch.testing.assert_close(xp[:, : p4.shape[1]], x, **ULP)
    assert (xp[:, p4.shape[1]:] == 0).all()


@FUZZ
@given(jets=padded_jets(), self_pairs=st.booleans())
def test_pair_features_are_finite_and_zero_on_padded_pairs(jets, self_pairs):
    p4, mask, _, _ = jets
    u = pair_features(p4, mask, PAIR_FEATURES, self_pairs=self_pairs)  # (B, N, N, P)
    assert torch.isfinite(u).all()
    pair_mask = mask[:, :, None] & mask[:, None, :]  # (B, N, N)
    assert (u[~pair_mask] == 0).all()


@FUZZ
@given(jets=padded_jets(), extra=st.integers(1, 4))
def test_pair_features_padding_invariance(jets, extra):
    p4, mask, _, _ = jets
    u = pair_features(p4, mask, PAIR_FEATURES)
    up = pair_features(_pad(p4, extra, torch.full((4,), 7.0)), _pad(mask, extra), PAIR_FEATURES)
    n = p4.shape[1]
    torch.testing.assert_close(up[:, :n, :n], u, **ULP)
    assert (up[:, n:] == 0).all() and (up[:, :, n:] == 0).all()


@settings(max_examples=20, deadline=None)
@given(jets=padded_jets(max_jets=3, max_particles=8, zero_pt=False), perm_seed=st.integers(0, 2**16))
def test_jet_features_are_finite_and_ignore_constituent_order(jets, perm_seed):
    p4, mask, _, _ = jets
    counts = mask.sum(1).numpy()
    flat = p4[mask].numpy()  # (total, 4) real particles, jet by jet
    arrays = ak.zip({name: ak.unflatten(flat[:, k], counts) for k, name in
                     enumerate(("part_E", "part_px", "part_py", "part_pz"))}, depth_limit=1)
    f = jet_features(arrays, list(JET_FEATURES))  # (B, F)
    assert f.shape == (len(counts), len(JET_FEATURES)) and np.isfinite(f).all()
    # the same constituents in another order are the same jet
    rng = np.random.default_rng(perm_seed)
    order = np.concatenate([s + rng.permutation(c) for s, c in zip(np.r_[0, np.cumsum(counts)[:-1]], counts)])
    shuffled = ak.zip({name: ak.unflatten(flat[order, k], counts) for k, name in
                       enumerate(("part_E", "part_px", "part_py", "part_pz"))}, depth_limit=1)
    g = jet_features(shuffled, list(JET_FEATURES))
    n_idx = list(JET_FEATURES).index("n_particles")
    assert (g[:, n_idx] == counts).all()
    np.testing.assert_allclose(g, f, rtol=1e-4, atol=1e-3)
