"""Physics sanity of generated jets: top/W mass peaks, falling QCD mass, constituent multiplicity.

The statistics-hungry checks use the committed sample data/toptag_small.parquet (made by
``hepnn.generate.generate``, see data/README.md); the W check generates its own ~100 jets.
"""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest


def _mass(jets) -> np.ndarray:
    return ak.to_numpy(jets.jet_mass).astype(np.float64)


def _mode(x: np.ndarray, lo: float, hi: float, width: float) -> float:
    counts, edges = np.histogram(x, bins=np.arange(lo, hi + width, width))
    return float(edges[np.argmax(counts)] + width / 2)


def test_sample_layout_and_balance(sample):
    label = ak.to_numpy(sample.label)
    assert set(np.unique(label)) == {0, 1}
    assert 2000 < (label == 1).sum() < 3000 and 2000 < (label == 0).sum() < 3000
    pt = ak.to_numpy(sample.jet_pt)
    assert np.all((pt > 550) & (pt < 650)) and np.all(np.abs(ak.to_numpy(sample.jet_eta)) < 2)


def test_top_mass_peaks_at_the_top_mass(sample):
    top = _mass(sample[sample.label == 1])
    assert 165 <= _mode(top, 50, 300, 5.0) <= 180


def test_qcd_mass_falls_with_no_peak_at_the_top_mass(sample):
    qcd = _mass(sample[sample.label == 0])
    assert _mode(qcd, 0, 300, 10.0) < 120
    counts, _ = np.histogram(qcd, bins=[100, 150, 200, 250, 300])
    assert np.all(np.diff(counts) < 0)  # monotonically falling above 100 GeV
    top = _mass(sample[sample.label == 1])
    in_window = lambda m: np.mean((m > 150) & (m < 200))  # noqa: E731
    assert in_window(top) > 3 * in_window(qcd)


def test_top_jets_have_more_constituents_than_qcd(sample):
    n = ak.to_numpy(ak.num(sample.part_E))
    label = ak.to_numpy(sample.label)
    assert n[label == 1].mean() > n[label == 0].mean() + 5


@pytest.mark.slow
def test_w_jet_mass_peaks_near_80_gev(tmp_path):
    from hepnn.data.io import read_jets
    from hepnn.generate import generate

    (path,) = generate("w", 100, tmp_path / "w.parquet", seed=3, mode="window", progress=False)
    w = read_jets(path)
    assert np.all(ak.to_numpy(w.label) == 1)
    m = _mass(w)
    assert 70 <= _mode(m, 0, 300, 5.0) <= 90
    assert 70 <= np.median(m) <= 90
    truth = ak.to_numpy(w.truth_mass)  # matched to the W (Breit-Wigner, Γ ≈ 2.1 GeV)
    assert abs(np.median(truth) - 80.4) < 1.5 and np.mean(np.abs(truth - 80.4) < 10) > 0.9
