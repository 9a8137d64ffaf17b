"""The simple detector against the Delphes ATLAS card: propagation, tracking, towers, energy flow."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from hepnn.generate import atlas_card as card
from hepnn.generate import detector as D


def _particles(pt, eta, phi, pid, charge, counts=None, mass=0.0):
    pt, eta, phi = (np.atleast_1d(np.asarray(x, np.float64)) for x in (pt, eta, phi))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    E = np.sqrt(px**2 + py**2 + pz**2 + mass**2)
    n = len(pt)
    rec = ak.zip({"E": E, "px": px, "py": py, "pz": pz,
                  "charge": np.broadcast_to(np.asarray(charge, np.int8), n).copy(),
                  "pid": np.broadcast_to(np.asarray(pid, np.int32), n).copy()})  # fmt: skip
    return ak.unflatten(rec, [n] if counts is None else counts)


def _pt(out):
    return np.hypot(out.px.to_numpy(), out.py.to_numpy())


def test_card_numbers_at_reference_points():
    pt, eta = np.array([0.5, 5.0, 0.5, 5.0]), np.array([0.3, 0.3, 2.0, 2.0])
    np.testing.assert_allclose(card.tracking_efficiency(pt, eta, np.full(4, 211)), [0.70, 0.95, 0.60, 0.85])
    assert card.tracking_efficiency(np.array([0.09, 5.0]), np.array([0.0, 2.6]), np.array([211, 211])).tolist() == [0, 0]
    assert card.tracking_efficiency(np.array([150.0]), np.array([0.0]), np.array([11]))[0] == 0.99
    res = card.track_resolution(np.array([100.0, 100.0, 100.0]), np.array([0.2, 1.0, 2.0]), np.full(3, 211))
    np.testing.assert_allclose(res, np.hypot([0.06, 0.10, 0.25], [0.13, 0.17, 0.31]))
    np.testing.assert_allclose(card.ecal_resolution(np.array([100.0]), np.array([0.0])), np.hypot(0.17, 1.01))
    np.testing.assert_allclose(card.hcal_resolution(np.array([100.0]), np.array([0.0])),
                               np.sqrt(3.02**2 + 0.5205**2 * 100 + 1.59**2))  # fmt: skip
    f_ecal, f_hcal = card.energy_fractions(np.array([22, 211, 310, 13, 2112]))
    assert f_ecal.tolist() == [1.0, 0.0, 0.3, 0.0, 0.0] and f_hcal.tolist() == [0.0, 1.0, 0.7, 0.0, 1.0]


def test_towers_are_the_cards_0p1_by_10_degree_binning():
    ids, k, j = card.tower_of(np.array([0.01, 0.09, 0.11, 2.55, 2.7, 5.0]), np.array([0.01, 0.17, 0.01, 0.0, 0.0, 0.0]))
    assert ids[0] == ids[1] != ids[2]  # 0.1 in η, 10° = 0.1745 rad in φ
    lo, hi, plo, phi_hi = card.tower_box(ids[:3])
    np.testing.assert_allclose(hi - lo, 0.1) and np.testing.assert_allclose(phi_hi - plo, np.pi / 18)
    assert card.N_PHI[k[3]] == 36 and card.N_PHI[k[4]] == 18  # 2.5-2.6: 10°; 2.6-2.8: 20° towers
    assert ids[5] == -1  # beyond |η| = 4.9


def test_propagation_bends_charged_particles_in_the_2_tesla_field():
    eta, phi = D.calorimeter_position(np.array([1.0, 1.0, 5.0, 0.3]), np.zeros(4), np.zeros(4), np.array([1, -1, 0, 1]))
    r = 1.0 / 2.0 * card.GEV_TO_METRE_PER_T  # helix radius of a 1 GeV track, m
    np.testing.assert_allclose(phi[:2], [-np.arcsin(1.15 / (2 * r)), np.arcsin(1.15 / (2 * r))], rtol=1e-9)
    assert phi[2] == 0.0 and eta[2] == 0.0  # neutral: straight
    assert not np.isfinite(eta[3])  # a 0.3 GeV looper with pz = 0 never reaches the calorimeter
    eta, _ = D.calorimeter_position(np.array([0.3]), np.zeros(1), np.array([0.3]), np.array([1]))
    assert eta[0] > 1.8  # a looper with pz > 0 leaves through the end cap


def test_charged_pions_become_tracks_with_the_card_efficiency():
    n = 8000
    rng = np.random.default_rng(0)
    parts = _particles(np.full(n, 20.0), rng.uniform(-1, 1, n), rng.uniform(-3, 3, n), 211, 1, [1] * n, 0.13957)
    out = ak.flatten(D.smear(parts, np.random.default_rng(1)))
    tracks = out[out.charge != 0]
    assert len(tracks) / n == pytest.approx(0.95, abs=4 * np.sqrt(0.95 * 0.05 / n))
    np.testing.assert_allclose(tracks.E.to_numpy() ** 2, _pt(tracks) ** 2 + tracks.pz.to_numpy() ** 2, rtol=1e-9)
    assert np.mean(_pt(tracks)) / 20.0 == pytest.approx(1.0, abs=0.03)
    # energy flow: the lost 5 % reappear as neutral hadrons, total pT conserved within the HCAL bias
    assert np.sum(_pt(out)) / (20.0 * n) == pytest.approx(1.0, abs=0.05)
    assert set(np.unique(out.pid.to_numpy()[out.charge.to_numpy() == 0])) <= {22, 130}


def test_photons_in_one_tower_merge_into_one_candidate_inside_the_tower():
    parts = _particles([20.0, 30.0, 40.0, 0.2], [0.31, 0.36, -1.0, 0.0], [0.40, 0.45, 2.0, -1.0], 22, 0)
    out = ak.flatten(D.smear(parts, np.random.default_rng(3)))
    assert len(out) == 2 and np.all(out.pid.to_numpy() == 22)  # the 0.2 GeV photon is below 0.5 GeV
    eta = np.arcsinh(out.pz.to_numpy() / _pt(out))
    merged = np.argmin(np.abs(eta - 0.35))
    assert 0.3 <= eta[merged] <= 0.4  # a random point of the tower (SmearTowerCenter)
    expected = 20.0 * np.cosh(0.31) + 30.0 * np.cosh(0.36)
    assert abs(out.E.to_numpy()[merged] - expected) < 5 * card.ecal_resolution(np.array(expected), np.array(0.0))


def test_other_segmentations_for_granularity_studies():
    parts = _particles([20.0, 30.0], [0.31, 0.36], [0.40, 0.45], 22, 0)
    centre = ak.flatten(D.smear(parts, np.random.default_rng(3), D.Towers(random_point=False)))
    assert len(centre) == 1 and np.arcsinh(centre.pz.to_numpy() / _pt(centre))[0] == pytest.approx(0.35)
    fine = np.round(np.arange(-4.9, 4.9001, 0.025), 3)
    split = ak.flatten(D.smear(parts, np.random.default_rng(3), D.Towers(fine, np.full(len(fine), 251))))
    assert len(split) == 2  # 0.05 apart: two 0.025 towers


def test_muons_are_tracks_only_neutrinos_and_k0s_split():
    parts = _particles([30.0, 30.0], [0.0, 1.0], [0.0, 2.0], [13, 310], [-1, 0])
    shares = []
    for seed in range(40):
        out = ak.flatten(D.smear(parts, np.random.default_rng(seed)))
        assert np.all(np.abs(out.pid.to_numpy()[out.charge.to_numpy() != 0]) == 13)
        neutral = out[out.charge == 0]
        if len(neutral) == 2:  # K0S: 30 % in the ECAL, 70 % in the HCAL of one tower
            e = {int(p): float(x) for p, x in zip(neutral.pid.to_numpy(), neutral.E.to_numpy())}
            shares.append(e[22] / (e[22] + e[130]))
    assert len(shares) > 20 and np.median(shares) == pytest.approx(0.3, abs=0.07)


def test_towers_never_mix_events_and_same_seed_is_reproducible():
    parts = _particles([20.0, 20.0], [0.3, 0.3], [0.5, 0.5], 22, 0, counts=[1, 1])
    a = D.smear(parts, np.random.default_rng(7))
    assert ak.num(a).tolist() == [1, 1]
    assert ak.to_list(a) == ak.to_list(D.smear(parts, np.random.default_rng(7)))


def test_lognormal_smear_has_the_requested_mean_and_width():
    E = np.full(200000, 10.0)
    x = D.lognormal_smear(E, np.full_like(E, 2.0), np.random.default_rng(0))
    assert x.min() > 0 and x.mean() == pytest.approx(10.0, rel=0.01) and x.std() == pytest.approx(2.0, rel=0.02)
    assert D.lognormal_smear(np.zeros(3), np.ones(3), np.random.default_rng(0)).tolist() == [0, 0, 0]


def test_generate_with_the_simple_detector(tmp_path):
    from hepnn.data.io import read_jets
    from hepnn.generate import generate

    (path,) = generate("qcd", 10, tmp_path / "det.parquet", mode="window", progress=False)  # simple is the default
    jets = read_jets(path)
    pid = ak.flatten(jets.part_pid).to_numpy()
    charge = ak.flatten(jets.part_charge).to_numpy()
    assert np.all((charge != 0) | np.isin(pid, [22, 130]))  # neutrals only as energy-flow towers
    assert np.all(np.hypot(ak.flatten(jets.part_px), ak.flatten(jets.part_py)).to_numpy()[charge != 0] > 0.05)
