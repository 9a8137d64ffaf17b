"""Jet-level features against vector (kinematics), fjcontrib via fastjet (τ_N) and hand formulas."""

from __future__ import annotations

import math
import sys
import warnings

import awkward as ak
import numpy as np
import pytest
import vector

from hepnn.data.jet_features import jet_features
from hepnn.errors import ConfigError, DataError, HepnnError

TAUS = ["tau1", "tau2", "tau3", "tau4"]


def make_jets(n_jets: int, seed: int = 0, min_count: int = 1) -> ak.Array:
    """Three-prong-ish toy jets in the native layout (float32 jagged columns)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(min_count, 40, n_jets)
    counts[:4] = [1, 2, 3, 4][: n_jets]  # small jets: τ_N for N ≥ multiplicity is 0
    jet_of = np.repeat(np.arange(n_jets), counts)
    prong = rng.integers(0, 3, len(jet_of))
    axis = np.stack([rng.normal(0, 1.5, n_jets), rng.uniform(-3, 3, n_jets)], -1)  # (n_jets, 2)
    centres = axis[:, None] + rng.normal(0, 0.25, (n_jets, 3, 2))  # (n_jets, 3 prongs, 2)
    eta = centres[jet_of, prong, 0] + rng.normal(0, 0.05, len(jet_of))
    phi = centres[jet_of, prong, 1] + rng.normal(0, 0.05, len(jet_of))
    pt = rng.exponential(15.0, len(jet_of)) + 0.5
    m = rng.uniform(0, 0.5, len(jet_of))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + m**2)
    col = lambda x: ak.unflatten(x.astype(np.float32), counts)  # noqa: E731
    return ak.Array({"part_E": col(e), "part_px": col(px), "part_py": col(py), "part_pz": col(pz)})


def test_kinematics_and_multiplicity_match_vector():
    jets = make_jets(50)
    names = ["mass", "pt", "eta", "phi", "e", "n_particles"]
    out = jet_features(jets, names)
    assert out.shape == (50, 6) and out.dtype == np.float32
    total = lambda c: ak.to_numpy(ak.sum(ak.values_astype(jets[f"part_{c}"], np.float64), axis=1))  # noqa: E731
    j = vector.array({c: total(c) for c in ("E", "px", "py", "pz")})
    want = np.stack([j.mass, j.pt, j.eta, j.phi, j.E, ak.num(jets.part_E)], -1)
    np.testing.assert_allclose(out, want, rtol=2e-5, atol=1e-4)


def test_nsubjettiness_matches_fjcontrib():
    fastjet = pytest.importorskip("fastjet")
    jets = make_jets(60, seed=1)
    out = jet_features(jets, [*TAUS, "tau21", "tau32", "tau43"])
    vecs = ak.zip(
        {"px": jets.part_px, "py": jets.part_py, "pz": jets.part_pz, "E": jets.part_E}, with_name="Momentum4D"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jetdef = fastjet.JetDefinition(fastjet.kt_algorithm, 1.0)  # njettiness finds its own axes
        cs = fastjet.ClusterSequence(ak.values_astype(vecs, np.float64), jetdef)
        ref = np.asarray(cs.njettiness(axes_definition="KT_Axes", njets=[1, 2, 3, 4], beta=1.0, R0=0.8))
    np.testing.assert_allclose(out[:, :4], ref, rtol=1e-6, atol=1e-7)
    assert (out[:4, :4][np.triu_indices(4)] == 0).all()  # jets with ≤ N particles: τ_N = 0
    assert np.isfinite(out).all()
    for k, (a, b) in enumerate([(1, 0), (2, 1), (3, 2)]):
        safe = np.where(ref[:, b] > 0, ref[:, a] / np.where(ref[:, b] > 0, ref[:, b], 1), 0.0)
        np.testing.assert_allclose(out[:, 4 + k], safe, rtol=1e-4, atol=1e-6)
    assert out[0, 4] == 0 and out[1, 4] == 0  # 1 particle: τ1 = 0 -> τ21 = 0; 2 particles: τ2 = 0


def test_tau1_of_two_particles_by_hand():
    pytest.importorskip("fastjet")
    # one kT axis = the sum of both particles (E-scheme); τ1 = Σ pT ΔR(y, φ) / (R0 Σ pT)
    a = vector.obj(pt=100.0, eta=0.1, phi=0.2, mass=0.0)
    b = vector.obj(pt=50.0, eta=-0.2, phi=0.5, mass=1.0)
    axis = a + b
    want = (a.pt * a.deltaRapidityPhi(axis) + b.pt * b.deltaRapidityPhi(axis)) / (0.8 * (a.pt + b.pt))
    jets = ak.Array({f"part_{c}": [[getattr(a, c), getattr(b, c)]] for c in ("E", "px", "py", "pz")})
    out = jet_features(jets, ["tau1", "tau2"])
    assert out[0, 0] == pytest.approx(want, rel=1e-5)
    assert out[0, 1] == 0.0


def test_empty_jet_gives_zeros():
    jets = ak.Array({c: [[], [1.0]] for c in ("part_E", "part_px", "part_py", "part_pz")})
    out = jet_features(jets, ["pt", "n_particles", "tau1", "tau21"])
    assert np.isfinite(out).all() and (out[0] == 0).all()


def test_errors_name_the_problem(monkeypatch):
    jets = make_jets(3)
    with pytest.raises(ConfigError, match="'tau5'.*known names: mass"):
        jet_features(jets, ["pt", "tau5"])
    with pytest.raises(DataError, match="part_pz"):
        jet_features(jets[["part_E", "part_px", "part_py"]], ["pt"])
    monkeypatch.setitem(sys.modules, "fastjet", None)  # import fastjet -> ImportError
    with pytest.raises(HepnnError, match=r"hepnn\[gen\]"):
        jet_features(jets, ["tau2"])
    assert jet_features(jets, ["pt"]).shape == (3, 1)  # kinematics need no fastjet
    assert math.isfinite(float(jet_features(jets, ["mass"]).sum()))
