"""Per-particle and pair features against scikit-hep/vector and hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import vector

from hepnn.data import features as F
from hepnn.data import pair_features as PF
from hepnn.errors import ConfigError


def random_p4(rng: np.random.Generator, shape, massive: bool = True) -> np.ndarray:
    """Physical four-vectors (E, px, py, pz) around one jet direction. -> (*shape, 4) float64."""
    pt = rng.exponential(20.0, shape) + 1.0
    eta = 0.5 + rng.normal(0, 0.3, shape)
    phi = 2.9 + rng.normal(0, 0.3, shape)  # straddles φ = π: exercises wrapping
    m = rng.uniform(0, 1.0, shape) if massive else np.zeros(shape)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + m**2)
    return np.stack([e, px, py, pz], axis=-1)


def padded_batch(rng, counts, n_max, massive=True):
    """(B, n_max, 4) float64 tensor with zero padding and its (B, n_max) mask."""
    p4 = np.zeros((len(counts), n_max, 4))
    mask = np.zeros((len(counts), n_max), dtype=bool)
    for b, c in enumerate(counts):
        p4[b, :c] = random_p4(rng, (c,), massive)
        mask[b, :c] = True
    return torch.from_numpy(p4), torch.from_numpy(mask)


def vec(p4: np.ndarray):
    return vector.array({"E": p4[..., 0], "px": p4[..., 1], "py": p4[..., 2], "pz": p4[..., 3]})


# ----------------------------------------------------------------------------- kinematics


def test_kinematics_match_vector():
    p4 = random_p4(np.random.default_rng(0), (50,))
    v = vec(p4)
    t = torch.from_numpy(p4)
    np.testing.assert_allclose(F.pt(t).numpy(), v.pt, rtol=1e-12)
    np.testing.assert_allclose(F.eta(t).numpy(), v.eta, rtol=1e-10)
    np.testing.assert_allclose(F.rapidity(t).numpy(), v.rapidity, rtol=1e-9)
    np.testing.assert_allclose(F.phi(t).numpy(), v.phi, rtol=1e-12)
    np.testing.assert_allclose(F.mass(t).numpy(), v.mass, rtol=1e-6)
    v2 = vec(p4[::-1].copy())
    dr = F.delta_r(F.eta(t), F.phi(t), F.eta(t.flip(0)), F.phi(t.flip(0)))
    np.testing.assert_allclose(dr.numpy(), v.deltaR(v2), rtol=1e-10)
    dphi = F.delta_phi(F.phi(t), F.phi(t.flip(0)))
    np.testing.assert_allclose(dphi.numpy(), v.deltaphi(v2), atol=1e-12)


def test_rapidity_matches_fastjet_including_rounded_tachyonic_vectors():
    fastjet = pytest.importorskip("fastjet")
    rng = np.random.default_rng(7)
    p4 = random_p4(rng, (40,), massive=True)
    p4[:20, 3] *= 40  # large |y|, where the float32 rounding below makes some m² < 0
    p4 = p4.astype(np.float32).astype(np.float64)
    want = [fastjet.PseudoJet(px, py, pz, e).rap() for e, px, py, pz in p4]
    assert (F.mass2(torch.from_numpy(p4)) < 0).any()
    np.testing.assert_allclose(F.rapidity(torch.from_numpy(p4)).numpy(), want, rtol=1e-10, atol=1e-12)
    assert F.rapidity(torch.zeros(4)).item() == 0.0


def test_delta_phi_wraps_into_half_open_interval():
    a = torch.tensor([3.1, -3.1, math.pi, 0.0, -math.pi])
    b = torch.tensor([-3.1, 3.1, -math.pi, math.pi, 0.0])
    got = F.delta_phi(a, b)
    want = torch.tensor([6.2 - 2 * math.pi, 2 * math.pi - 6.2, 0.0, math.pi, math.pi])
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_mass_is_signed_for_spacelike_vectors():
    t = torch.tensor([[5.0, 3.0, 0.0, 0.0], [3.0, 5.0, 0.0, 0.0]])  # m² = 16, -16
    torch.testing.assert_close(F.mass(t), torch.tensor([4.0, -4.0]))


# ----------------------------------------------------------------------------- particle features

ALL = (
    "deta", "dphi", "dr", "log_pt", "log_e", "log_pt_rel", "log_e_rel",
    "px", "py", "pz", "e", "pt", "eta", "phi",
)  # fmt: skip


def test_particle_features_match_vector():
    rng = np.random.default_rng(1)
    p4, mask = padded_batch(rng, [5, 3], 6)
    out = F.particle_features(p4, mask, ALL)
    assert out.shape == (2, 6, len(ALL)) and out.dtype == torch.float64
    for b, c in enumerate([5, 3]):
        v = vec(p4[b, :c].numpy())
        j = vector.obj(**dict(zip(("E", "px", "py", "pz"), p4[b, :c].sum(0).tolist())))
        want = {
            "deta": v.eta - j.eta, "dphi": v.deltaphi(j), "dr": v.deltaR(j),
            "log_pt": np.log(v.pt), "log_e": np.log(v.E), "log_pt_rel": np.log(v.pt / j.pt),
            "log_e_rel": np.log(v.E / j.E), "px": v.px, "py": v.py, "pz": v.pz, "e": v.E,
            "pt": v.pt, "eta": v.eta, "phi": v.phi,
        }  # fmt: skip
        for k, name in enumerate(ALL):
            np.testing.assert_allclose(out[b, :c, k].numpy(), want[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_padding_is_zero_finite_and_changes_nothing():
    rng = np.random.default_rng(2)
    p4, mask = padded_batch(rng, [4, 2], 4)
    p4_more = torch.cat([p4, torch.zeros(2, 5, 4, dtype=p4.dtype)], dim=1)
    mask_more = torch.cat([mask, torch.zeros(2, 5, dtype=torch.bool)], dim=1)
    a = F.particle_features(p4, mask, ALL)
    b = F.particle_features(p4_more, mask_more, ALL)
    assert torch.isfinite(b).all()
    assert (b[~mask_more] == 0).all()
    torch.testing.assert_close(b[:, :4], a, rtol=0, atol=0)
    # garbage in padded rows is ignored too
    p4_junk = p4_more.clone()
    p4_junk[~mask_more] = float("nan")
    torch.testing.assert_close(F.particle_features(p4_junk, mask_more, ALL), b, rtol=0, atol=0)


def test_phi_wrapping_near_pi():
    # two particles at φ = π − 0.1 and −π + 0.1 (i.e. π + 0.1): jet at φ = π, Δφ = ∓0.1
    p4 = torch.tensor([[[10.0, 10 * math.cos(math.pi - 0.1), 10 * math.sin(math.pi - 0.1), 0.0],
                        [10.0, 10 * math.cos(-math.pi + 0.1), 10 * math.sin(-math.pi + 0.1), 0.0]]])  # fmt: skip
    out = F.particle_features(p4.double(), torch.ones(1, 2, dtype=torch.bool), ["dphi", "dr", "deta"])
    torch.testing.assert_close(out[0, :, 0], torch.tensor([-0.1, 0.1], dtype=torch.float64))
    torch.testing.assert_close(out[0, :, 1], torch.tensor([0.1, 0.1], dtype=torch.float64))


def test_float32_agrees_with_float64_and_keeps_dtype():
    p4, mask = padded_batch(np.random.default_rng(3), [6, 4, 1], 6)
    out64 = F.particle_features(p4, mask, ALL)
    out32 = F.particle_features(p4.float(), mask, ALL)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), out64, rtol=1e-5, atol=1e-5)


def test_charge_and_pid_onehot_by_hand():
    pid = torch.tensor([[211, -321, 2112, 22, 11, -13, 130, 0]])
    charge = torch.tensor([[1, -1, 0, 0, -1, 1, 0, 0]])
    mask = torch.tensor([[True] * 7 + [False]])
    p4 = torch.zeros(1, 8, 4)
    p4[..., 0], p4[..., 1] = 2.0, 1.0
    out = F.particle_features(p4, mask, ["charge", "pid_onehot"], charge=charge, pid=pid)
    assert out.shape == (1, 8, 6) and F.feature_dim(["charge", "pid_onehot"]) == 6
    want = torch.tensor([
        # charge, ch_had, neu_had, photon, electron, muon
        [1, 1, 0, 0, 0, 0], [-1, 1, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0],
        [-1, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, 1], [0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0],
    ], dtype=torch.float32)  # fmt: skip
    torch.testing.assert_close(out[0], want)
    # without a charge column, the charge of hadrons comes from the PDG id
    torch.testing.assert_close(F.pid_onehot(pid)[0, :7].float(), want[:7, 1:])


def test_names_are_validated():
    p4, mask = torch.zeros(1, 2, 4), torch.ones(1, 2, dtype=torch.bool)
    with pytest.raises(ConfigError, match="'log_ptt'.*known names: deta"):
        F.particle_features(p4, mask, ["log_pt", "log_ptt"])
    with pytest.raises(ConfigError, match="charge"):
        F.particle_features(p4, mask, ["charge"])
    with pytest.raises(ConfigError, match="'ln_mass'"):
        PF.pair_features(p4, mask, ["ln_mass"])
    assert F.feature_dim(["deta", "pid_onehot", "log_pt"]) == 7
    assert F.expand_feature_names(["pid_onehot"]) == list(F.PID_CHANNELS)


# ----------------------------------------------------------------------------- pair features

PAIRS = ("ln_kt", "ln_z", "ln_dr", "ln_m2", "minkowski", "ln_minkowski")


def test_pair_features_match_vector_brute_force():
    rng = np.random.default_rng(4)
    p4, mask = padded_batch(rng, [4, 2], 5)
    out = PF.pair_features(p4, mask, PAIRS)
    assert out.shape == (2, 5, 5, 6) and out.dtype == torch.float64
    for b in range(2):
        for i in range(5):
            for j in range(5):
                if not (mask[b, i] and mask[b, j]):
                    assert (out[b, i, j] == 0).all()
                    continue
                va, vb = (vector.obj(**dict(zip(("E", "px", "py", "pz"), p4[b, k].tolist()))) for k in (i, j))
                delta = max(va.deltaRapidityPhi(vb), PF.DELTA_MIN)
                ptmin = min(va.pt, vb.pt)
                want = [
                    math.log(ptmin * delta), math.log(ptmin / (va.pt + vb.pt)),
                    math.log(delta), math.log((va + vb).tau2), va.dot(vb), math.log(va.dot(vb)),
                ]  # fmt: skip
                np.testing.assert_allclose(out[b, i, j].numpy(), want, rtol=1e-8, atol=1e-8)


def test_pair_diagonal_and_self_pairs_option():
    p4, mask = padded_batch(np.random.default_rng(5), [3], 3)
    diag = PF.pair_features(p4, mask, PAIRS).diagonal(dim1=1, dim2=2)[0]  # (P, N)
    m2 = F.mass2(p4[0])
    torch.testing.assert_close(diag[0], torch.log(F.pt(p4[0]) * PF.DELTA_MIN))
    torch.testing.assert_close(diag[1], torch.full((3,), math.log(0.5), dtype=torch.float64))
    torch.testing.assert_close(diag[3], torch.log(4 * m2))
    torch.testing.assert_close(diag[4], m2)
    off = PF.pair_features(p4, mask, PAIRS, self_pairs=False)
    assert (off.diagonal(dim1=1, dim2=2) == 0).all()


def test_calorimeter_twins_get_the_floor_not_rounding_noise():
    """Two particles in one calorimeter cell (same direction, different energies), stored in float32:
    their Δ is rounding noise of 1e-8..1e-7, and ln Δ is ln DELTA_MIN whatever the noise."""
    rng = np.random.default_rng(7)
    pt_, eta, phi_ = rng.uniform(1, 50, (64, 2)), rng.uniform(-2, 2, (64, 1)), rng.uniform(-3, 3, (64, 1))
    eta, phi_ = np.repeat(eta, 2, 1), np.repeat(phi_, 2, 1)  # pairs of twins
    p4 = np.stack([pt_ * np.cosh(eta), pt_ * np.cos(phi_), pt_ * np.sin(phi_), pt_ * np.sinh(eta)], -1)
    p4 = torch.from_numpy(p4).float()  # rounding makes their directions differ by ~1e-7
    out = PF.pair_features(p4, torch.ones(64, 2, dtype=torch.bool), ["ln_dr"])
    torch.testing.assert_close(out[:, 0, 1, 0], torch.full((64,), math.log(PF.DELTA_MIN)))


def test_pair_features_are_precise_in_float32_for_collinear_pairs():
    # nearly massless pairs 1e-3 apart: the naive (E_a + E_b)² − |p|² cancels away in float32
    eta = np.array([0.3, 0.301, 1.0, 1.0005, 1.0, 1.0])
    ph = np.array([0.2, 0.2, -3.1, -3.1, math.pi - 5e-4, -math.pi + 5e-4])
    ptv = np.array([300.0, 200.0, 150.0, 50.0, 80.0, 120.0])
    p4 = np.stack([ptv * np.cosh(eta), ptv * np.cos(ph), ptv * np.sin(ph), ptv * np.sinh(eta)], -1)
    p4 = p4.astype(np.float32).astype(np.float64).reshape(3, 2, 4)  # the float32 numbers, exactly
    got = PF.pair_features(torch.from_numpy(p4).float(), torch.ones(3, 2, dtype=torch.bool), PAIRS)
    assert got.dtype == torch.float32
    for b in range(3):
        va, vb = (vector.obj(**dict(zip(("E", "px", "py", "pz"), p4[b, k].tolist()))) for k in (0, 1))
        delta, ptmin = va.deltaRapidityPhi(vb), min(va.pt, vb.pt)
        want = [math.log(ptmin * delta), math.log(ptmin / (va.pt + vb.pt)), math.log(delta),
                math.log((va + vb).tau2), va.dot(vb), math.log(va.dot(vb))]  # fmt: skip
        np.testing.assert_allclose(got[b, 0, 1].double().numpy(), want, rtol=2e-3, atol=2e-3)


def test_pair_features_padding_invariance():
    p4, mask = padded_batch(np.random.default_rng(6), [3, 2], 3)
    a = PF.pair_features(p4, mask)
    p4_more = torch.cat([p4, torch.full((2, 4, 4), float("nan"), dtype=p4.dtype)], dim=1)  # junk
    mask_more = torch.cat([mask, torch.zeros(2, 4, dtype=torch.bool)], dim=1)
    b = PF.pair_features(p4_more, mask_more)
    assert torch.isfinite(b).all() and b.shape == (2, 7, 7, 4)
    torch.testing.assert_close(b[:, :3, :3], a, rtol=0, atol=0)
    assert (b[:, 3:] == 0).all() and (b[:, :, 3:] == 0).all()


def test_pair_features_at_listed_pairs_equal_the_dense_ones():
    p4, mask = padded_batch(np.random.default_rng(7), [4, 1, 3], 5)
    dense = PF.pair_features(p4, mask, PAIRS)  # (B, N, N, P)
    b, i = mask.nonzero(as_tuple=True)  # real particles, packed
    rows = p4[b, i]  # (M, 4)
    first, second = torch.triu_indices(len(rows), len(rows))
    same_jet = b[first] == b[second]
    first, second = first[same_jet], second[same_jet]  # every pair i <= j of every jet
    got = PF.pair_features_at(rows, first, second, PAIRS)  # (R, P)
    assert got.shape == (len(first), len(PAIRS))
    torch.testing.assert_close(got, dense[b[first], i[first], i[second]], rtol=0, atol=0)
