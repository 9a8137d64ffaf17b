"""Jets from Pythia: cuts, four-vector sums, ordering, truth matching, and clustering vs FastJet."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from hepnn.generate.jets import JetCuts, cluster, delta_r, final_particles, match


def _np(a):
    return ak.to_numpy(a).astype(np.float64)


@pytest.mark.parametrize("name", ["top_jets", "qcd_jets"])
def test_every_jet_obeys_cuts_and_is_the_sum_of_its_constituents(name, request):
    _, jets = request.getfixturevalue(name)
    px, py, pz, E = (ak.sum(ak.values_astype(jets[f"part_{k}"], np.float64), axis=1) for k in ("px", "py", "pz", "E"))
    for k, s in zip(("px", "py", "pz", "E"), (px, py, pz, E)):
        np.testing.assert_allclose(_np(jets[f"jet_{k}"]), ak.to_numpy(s), rtol=1e-5, atol=1e-3)
    pt = np.hypot(_np(jets.jet_px), _np(jets.jet_py))
    eta = np.arcsinh(_np(jets.jet_pz) / pt)
    mass = np.sqrt(np.clip(_np(jets.jet_E) ** 2 - pt**2 - _np(jets.jet_pz) ** 2, 0, None))
    assert np.all((pt > 550) & (pt < 650)) and np.all(np.abs(eta) < 2.0)
    np.testing.assert_allclose(_np(jets.jet_pt), pt, rtol=1e-5)
    np.testing.assert_allclose(_np(jets.jet_mass), mass, rtol=1e-3, atol=0.05)


def test_constituents_sorted_by_pt_and_visible(top_jets):
    _, jets = top_jets
    pt = np.hypot(jets.part_px, jets.part_py)
    assert ak.all(pt[:, :-1] >= pt[:, 1:])
    pid = np.abs(ak.flatten(jets.part_pid).to_numpy())
    assert not np.isin(pid, [12, 14, 16]).any()  # no neutrinos
    charge = ak.flatten(jets.part_charge).to_numpy()
    by_hand = {211: 1, -211: -1, 22: 0, 2212: 1, -2212: -1, 321: 1, 130: 0, 2112: 0, 11: -1, -11: 1}
    for p, q in by_hand.items():
        sel = ak.flatten(jets.part_pid).to_numpy() == p
        assert np.all(charge[sel] == q), p


def test_signal_jets_are_matched_to_the_top(top_jets, qcd_jets):
    _, top = top_jets
    assert np.all(ak.to_numpy(top.label) == 1) and np.all(ak.to_numpy(qcd_jets[1].label) == 0)
    dr = delta_r(_np(top.jet_eta), _np(top.jet_phi), _np(top.truth_eta), _np(top.truth_phi))
    assert np.all(dr < 0.8)
    truth = _np(top.truth_mass)  # the top quark: Breit-Wigner around 172.5 GeV, Γ ≈ 1.4 GeV
    assert abs(np.median(truth) - 172.5) < 1.5 and np.mean(np.abs(truth - 172.5) < 10) > 0.9
    # QCD truth is a light hard parton (quark or gluon mass ≲ 5 GeV)
    assert np.all(_np(qcd_jets[1].truth_mass) < 5.0)


def test_delta_r_wraps_phi():
    assert delta_r(0.0, 3.1, 0.0, -3.1) == pytest.approx(2 * np.pi - 6.2)
    assert delta_r(1.0, 0.0, -1.0, 0.0) == pytest.approx(2.0)


def test_match_requires_resonance_and_all_quarks_within_R():
    def p4(pt, eta, phi, m=0.0):
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        return [np.sqrt(px**2 + py**2 + pz**2 + m**2), px, py, pz]

    res = np.array([[p4(600, 0.0, 0.0, 173.0), p4(600, 0.0, np.pi, 173.0)]])  # (1, 2, 4)
    quarks = np.array([[[p4(200, 0.3, 0.0), p4(200, -0.3, 0.2), p4(200, 0.0, -0.5)],
                        [p4(200, 0.0, np.pi), p4(200, 0.1, np.pi), p4(200, 0.0, np.pi - 0.9)]]])
    best, truth = match(np.array([0.0]), np.array([0.0]), res, quarks, 0.8)
    assert best.tolist() == [0] and truth["mass"][0] == pytest.approx(173.0)
    best, _ = match(np.array([0.0]), np.array([np.pi]), res, quarks, 0.8)  # third quark at ΔR 0.9
    assert best.tolist() == [-1]
    best, _ = match(np.array([0.0]), np.array([np.pi - 0.1]), res, None, 0.8)  # QCD: nearest parton
    assert best.tolist() == [1]


def test_clustering_matches_fastjet_run_directly():
    import fastjet

    from hepnn.generate.pythia import make_pythia, pythia_settings

    pythia = make_pythia(pythia_settings("qcd", seed=5, pt_min=550, pt_max=650, mode="window", mpi=False))
    events = pythia.nextBatch(5)
    particles = final_particles(events, pythia.particleData)
    ours = cluster(particles, JetCuts())  # (events, jets, constituents)
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, 0.8)
    for e in range(len(events)):
        p = particles[e]
        pjs = [fastjet.PseudoJet(float(a), float(b), float(c), float(d)) for a, b, c, d in zip(p.px, p.py, p.pz, p.E)]
        seq = fastjet.ClusterSequence(pjs, jetdef)
        ref = sorted((j.pt(), j.m(), len(j.constituents())) for j in seq.inclusive_jets(275.0))
        mine = []
        for jet in ours[e]:
            px, py, pz, E = (float(ak.sum(jet[k])) for k in ("px", "py", "pz", "E"))
            mine.append((np.hypot(px, py), np.sqrt(max(E**2 - px**2 - py**2 - pz**2, 0)), len(jet)))
        mine.sort()
        assert len(mine) == len(ref) > 0
        np.testing.assert_allclose(np.array(mine), np.array(ref), rtol=1e-7, atol=1e-6)


def test_is_leading_marks_the_hardest_jet_of_each_event():
    from hepnn.generate.jets import is_leading

    pt = np.array([300.0, 600.0, 580.0, 700.0, 20.0])  # events with 3, 0, 2 jets
    assert is_leading(pt, np.array([3, 0, 2])).tolist() == [False, True, False, True, False]
    assert is_leading(np.zeros(0), np.array([0, 0])).tolist() == []


def test_leading_only_and_max_constituents_follow_the_reference():
    from hepnn.generate.jets import particles_to_jets
    from hepnn.generate.pythia import make_pythia, pythia_settings

    pythia = make_pythia(pythia_settings("qcd", seed=8, pt_min=550, pt_max=650, mode="window", mpi=False))
    events = pythia.nextBatch(40)
    particles = final_particles(events, pythia.particleData)
    all_jets, info = particles_to_jets(particles, events, JetCuts(leading_only=False, max_constituents=None), None, 0)
    lead, lead_info = particles_to_jets(particles, events, JetCuts(max_constituents=20), None, 0)
    assert len(np.unique(lead_info["event"])) == len(lead) < len(all_jets)  # one jet per event at most
    assert np.all(ak.to_numpy(ak.num(lead.part_E)) <= 20)
    # the jet four-vector and the cuts use all constituents, not only the stored ones
    full = all_jets[np.isin(info["event"], lead_info["event"])]
    assert set(np.round(ak.to_numpy(lead.jet_pt), 3)) <= set(np.round(ak.to_numpy(full.jet_pt), 3))
