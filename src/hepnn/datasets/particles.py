"""Pure helpers the converters share: PDG masses and charges by id, (pT, y, phi, m) -> (E, px, py, pz).

Masses in GeV and charges from the Review of Particle Physics (PDG); the table covers the stable
final-state particles of the public jet samples (photons, e, mu, charged pions and kaons, K_L,
protons, neutrons and their antiparticles). An id outside the table gets mass 0 and charge 0, and the
converter reports how many particles that concerned.
"""

from __future__ import annotations

import numpy as np

# |PDG id| -> (mass GeV, charge of the particle with the positive id)
_TABLE: dict[int, tuple[float, int]] = {
    22: (0.0, 0),            # photon
    11: (0.000510999, -1),   # electron (e-; id -11 is e+)
    13: (0.105658, -1),      # muon (mu-)
    211: (0.13957, 1),       # pi+
    321: (0.493677, 1),      # K+
    130: (0.497611, 0),      # K_L
    2212: (0.938272, 1),     # proton
    2112: (0.939565, 0),     # neutron
}
_IDS = np.array(sorted(_TABLE), dtype=np.int64)
_MASS = np.array([_TABLE[i][0] for i in _IDS])
_CHARGE = np.array([_TABLE[i][1] for i in _IDS], dtype=np.int8)


def pdg_lookup(pid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mass float64, charge int8, known bool) per particle id. Shapes: (P,) -> 3 x (P,)."""
    pid = np.asarray(pid, dtype=np.int64)
    a = np.abs(pid)
    pos = np.clip(np.searchsorted(_IDS, a), 0, len(_IDS) - 1)
    known = _IDS[pos] == a
    mass = np.where(known, _MASS[pos], 0.0)
    charge = np.where(known, _CHARGE[pos] * np.sign(pid), 0).astype(np.int8)
    return mass, charge, known


def p4_from_ptyphim(pt: np.ndarray, y: np.ndarray, phi: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Four-momenta (E, px, py, pz) from pT, rapidity y, azimuth and mass, computed in float64.

    E = mT cosh y, pz = mT sinh y with mT = sqrt(pT² + m²) (EnergyFlow's ``p4s_from_ptyphims``); for
    m = 0, y is the pseudorapidity. Shapes: 4 x (P,) -> (P, 4).
    """
    pt, y, phi, m = (np.asarray(a, dtype=np.float64) for a in (pt, y, phi, m))
    mt = np.sqrt(pt**2 + m**2)
    return np.stack([mt * np.cosh(y), pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(y)], axis=-1)


def order_by_pt(pt: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Per-jet permutation putting real particles first, by decreasing pT (stable: ties keep file order).

    Shapes: (n, M), (n, M) bool -> (n, M) int indices for ``np.take_along_axis``.
    """
    key = np.where(real, -np.asarray(pt, dtype=np.float64), np.inf)
    return np.argsort(key, axis=1, kind="stable")
