"""The ``simple`` detector: a seeded, vectorized emulation of Delphes' ATLAS card with energy flow.

This is what the public top-tagging sample's constituents are (arXiv:1902.09914: "Delphes with the
default ATLAS detector card ... the jet constituents are extracted through the Delphes energy-flow
algorithm"). Every number comes from :mod:`hepnn.generate.atlas_card`; the steps follow the Delphes
3.4 modules of that card (arXiv:1307.6346), in order:

1. ``ParticlePropagator``: charged particles move on helices in Bz = 2 T to the cylinder
   R = 1.15 m, |z| = 3.51 m (loopers with pT < 0.35 GeV leave through the end caps); neutral ones
   fly straight. The exit point's (η, φ) decides the particle's tower.
2. ``*TrackingEfficiency`` / ``*MomentumSmearing``: charged particles become tracks with the card's
   efficiency (pT > 0.1 GeV, |η| < 2.5) and a Gaussian relative pT smearing; a track keeps the
   particle's direction at the vertex and is massless (E = pT cosh η), as in Delphes 3.4.
3. ``Calorimeter`` (one set of towers, 0.1 × 10° in |η| < 2.5, for ECAL and HCAL): every particle,
   tracked or not, deposits E·F_ECAL and E·F_HCAL in its tower (e, γ: ECAL; K⁰_S, Λ: 30/70 %;
   other hadrons: HCAL; μ, ν: nothing). Each tower's ECAL and HCAL sums are smeared log-normally
   and zeroed below max(E_min, 1σ).
4. Energy flow (``Calorimeter`` eflow outputs, merged by ``EFlowMerger``): per tower and
   calorimeter, the excess of the measured energy over the tracks' energy becomes a neutral
   candidate (photon for ECAL, neutral hadron for HCAL) at a random point of the tower
   (``SmearTowerCenter``) when it exceeds E_min and 1σ of √(σ_tracks² + σ_calo²); otherwise the
   tower's tracks are rescaled to the σ-weighted mean of track and calorimeter energy.

Left out: vertex displacement (particles start at the origin), material effects and photon
conversions, Delphes' lepton/photon isolation and identification (not used by the sample),
pile-up subtraction. Outputs carry the generator pid on tracks, 22 on photons and 130 on neutral
hadrons (the public sample stores no pid at all).
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from dataclasses import dataclass, field

from hepnn.generate import atlas_card as card

FIELDS = ("E", "px", "py", "pz", "charge", "pid")


@dataclass(frozen=True)
class Towers:
    """Calorimeter segmentation: η edges, φ bins of the tower below each edge, and whether a neutral
    candidate sits at a random point of its tower (the card's ``SmearTowerCenter``) or its centre.
    The default is the card's; other values exist for granularity studies."""

    eta_edges: np.ndarray = field(default_factory=lambda: card.ETA_EDGES)
    n_phi: np.ndarray = field(default_factory=lambda: card.N_PHI)
    random_point: bool = True

    @property
    def n_ids(self) -> int:  # tower ids per event (see atlas_card.tower_of)
        return len(self.eta_edges) * card.PHI_STRIDE


ATLAS_TOWERS = Towers()


def calorimeter_position(px, py, pz, charge) -> tuple[np.ndarray, np.ndarray]:
    """(η, φ) where each particle leaves the tracker volume (ParticlePropagator, from the origin).

    A charge q with transverse momentum pT circles with radius r = pT / (|q| B) (in metres for GeV
    and tesla); after turning by α it sits at distance 2r·sin(α/2) from the beam in the direction
    φ0 − sign(q)·α/2. It exits the barrel (ρ = R) if 2r ≥ R and |z| ≤ L there, else an end cap.
    """
    pt = np.hypot(px, py)
    phi0 = np.arctan2(py, px)
    eta = np.arcsinh(pz / np.where(pt > 0, pt, 1e-12))
    q = np.asarray(charge, np.float64)
    charged = q != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(charged, pt / (np.abs(q) * card.FIELD_T) * card.GEV_TO_METRE_PER_T, np.inf)  # (N,)
        alpha_b = 2 * np.arcsin(np.minimum(card.RADIUS_M / (2 * r), 1.0))
        z_b = r * alpha_b * pz / pt
        barrel = (2 * r >= card.RADIUS_M) & (np.abs(z_b) <= card.HALF_LENGTH_M)
        alpha_e = card.HALF_LENGTH_M * pt / np.abs(pz) / r  # turning angle at the end cap
        alpha = np.where(barrel, alpha_b, alpha_e)
        rho = np.where(barrel, card.RADIUS_M, 2 * r * np.abs(np.sin(alpha / 2)))
        z = np.where(barrel, z_b, np.sign(pz) * card.HALF_LENGTH_M)
        eta_c = np.where(charged, np.arcsinh(z / rho), eta)
        phi_c = np.where(charged, phi0 - np.sign(q) * alpha / 2, phi0)
    phi_c = (np.nan_to_num(phi_c, nan=0.0, posinf=0.0, neginf=0.0) + np.pi) % (2 * np.pi) - np.pi
    return np.nan_to_num(eta_c, nan=np.inf), phi_c  # a looper with pz = 0 never leaves: η = ∞


def _flat(particles: ak.Array) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    counts = ak.to_numpy(ak.num(particles))
    event = np.repeat(np.arange(len(counts)), counts)
    return event, {k: ak.to_numpy(ak.flatten(particles[k])) for k in FIELDS}


def smear(particles: ak.Array, rng: np.random.Generator, towers: Towers = ATLAS_TOWERS) -> ak.Array:
    """Energy-flow candidates of a batch of generator-level particles (see the module docstring).

    Args:
        particles: (events, var) records E, px, py, pz, charge, pid (visible final state).
        rng: numpy Generator; the same seed and input give the same output.
        towers: the calorimeter segmentation (default: the card's).
    Returns:
        (events, var) records of the same fields: tracks, then photons, then neutral hadrons.
    """
    n_events = len(particles)
    event, f = _flat(particles)
    pt = np.hypot(f["px"], f["py"])
    eta_c, phi_c = calorimeter_position(f["px"], f["py"], f["pz"], f["charge"])
    apid = np.abs(f["pid"])
    charged = (f["charge"] != 0) & (pt > 0)
    eff = card.tracking_efficiency(pt, eta_c, apid)
    tracked = charged & (rng.random(len(pt)) < eff)
    res = card.track_resolution(pt, eta_c, apid)
    pt_trk = pt * (1.0 + res * rng.standard_normal(len(pt)))  # MomentumSmearing (Gaussian in 3.4)
    tracked &= pt_trk > 0
    eta_m = np.arcsinh(f["pz"] / np.where(pt > 0, pt, 1e-12))
    phi_m = np.arctan2(f["py"], f["px"])
    e_trk = pt_trk * np.cosh(eta_m)  # massless track
    tower, _, _ = card.tower_of(eta_c, phi_c, towers.eta_edges, towers.n_phi)
    key = np.where(tower >= 0, event * towers.n_ids + tower, -1)
    f_ecal, f_hcal = card.energy_fractions(apid)
    scale, neutrals = _energy_flow(key, f["E"], f_ecal, f_hcal, tracked, e_trk, res, rng, towers)
    t = np.flatnonzero(tracked)
    pt_out = pt_trk[t] * scale[t]
    tracks = {
        "event": event[t],
        "E": pt_out * np.cosh(eta_m[t]),
        "px": pt_out * np.cos(phi_m[t]),
        "py": pt_out * np.sin(phi_m[t]),
        "pz": pt_out * np.sinh(eta_m[t]),
        "charge": f["charge"][t],
        "pid": f["pid"][t],
    }
    parts = [tracks, *neutrals]
    allev = np.concatenate([p["event"] for p in parts])
    order = np.argsort(allev, kind="stable")  # regroup by event: tracks, photons, neutral hadrons
    out = {k: np.concatenate([p[k] for p in parts])[order] for k in FIELDS}
    return ak.unflatten(ak.zip(out), np.bincount(allev, minlength=n_events))


def _energy_flow(key, E, f_ecal, f_hcal, tracked, e_trk, res, rng, towers: Towers):
    """Towers → (per-particle track scale factor, [photons, neutral hadrons]) as in Delphes 3.4.

    Shapes: every input is (N,) over the batch's particles; ``key`` is −1 outside the calorimeter.
    """
    dep = (key >= 0) & (f_ecal + f_hcal > 0)
    ids, inv = np.unique(key[dep], return_inverse=True)  # (T,) sorted: grouped by event
    n_t = len(ids)
    trk = tracked & dep
    t_idx = np.searchsorted(ids, key[trk])  # every deposited track's tower exists
    scale = np.ones(len(E))
    neutrals = []
    eta_lo, eta_hi, phi_lo, phi_hi = card.tower_box(ids % towers.n_ids, towers.eta_edges, towers.n_phi)
    eta_c = 0.5 * (eta_lo + eta_hi)
    if towers.random_point:  # one random point per tower for its neutral candidates (SmearTowerCenter)
        eta_r, phi_r = rng.uniform(eta_lo, eta_hi), rng.uniform(phi_lo, phi_hi)
    else:
        eta_r, phi_r = eta_c, 0.5 * (phi_lo + phi_hi)
    calos = ((f_ecal, card.ecal_resolution, card.ECAL_E_MIN, card.ECAL_SIGNIFICANCE_MIN, 22),
             (f_hcal, card.hcal_resolution, card.HCAL_E_MIN, card.HCAL_SIGNIFICANCE_MIN, 130))  # fmt: skip
    for frac, resolution, e_min, sig_min, pid in calos:
        true = np.bincount(inv, weights=E[dep] * frac[dep], minlength=n_t)  # (T,)
        meas = lognormal_smear(true, resolution(true, eta_c), rng)
        sigma = resolution(meas, eta_c)
        meas = np.where((meas < e_min) | (meas < sig_min * sigma), 0.0, meas)
        sigma = resolution(meas, eta_c)
        w = frac[trk]
        t_sum = np.bincount(t_idx, weights=e_trk[trk] * w, minlength=n_t)
        t_var = np.bincount(t_idx, weights=(res[trk] * e_trk[trk]) ** 2 * (w > 0), minlength=n_t)
        excess = np.maximum(meas - t_sum, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            significance = excess / np.sqrt(t_var + sigma**2)
            neutral = (excess > e_min) & (significance > sig_min)
            w_trk = np.where(t_var > 0, 1.0 / t_var, 0.0)
            w_cal = np.where(sigma > 0, 1.0 / sigma**2, 0.0)
            best = (w_trk * t_sum + w_cal * meas) / (w_trk + w_cal)
            factor = np.where(~neutral & (t_sum > 0) & (w_trk + w_cal > 0), best / t_sum, 1.0)  # (T,)
        rows = np.flatnonzero(trk)
        scale[rows] = np.where(w > 0, scale[rows] * factor[t_idx], scale[rows])
        event = ids[neutral] // towers.n_ids
        neutrals.append(_candidates(event, excess[neutral], eta_r[neutral], phi_r[neutral], pid))
    return scale, neutrals


def _candidates(event, energy, eta, phi, pid: int) -> dict[str, np.ndarray]:
    """Massless neutral candidates of the given events at (η, φ) with the given energies."""
    pt = energy / np.cosh(eta)
    return {
        "event": event,
        "E": energy,
        "px": pt * np.cos(phi),
        "py": pt * np.sin(phi),
        "pz": pt * np.sinh(eta),
        "charge": np.zeros(len(energy), np.int8),
        "pid": np.full(len(energy), pid, np.int32),
    }


def lognormal_smear(E: np.ndarray, sigma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Delphes' LogNormal: mean E, standard deviation σ; 0 where E ≤ 0 (a normal is drawn anyway)."""
    z = rng.standard_normal(E.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.log1p((sigma / E) ** 2)
        out = np.exp(np.log(E) - 0.5 * var + np.sqrt(var) * z)
    return np.where(E > 0, out, 0.0)

