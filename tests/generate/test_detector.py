"""The simple detector: tracking efficiency and resolution, calorimeter cells, thresholds, seeding."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from hepnn.generate import detector as D


def _particles(pt, eta, phi, pid, charge, counts=None, mass=0.0):
    pt, eta, phi = (np.asarray(x, np.float64) for x in (pt, eta, phi))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    E = np.sqrt(px**2 + py**2 + pz**2 + mass**2)
    n = len(pt)
    rec = ak.zip({"E": E, "px": px, "py": py, "pz": pz,
                  "charge": np.broadcast_to(np.asarray(charge, np.int8), n).copy(),
                  "pid": np.broadcast_to(np.asarray(pid, np.int32), n).copy()})
    return ak.unflatten(rec, [n] if counts is None else counts)


def test_tracking_efficiency_and_resolution_match_the_card():
    n = 20000
    rng = np.random.default_rng(0)
    eta = np.where(np.arange(n) < n // 2, 0.5, 2.0)  # half barrel, half endcap
    parts = _particles(np.full(n, 50.0), eta, rng.uniform(-np.pi, np.pi, n), 211, 1, counts=[1] * n, mass=0.13957)
    out = D.smear(parts, np.random.default_rng(1))
    tracks = ak.flatten(out[out.charge != 0])
    teta = np.arcsinh(tracks.pz.to_numpy() / np.hypot(tracks.px.to_numpy(), tracks.py.to_numpy()))
    n_barrel, n_end = np.sum(teta < 1.0), np.sum(teta > 1.0)
    sigma = np.sqrt(0.95 * 0.05 / (n // 2))
    assert abs(n_barrel / (n // 2) - 0.95) < 4 * sigma
    assert abs(n_end / (n // 2) - 0.85) < 4 * np.sqrt(0.85 * 0.15 / (n // 2))
    pt = np.hypot(tracks.px.to_numpy(), tracks.py.to_numpy())[teta < 1.0]
    assert np.std(pt / 50.0) == pytest.approx(0.03, rel=0.05)  # 10 < pT < 200 GeV in the barrel: 3 %
    assert np.mean(pt / 50.0) == pytest.approx(1.0, abs=0.002)
    # lost tracks become HCAL cells (a 50 GeV pion is far above the 1 GeV threshold)
    assert ak.sum(out.pid == 130) == n - len(tracks)


def test_soft_charged_particles_are_not_tracked_and_neutrinos_vanish():
    parts = _particles([0.3, 30.0, 30.0], [0.0, 0.0, 1.0], [0.0, 1.0, 2.0], [211, 12, 13], [1, 0, -1])
    out = D.smear(parts, np.random.default_rng(0))
    assert ak.sum(out.charge != 0) <= 1  # the muon (if tracked); the 0.3 GeV pion never is
    assert not ak.any(np.abs(out.pid) == 12)
    assert ak.sum(out.pid == 130) == 0  # 0.3 GeV into HCAL is below its 1 GeV threshold


def test_photons_in_one_ecal_cell_merge_and_cells_sit_at_centres():
    # two photons 0.005 apart share a 0.025 cell; a third is far away; one soft photon below threshold
    parts = _particles([20.0, 30.0, 40.0, 0.2], [0.301, 0.304, -1.0, 0.0], [0.51, 0.513, 2.0, -1.0], 22, 0)
    out = ak.flatten(D.smear(parts, np.random.default_rng(3)))
    assert len(out) == 2 and np.all(out.pid.to_numpy() == 22) and np.all(out.charge.to_numpy() == 0)
    pt = np.hypot(out.px.to_numpy(), out.py.to_numpy())
    eta = np.arcsinh(out.pz.to_numpy() / pt)
    merged = np.argmin(np.abs(eta - 0.3))
    expected_e = 20.0 * np.cosh(0.301) + 30.0 * np.cosh(0.304)
    sigma = np.sqrt((0.0017 * expected_e) ** 2 + 0.101**2 * expected_e)
    assert abs(out.E.to_numpy()[merged] - expected_e) < 5 * sigma
    assert eta[merged] == pytest.approx((np.floor((0.301 + 4.9) / 0.025) + 0.5) * 0.025 - 4.9, abs=1e-9)
    np.testing.assert_allclose(out.E.to_numpy() ** 2, (out.px**2 + out.py**2 + out.pz**2).to_numpy(), rtol=1e-9)


def test_cells_never_mix_events_and_same_seed_is_reproducible():
    parts = _particles([20.0, 20.0], [0.3, 0.3], [0.5, 0.5], 22, 0, counts=[1, 1])
    a = D.smear(parts, np.random.default_rng(7))
    b = D.smear(parts, np.random.default_rng(7))
    assert ak.num(a).tolist() == [1, 1]
    assert ak.to_list(a) == ak.to_list(b)


def test_lognormal_smear_has_the_requested_mean_and_width():
    E = np.full(200000, 10.0)
    x = D.lognormal_smear(E, np.full_like(E, 2.0), np.random.default_rng(0))
    assert x.min() > 0 and x.mean() == pytest.approx(10.0, rel=0.01) and x.std() == pytest.approx(2.0, rel=0.02)


def test_generate_with_simple_detector(tmp_path):
    from hepnn.data.io import read_jets
    from hepnn.generate import generate

    (path,) = generate("qcd", 10, tmp_path / "det.parquet", detector="simple", mode="window", progress=False)
    jets = read_jets(path)
    pid = ak.flatten(jets.part_pid).to_numpy()
    charge = ak.flatten(jets.part_charge).to_numpy()
    assert np.all((charge != 0) | np.isin(pid, [22, 130]))  # neutrals only as calorimeter cells
    assert np.all(np.hypot(ak.flatten(jets.part_px), ak.flatten(jets.part_py)).to_numpy()[charge != 0] > 0.4)
