"""A simple, seeded, vectorized detector smearing modeled on the Delphes ATLAS card's energy flow.

Delphes: de Favereau et al., arXiv:1307.6346 (cards/delphes_card_ATLAS.tcl). What it does, in order:

1. Tracks: charged particles with pT > 0.5 GeV and |η| < 2.5 are reconstructed with efficiency
   95 % (|η| ≤ 1.5) or 85 % (1.5 < |η| ≤ 2.5); their pT is smeared by a Gaussian of relative width
   ``TRACK_RES`` (piecewise in |η| and pT), direction and charge kept, mass set to the pion's.
2. Calorimeters: photons and electrons without a track go to the ECAL, hadrons (charged without a
   track, and neutral) to the HCAL; muons without a track are lost. Deposits are summed in η–φ cells
   (ECAL 0.025 × 0.025, HCAL 0.1 × 0.1, |η| < 4.9), each cell's energy is smeared with
   σ/E = a/√E ⊕ b (ECAL a = 10.1 %, b = 0.17 %; HCAL a = 52 %/71 % , b = 3 %/5 % for |η| ≤ 1.7 /
   > 1.7, plus 1.59 GeV noise in the barrel) by a log-normal with that mean and width, and cells
   below threshold (ECAL 0.5 GeV, HCAL 1.0 GeV) are dropped. A cell becomes a massless particle at
   the cell centre with pid 22 (ECAL) or 130 (HCAL) and charge 0.

Left out: the magnetic field (charged particles are not bent, so tracks and their calorimeter
deposits are not displaced), the charged particles' calorimeter deposits and their particle-flow
subtraction, energy sharing between cells and between ECAL and HCAL, pile-up, material
interactions, muon and electron reconstruction and isolation, b-tagging, and the forward
calorimeter beyond |η| = 4.9.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

TRACK_PT_MIN = 0.5  # GeV
TRACK_ETA_MAX = 2.5
CALO_ETA_MAX = 4.9
ECAL_CELL = 0.025
HCAL_CELL = 0.1
ECAL_E_MIN = 0.5  # GeV
HCAL_E_MIN = 1.0
PION_MASS = 0.13957
ECAL_PIDS = (11, 22)  # electrons and photons shower electromagnetically
MUON_PID = 13
NEUTRINO_LIKE = (12, 14, 16)


def track_efficiency(eta: np.ndarray) -> np.ndarray:
    """Charged-track reconstruction efficiency vs η (for pT > 0.5 GeV)."""
    a = np.abs(eta)
    return np.where(a <= 1.5, 0.95, np.where(a <= TRACK_ETA_MAX, 0.85, 0.0))


def track_resolution(pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Relative pT resolution σ(pT)/pT of tracks, piecewise as in the Delphes ATLAS card."""
    barrel = np.abs(eta) <= 1.5
    res_b = np.select([pt <= 1.0, pt <= 10.0, pt <= 200.0], [0.02, 0.01, 0.03], 0.05)
    res_e = np.select([pt <= 1.0, pt <= 10.0, pt <= 200.0], [0.03, 0.02, 0.04], 0.05)
    return np.where(barrel, res_b, res_e)


def ecal_resolution(E: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Absolute ECAL energy resolution σ(E) in GeV: 10.1 %/√E ⊕ 0.17 %."""
    return np.sqrt((0.0017 * E) ** 2 + 0.101**2 * E)


def hcal_resolution(E: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Absolute HCAL energy resolution σ(E) in GeV (barrel |η| ≤ 1.7 and endcap/forward)."""
    barrel = np.sqrt((0.0302 * E) ** 2 + 0.5205**2 * E + 1.59**2)
    endcap = np.sqrt((0.05 * E) ** 2 + 0.706**2 * E)
    return np.where(np.abs(eta) <= 1.7, barrel, endcap)


def lognormal_smear(E: np.ndarray, sigma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Positive energies with mean E and standard deviation σ (log-normal, as Delphes does)."""
    var = np.log1p((sigma / np.maximum(E, 1e-12)) ** 2)
    mu = np.log(np.maximum(E, 1e-12)) - 0.5 * var
    return np.exp(mu + np.sqrt(var) * rng.standard_normal(E.shape))


def _eta_phi(E, px, py, pz):
    pt = np.hypot(px, py)
    return np.arcsinh(pz / np.where(pt > 0, pt, 1e-12)), np.arctan2(py, px), pt


def _cells(event, eta, phi, E, size: float, pid: int, e_min: float, res, rng) -> dict[str, np.ndarray]:
    """Sum energies per (event, η cell, φ cell), smear, threshold; massless particles at cell centres."""
    n_phi = int(np.ceil(2 * np.pi / size))
    ieta = np.floor((eta + CALO_ETA_MAX) / size).astype(np.int64)
    iphi = np.floor((phi + np.pi) / (2 * np.pi) * n_phi).astype(np.int64) % n_phi
    n_eta = int(np.ceil(2 * CALO_ETA_MAX / size))
    key = (event * n_eta + ieta) * n_phi + iphi  # unique cell id across the batch
    cells, inverse = np.unique(key, return_inverse=True)  # sorted → grouped by event
    e_sum = np.bincount(inverse, weights=E, minlength=len(cells))
    c_event = cells // (n_eta * n_phi)
    c_eta = ((cells // n_phi) % n_eta + 0.5) * size - CALO_ETA_MAX
    c_phi = (cells % n_phi + 0.5) * (2 * np.pi / n_phi) - np.pi
    e_obs = lognormal_smear(e_sum, res(e_sum, c_eta), rng)
    keep = e_obs > e_min
    e_obs, c_eta, c_phi = e_obs[keep], c_eta[keep], c_phi[keep]
    pt = e_obs / np.cosh(c_eta)
    return {
        "event": c_event[keep],
        "E": e_obs,
        "px": pt * np.cos(c_phi),
        "py": pt * np.sin(c_phi),
        "pz": pt * np.sinh(c_eta),
        "charge": np.zeros(keep.sum(), np.int8),
        "pid": np.full(keep.sum(), pid, np.int32),
    }


def smear(particles: ak.Array, rng: np.random.Generator) -> ak.Array:
    """Apply the simple detector to a batch of generator-level particles (see module docstring).

    Args:
        particles: (events, var) records E, px, py, pz, charge, pid.
        rng: numpy Generator; the same seed and input give the same output.
    Returns:
        (events, var) records of the same fields: tracks first, then ECAL and HCAL cells.
    """
    counts = ak.to_numpy(ak.num(particles))
    event = np.repeat(np.arange(len(counts)), counts)
    f = {k: ak.to_numpy(ak.flatten(particles[k])) for k in ("E", "px", "py", "pz", "charge", "pid")}
    eta, phi, pt = _eta_phi(f["E"], f["px"], f["py"], f["pz"])
    apid = np.abs(f["pid"])
    charged = f["charge"] != 0
    tracked = charged & (pt > TRACK_PT_MIN) & (rng.random(len(pt)) < track_efficiency(eta))
    scale = np.maximum(1.0 + track_resolution(pt, eta) * rng.standard_normal(len(pt)), 0.0)[tracked]
    p3 = np.stack([f["px"], f["py"], f["pz"]])[:, tracked] * scale  # (3, T)
    tracks = {
        "event": event[tracked],
        "E": np.sqrt((p3**2).sum(0) + PION_MASS**2),
        "px": p3[0],
        "py": p3[1],
        "pz": p3[2],
        "charge": f["charge"][tracked],
        "pid": f["pid"][tracked],
    }
    to_calo = ~tracked & (apid != MUON_PID) & ~np.isin(apid, NEUTRINO_LIKE) & (np.abs(eta) < CALO_ETA_MAX)
    em = to_calo & np.isin(apid, ECAL_PIDS)
    had = to_calo & ~em
    ecal = _cells(event[em], eta[em], phi[em], f["E"][em], ECAL_CELL, 22, ECAL_E_MIN, ecal_resolution, rng)
    hcal = _cells(event[had], eta[had], phi[had], f["E"][had], HCAL_CELL, 130, HCAL_E_MIN, hcal_resolution, rng)
    parts = [tracks, ecal, hcal]
    allev = np.concatenate([p["event"] for p in parts])
    order = np.argsort(allev, kind="stable")  # regroup by event, tracks before cells
    out = {k: np.concatenate([p[k] for p in parts])[order] for k in ("E", "px", "py", "pz", "charge", "pid")}
    n_out = np.bincount(allev, minlength=len(counts))
    return ak.unflatten(ak.zip(out), n_out)
