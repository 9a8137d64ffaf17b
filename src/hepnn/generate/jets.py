"""From a batch of Pythia events to jets in hepnn's native layout: particles, clustering, matching, cuts.

Everything is vectorized over the batch with awkward/numpy; the only per-event code is inside
Pythia and FastJet. Matching follows arXiv:1902.09914: a top jet must lie within ΔR < R of the
(last-copy) top quark and of all three decay quarks (b, q, q̄′); a W jet within ΔR < R of the W and
both decay quarks. QCD jets carry the nearest hard outgoing parton as truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

MIN_CLUSTER_PT_FRACTION = 0.5  # ask FastJet only for jets above this fraction of pt_min


@dataclass(frozen=True)
class JetCuts:
    """Jet-level selection and clustering radius."""

    pt_min: float = 550.0  # GeV, exclusive
    pt_max: float = 650.0  # GeV, exclusive
    eta_max: float = 2.0  # |η| < eta_max
    R: float = 0.8  # anti-kT radius, also the matching radius
    leading_only: bool = True  # keep only the highest-pT jet of each event (as the reference sample)
    max_constituents: int | None = 200  # keep the leading N constituents (the reference stores 200)


def final_particles(events: ak.Array, pdata) -> ak.Array:
    """Visible final-state particles (status > 0, no neutrinos/invisibles) with charge and pid.

    Args:
        events: ``pythia.nextBatch`` output (fields ``prt.id``, ``prt.status``, ``prt.p``).
        pdata: ``pythia.particleData`` (for charge and visibility, looked up once per distinct pid).
    Returns:
        (events, var) records E, px, py, pz (float64), charge (int8), pid (int32).
    """
    prt = events.prt[events.prt.status > 0]
    pid = ak.flatten(prt.id).to_numpy()
    ids, inverse = np.unique(pid, return_inverse=True)
    charge = np.array([pdata.charge(int(i)) for i in ids], dtype=np.float64)[inverse]
    visible = np.array([pdata.isVisible(int(i)) for i in ids], dtype=bool)[inverse]
    counts = ak.num(prt)
    flat = ak.flatten(prt.p)
    table = {
        "E": flat.e.to_numpy(),
        "px": flat.px.to_numpy(),
        "py": flat.py.to_numpy(),
        "pz": flat.pz.to_numpy(),
        "charge": np.rint(charge).astype(np.int8),
        "pid": pid.astype(np.int32),
    }
    parts = ak.unflatten(ak.zip(table), counts)
    return parts[ak.unflatten(visible, counts)]


def cluster(particles: ak.Array, cuts: JetCuts) -> ak.Array:
    """Anti-kT jets of the batch in one FastJet call; returns (events, jets, constituents) particles.

    Shapes:
        particles: (events, var) records with E, px, py, pz and any extra per-particle fields.
        returns:   (events, var jets, var constituents) with the same fields.
    """
    from hepnn.fastjet_utils import import_fastjet

    fastjet = import_fastjet()
    import vector

    vector.register_awkward()
    p4 = ak.zip(
        {"px": particles.px, "py": particles.py, "pz": particles.pz, "E": particles.E}, with_name="Momentum4D"
    )
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, cuts.R)
    seq = fastjet.ClusterSequence(p4, jetdef)
    index = seq.constituent_index(min_pt=MIN_CLUSTER_PT_FRACTION * cuts.pt_min)  # (events, jets, const)
    # jagged gather: particles[event][index[event][jet]] for every event and jet at once
    counts = ak.num(index, axis=2)
    flat_index = ak.flatten(index, axis=2)  # (events, constituents of all jets)
    gathered = particles[flat_index]
    return ak.unflatten(gathered, ak.flatten(counts), axis=1)


def jet_kinematics(E, px, py, pz) -> dict[str, np.ndarray]:
    """pT, η, φ, mass of four-vectors (numpy, any shape); mass² < 0 from rounding is clipped to 0."""
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / np.where(pt > 0, pt, 1.0))
    phi = np.arctan2(py, px)
    mass = np.sqrt(np.clip(E**2 - px**2 - py**2 - pz**2, 0.0, None))
    return {"pt": pt, "eta": eta, "phi": phi, "mass": mass}


def delta_r(eta1, phi1, eta2, phi2) -> np.ndarray:
    """ΔR = √(Δη² + Δφ²) with Δφ wrapped into [−π, π) (numpy broadcasting)."""
    dphi = (phi1 - phi2 + np.pi) % (2 * np.pi) - np.pi
    return np.hypot(eta1 - eta2, dphi)


def truth_candidates(events: ak.Array, resonance: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Truth partons per event: resonances (events, 2, 4) and their decay quarks (events, 2, Q, 4).

    For a resonance (6 = top, 24 = W) the two candidates are the last copies (before decay) of the
    particle and antiparticle; the quarks are the b (top only) and the two quarks from the W decay.
    For QCD (``resonance=None``) the candidates are the two hard outgoing partons (status −23) and
    there are no quarks. Missing entries are NaN, so they never match.
    """
    prt = events.prt
    mother_id = prt.id[prt.mother1]  # jagged gather inside each event
    daughter_id = prt.id[prt.daughter1]
    if resonance is None:
        hard = ak.pad_none(prt[np.abs(prt.status) == 23], 2, clip=True)
        return ak.fill_none(_p4_of_padded(hard), np.nan).to_numpy(), None
    res, quarks = [], []
    for sign in (1, -1):
        code = sign * resonance
        last = prt[(prt.id == code) & (daughter_id != code)]
        w_code = sign * 24
        q = prt[(np.abs(prt.id) <= 5) & (prt.id != 0) & (mother_id == w_code)]
        if resonance == 6:
            b = prt[(prt.id == sign * 5) & (mother_id == code)]
            q = ak.concatenate([b, q], axis=1)
        res.append(_p4_of_padded(ak.pad_none(last, 1, clip=True))[:, 0])
        quarks.append(_p4_of_padded(ak.pad_none(q, 3 if resonance == 6 else 2, clip=True)))
    res_np = np.stack([ak.fill_none(r, np.nan).to_numpy() for r in res], axis=1)  # (events, 2, 4)
    q_np = np.stack([ak.fill_none(q, np.nan).to_numpy() for q in quarks], axis=1)  # (events, 2, Q, 4)
    return res_np, q_np


def _p4_of_padded(rec: ak.Array) -> ak.Array:
    """Regular (…, 4) awkward array of (E, px, py, pz); None entries stay None."""
    p = rec.p
    return ak.concatenate([p.e[..., None], p.px[..., None], p.py[..., None], p.pz[..., None]], axis=-1)


def match(jet_eta, jet_phi, res: np.ndarray, quarks: np.ndarray | None, R: float):
    """Index (0/1) of the truth candidate each jet is matched to, or −1; and that candidate's (pT, η, φ, m).

    Signal (``quarks`` given): the jet must be within ΔR < R of the resonance and of every quark.
    QCD: the nearest hard parton, always matched.

    Shapes:
        jet_eta, jet_phi: (J,); res: (J, 2, 4); quarks: (J, 2, Q, 4) or None.
    """
    kin = jet_kinematics(*np.moveaxis(res, -1, 0))  # each (J, 2)
    dr_res = delta_r(jet_eta[:, None], jet_phi[:, None], kin["eta"], kin["phi"])  # (J, 2)
    dr_res = np.where(np.isnan(dr_res), np.inf, dr_res)
    if quarks is None:
        best = np.argmin(dr_res, axis=1)
    else:
        qk = jet_kinematics(*np.moveaxis(quarks, -1, 0))  # each (J, 2, Q)
        dr_q = delta_r(jet_eta[:, None, None], jet_phi[:, None, None], qk["eta"], qk["phi"])  # (J, 2, Q)
        ok = (dr_res < R) & np.all(np.nan_to_num(dr_q, nan=np.inf) < R, axis=2)  # (J, 2)
        best = np.where(ok.any(axis=1), np.argmin(np.where(ok, dr_res, np.inf), axis=1), -1)
    rows = np.arange(len(best))
    truth = {k: v[rows, np.maximum(best, 0)] for k, v in kin.items()}
    return best, truth


def events_to_jets(
    events: ak.Array, pdata, cuts: JetCuts, resonance: int | None, label: int, smear=None, pileup=None
) -> ak.Array:
    """One batch of Pythia events → selected, matched jets in hepnn's native layout (one row per jet).

    Args:
        events: ``pythia.nextBatch`` output.
        pdata: ``pythia.particleData``.
        cuts: jet selection and radius.
        resonance: 6 (top), 24 (W) or None (QCD); signal jets must be matched.
        label: value of the ``label`` column.
        smear: optional ``particles -> particles`` detector function applied before clustering.
        pileup: optional ``particles -> particles`` overlay (minimum-bias particles merged in),
            applied before the detector.
    """
    particles = final_particles(events, pdata)
    if pileup is not None:
        particles = pileup(particles)
    if smear is not None:
        particles = smear(particles)
    return particles_to_jets(particles, events, cuts, resonance, label)[0]


def particles_to_jets(
    particles: ak.Array, events: ak.Array, cuts: JetCuts, resonance: int | None, label: int
) -> tuple[ak.Array, dict[str, np.ndarray]]:
    """Cluster, cut and match a batch's particles; returns the jets and, per jet, its ``event``
    index in the batch and the ``truth_index`` (0/1) of the matched truth candidate."""
    constituents = cluster(particles, cuts)  # (events, jets, constituents)
    n_jets = ak.to_numpy(ak.num(constituents, axis=1))
    event_of_jet = np.repeat(np.arange(len(events)), n_jets)
    const = ak.flatten(constituents, axis=1)  # (jets, constituents)
    # float32 constituents first, so that the jet is exactly their sum and the cuts hold on disk
    p4 = {k: ak.values_astype(const[k], np.float32) for k in ("E", "px", "py", "pz")}
    jet = {k: ak.to_numpy(ak.sum(ak.values_astype(v, np.float64), axis=1)) for k, v in p4.items()}
    kin = {k: v.astype(np.float32) for k, v in jet_kinematics(jet["E"], jet["px"], jet["py"], jet["pz"]).items()}
    keep = (kin["pt"] > cuts.pt_min) & (kin["pt"] < cuts.pt_max) & (np.abs(kin["eta"]) < cuts.eta_max)
    if cuts.leading_only:
        keep &= is_leading(kin["pt"], n_jets)
    res, quarks = truth_candidates(events, resonance)
    ev = event_of_jet[keep]
    best, truth = match(
        kin["eta"][keep].astype(np.float64),
        kin["phi"][keep].astype(np.float64),
        res[ev],
        None if quarks is None else quarks[ev],
        cuts.R,
    )
    sel = np.flatnonzero(keep)[best >= 0]
    order = ak.argsort(np.hypot(p4["px"], p4["py"]), axis=1, ascending=False)[sel]  # pT-descending
    if cuts.max_constituents is not None:
        order = order[:, : cuts.max_constituents]
    out = {f"part_{k}": v[sel][order] for k, v in p4.items()}
    out["part_charge"] = const.charge[sel][order]
    out["part_pid"] = const.pid[sel][order]
    for k in ("E", "px", "py", "pz"):
        out[f"jet_{k}"] = jet[k][sel].astype(np.float32)
    for k in ("pt", "eta", "phi", "mass"):
        out[f"jet_{k}"] = kin[k][sel]
    out["label"] = np.full(len(sel), label, dtype=np.int64)
    for k in ("pt", "eta", "phi", "mass"):
        out[f"truth_{k}"] = truth[k][best >= 0].astype(np.float32)
    info = {"event": event_of_jet[sel], "truth_index": best[best >= 0]}
    return ak.zip(out, depth_limit=1), info


def is_leading(pt: np.ndarray, n_jets: np.ndarray) -> np.ndarray:
    """True for the highest-pT jet of each event; ``pt`` lists the jets event by event (counts ``n_jets``).

    The reference sample keeps only the leading jet of each event (arXiv:1902.09914, Sec. 2).
    """
    starts = np.concatenate([[0], np.cumsum(n_jets)[:-1]])
    has = n_jets > 0
    best = np.full(len(pt), False)
    if has.any():
        idx = ak.to_numpy(ak.argmax(ak.unflatten(pt, n_jets), axis=1, mask_identity=False))
        best[starts[has] + idx[has]] = True
    return best
