"""The Delphes ATLAS card's numbers, as pure functions: what the public top-tagging sample was made with.

Source: ``cards/delphes_card_ATLAS.tcl`` of Delphes 3.4 (de Favereau et al., arXiv:1307.6346), the
version with one combined ``Calorimeter`` module (delphes/delphes commit 8713dee). The sample of
arXiv:1902.09914 (Zenodo 2603256, made 2018-03) used "Delphes with the default ATLAS detector card";
the paper does not give the Delphes version, and Delphes 3.4 was the release of that time. Later
cards (Delphes ≥ 3.4.2) split ECAL (0.0174 × 1° cells) and HCAL; see docs/generation.md.

Each constant names the card module it comes from. Functions take numpy arrays (any shape) and
return arrays of the same shape; η is the particle's position at the calorimeter surface, as in
Delphes' ``Efficiency`` and ``MomentumSmearing`` modules.
"""

from __future__ import annotations

import numpy as np

# ParticlePropagator: solenoid field and the cylinder the particles are propagated to.
FIELD_T = 2.0  # Bz
RADIUS_M = 1.15  # Radius
HALF_LENGTH_M = 3.51  # HalfLength
GEV_TO_METRE_PER_T = 1e9 / 2.99792458e8  # helix radius r[m] = pT[GeV] / (|q| B[T]) × this

# Calorimeter: combined ECAL + HCAL towers. EtaPhiBins: 10° (36 φ bins) and 20° (18 φ bins) lists;
# Delphes merges the η edges and gives the tower below each edge that edge's φ binning.
_EDGES_10 = [-3.2, *np.round(np.arange(-2.5, 2.55, 0.1), 1), 2.6, 3.3]
_EDGES_20 = [-4.9, -4.7, -4.5, -4.3, -4.1, -3.9, -3.7, -3.5, -3.3, -3.0, -2.8, -2.6,
             2.8, 3.0, 3.2, 3.5, 3.7, 3.9, 4.1, 4.3, 4.5, 4.7, 4.9]  # fmt: skip
ETA_EDGES = np.array(sorted(set(_EDGES_10) | set(_EDGES_20)))
N_PHI = np.array([36 if e in _EDGES_10 else 18 for e in ETA_EDGES])  # φ bins of the tower below edge k
PHI_STRIDE = 1024  # tower id = k · PHI_STRIDE + j (η bin k, φ bin j); any binning up to 1023 φ bins
ECAL_E_MIN, HCAL_E_MIN = 0.5, 1.0  # ECalEnergyMin, HCalEnergyMin (GeV)
ECAL_SIGNIFICANCE_MIN, HCAL_SIGNIFICANCE_MIN = 1.0, 1.0  # ECal/HCalEnergySignificanceMin

# Calorimeter EnergyFraction {|PDG|} {F_ECAL F_HCAL}; every other code deposits {0 1} (all in HCAL).
ENERGY_FRACTIONS = {11: (1.0, 0.0), 22: (1.0, 0.0), 111: (1.0, 0.0), 12: (0.0, 0.0), 13: (0.0, 0.0),
                    14: (0.0, 0.0), 16: (0.0, 0.0), 310: (0.3, 0.7), 3122: (0.3, 0.7)}  # fmt: skip


def tracking_efficiency(pt: np.ndarray, eta: np.ndarray, apid: np.ndarray) -> np.ndarray:
    """Track reconstruction efficiency of a charged particle (|PDG| ``apid``).

    Cards: ChargedHadronTrackingEfficiency (0.70 / 0.95 barrel, 0.60 / 0.85 endcap for
    0.1 < pT ≤ 1 GeV / pT > 1 GeV), ElectronTrackingEfficiency (0.73 / 0.95 / 0.99 and 0.50 / 0.83 /
    0.90 with a step at 100 GeV), MuonTrackingEfficiency (0.75 / 0.99 and 0.70 / 0.98); none at
    pT ≤ 0.1 GeV or |η| > 2.5.
    """
    a = np.abs(eta)
    barrel, endcap = a <= 1.5, (a > 1.5) & (a <= 2.5)
    soft, hard = (pt > 0.1) & (pt <= 1.0), pt > 1.0
    hadron = np.select([barrel & soft, barrel & hard, endcap & soft, endcap & hard], [0.70, 0.95, 0.60, 0.85], 0.0)
    very_hard = pt > 100.0
    electron = np.select(
        [barrel & soft, barrel & hard & ~very_hard, barrel & very_hard,
         endcap & soft, endcap & hard & ~very_hard, endcap & very_hard],
        [0.73, 0.95, 0.99, 0.50, 0.83, 0.90], 0.0,
    )  # fmt: skip
    muon = np.select([barrel & soft, barrel & hard, endcap & soft, endcap & hard], [0.75, 0.99, 0.70, 0.98], 0.0)
    return np.where(apid == 11, electron, np.where(apid == 13, muon, hadron))


def track_resolution(pt: np.ndarray, eta: np.ndarray, apid: np.ndarray) -> np.ndarray:
    """Relative track pT resolution σ(pT)/pT = √(a² + (b·pT)²), a and b by |η| bin and particle type.

    Cards: ChargedHadronMomentumSmearing (a = 0.06 / 0.10 / 0.25, b = 1.3e-3 / 1.7e-3 / 3.1e-3 for
    |η| ≤ 0.5 / ≤ 1.5 / ≤ 2.5), ElectronMomentumSmearing (same a and b in this card version),
    MuonMomentumSmearing (a = 0.02 / 0.03 / 0.06, b = 2e-4 / 3e-4 / 6e-4).
    """
    a_eta = np.abs(eta)
    i = np.select([a_eta <= 0.5, a_eta <= 1.5], [0, 1], 2)
    a_had, b_had = np.array([0.06, 0.10, 0.25]), np.array([1.3e-3, 1.7e-3, 3.1e-3])
    a_mu, b_mu = np.array([0.02, 0.03, 0.06]), np.array([2e-4, 3e-4, 6e-4])
    muon = apid == 13
    a = np.where(muon, a_mu[i], a_had[i])
    b = np.where(muon, b_mu[i], b_had[i])
    return np.sqrt(a**2 + (b * pt) ** 2)


def ecal_resolution(E: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Absolute ECAL resolution σ(E) in GeV. Card: Calorimeter ECalResolutionFormula
    (10.1 %/√E ⊕ 0.17 % for |η| ≤ 3.2, 28.5 %/√E ⊕ 3.5 % up to 4.9)."""
    central = np.abs(eta) <= 3.2
    a = np.where(central, 0.101, 0.285)
    b = np.where(central, 0.0017, 0.035)
    return np.sqrt((b * E) ** 2 + a**2 * np.maximum(E, 0.0))


def hcal_resolution(E: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Absolute HCAL resolution σ(E) in GeV. Card: Calorimeter HCalResolutionFormula
    (52 %/√E ⊕ 3.02 % ⊕ 1.59 GeV for |η| ≤ 1.7; 70.6 %/√E ⊕ 5 % to 3.2; 100 %/√E ⊕ 9.42 % to 4.9)."""
    a_eta = np.abs(eta)
    barrel, endcap = a_eta <= 1.7, a_eta <= 3.2
    a = np.select([barrel, endcap], [0.5205, 0.706], 1.0)
    b = np.select([barrel, endcap], [0.0302, 0.05], 0.0942)
    noise = np.where(barrel, 1.59, 0.0)
    E = np.maximum(E, 0.0)
    return np.sqrt((b * E) ** 2 + a**2 * E + noise**2)


def energy_fractions(apid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F_ECAL, F_HCAL) of each particle from its |PDG| code (Calorimeter EnergyFraction)."""
    codes = np.array(sorted(ENERGY_FRACTIONS))
    fracs = np.array([ENERGY_FRACTIONS[c] for c in codes])  # (codes, 2)
    pos = np.clip(np.searchsorted(codes, apid), 0, len(codes) - 1)
    known = codes[pos] == apid
    return np.where(known, fracs[pos, 0], 0.0), np.where(known, fracs[pos, 1], 1.0)


def tower_of(eta: np.ndarray, phi: np.ndarray, edges: np.ndarray = ETA_EDGES, n_phi: np.ndarray = N_PHI):
    """Tower id (−1 outside the calorimeter) and η edges/φ width of each tower, the card's binning.

    Delphes' rule: η bin k is the first edge ≥ η (``lower_bound``), valid for 1 ≤ k < len(edges);
    likewise for φ with N_PHI[k] equal bins from −π. Returns (tower id, k, j), id = k·PHI_STRIDE + j.
    """
    k = np.searchsorted(edges, eta, side="left")
    inside = (k >= 1) & (k < len(edges))
    k = np.where(inside, k, 1)
    bins = n_phi[k]
    j = np.ceil((phi + np.pi) / (2 * np.pi) * bins).astype(np.int64)
    inside &= (j >= 1) & (j <= bins)
    ident = np.where(inside, k * PHI_STRIDE + j, -1)
    return ident, k, j


def tower_box(ident: np.ndarray, edges: np.ndarray = ETA_EDGES, n_phi: np.ndarray = N_PHI):
    """(η_low, η_high, φ_low, φ_high) of towers from their ids (see :func:`tower_of`)."""
    k, j = ident // PHI_STRIDE, ident % PHI_STRIDE
    width = 2 * np.pi / n_phi[k]
    return edges[k - 1], edges[k], -np.pi + (j - 1) * width, -np.pi + j * width
