"""Per-particle and per-pair physics features: pure, vectorized torch functions on padded tensors.

Inputs follow the Batch contract: four-vectors ``p4 (B, N, 4)`` as (E, px, py, pz) in GeV and
``mask (B, N)`` bool, True = real particle. The jet is the masked sum of its constituents. Every
function keeps the input dtype (float32 or float64) and device, and padded entries of the output are
exactly 0. Logarithms are taken of clamped values (``eps``), so zero-padded or zero-momentum
particles never give NaN or inf.

Per-particle features (``particle_features``; η is pseudorapidity, φ wrapped to (-π, π]):

===============  ========  =======================================================================
name             channels  formula
===============  ========  =======================================================================
deta             1         η − η_jet
dphi             1         wrap(φ − φ_jet)
dr               1         sqrt(Δη² + Δφ²) to the jet axis
log_pt           1         ln pT
log_e            1         ln E
log_pt_rel       1         ln(pT / pT_jet)
log_e_rel        1         ln(E / E_jet)
charge           1         electric charge (needs ``charge=``)
pid_onehot       5         is_charged_hadron, is_neutral_hadron, is_photon, is_electron, is_muon
                           (ParT/ParticleNet set, from |pid| and charge; needs ``pid=``)
px py pz e       1 each    raw four-momentum components
pt eta phi       1 each    pT = sqrt(px² + py²), η = asinh(pz / pT), φ = atan2(py, px)
===============  ========  =======================================================================

Pair features (``pair_features``; ParT, arXiv:2202.03772 eq. 3; y is rapidity):

============  =================================================================================
name          formula
============  =================================================================================
ln_dr         ln Δ,  Δ = sqrt(Δy² + Δφ²)
ln_kt         ln(min(pT_a, pT_b) Δ)
ln_z          ln(min(pT_a, pT_b) / (pT_a + pT_b))
ln_m2         ln m²,  m² = (E_a + E_b)² − |p_a + p_b|²
minkowski     p_a · p_b = E_a E_b − p_a · p_b   (metric (+, −, −, −))
ln_minkowski  ln(p_a · p_b)
============  =================================================================================
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from hepnn.errors import ConfigError

# ----------------------------------------------------------------------------- kinematics
# Small pure functions on (..., 4) four-vectors (E, px, py, pz), after scikit-hep/vector's _compute.


def pt(p4: Tensor) -> Tensor:
    """Transverse momentum sqrt(px² + py²). Shapes: (..., 4) -> (...)."""
    return torch.hypot(p4[..., 1], p4[..., 2])


def phi(p4: Tensor) -> Tensor:
    """Azimuth atan2(py, px) in [-π, π]. Shapes: (..., 4) -> (...)."""
    return torch.atan2(p4[..., 2], p4[..., 1])


def eta(p4: Tensor, eps: float = 1e-8, *, pt_: Tensor | None = None) -> Tensor:
    """Pseudorapidity asinh(pz / pT); pT is clamped at ``eps`` so a beam-line vector stays finite.

    ``pt_`` passes an already computed pT (the particle-feature hot path computes it once).
    """
    # asinh(x) = sign(x) ln(|x| + sqrt(x² + 1)) written out: torch.asinh is not vectorized on CPU (~6x slower)
    x = p4[..., 3] / (pt(p4) if pt_ is None else pt_).clamp_min(eps)
    return torch.sign(x) * torch.log(x.abs() + torch.sqrt(x * x + 1))


def rapidity(p4: Tensor, eps: float = 1e-8) -> Tensor:
    """Rapidity ½ ln((E + pz) / (E − pz)), in FastJet's round-off-safe form.

    y = sign(pz) ½ ln((E + |pz|)² / (pT² + max(m², 0))): no E − |pz| cancellation at large |y|, and
    a vector made tachyonic by rounding counts as massless (as in fastjet::PseudoJet). Both
    arguments are clamped at ``eps`` so a zero (padded) vector gives 0.
    """
    mt2 = (pt(p4) ** 2 + mass2(p4).clamp_min(0)).clamp_min(eps * eps)
    e_plus = (p4[..., 0] + p4[..., 3].abs()).clamp_min(eps)
    return torch.sign(p4[..., 3]) * (torch.log(e_plus) - 0.5 * torch.log(mt2))


def mass2(p4: Tensor) -> Tensor:
    """Invariant mass squared E² − |p|² (may be slightly negative from rounding)."""
    return p4[..., 0] ** 2 - (p4[..., 1:] ** 2).sum(-1)


def mass(p4: Tensor) -> Tensor:
    """Signed-safe invariant mass sign(m²) sqrt(|m²|) (vector's convention for space-like input)."""
    m2 = mass2(p4)
    return torch.copysign(m2.abs().sqrt(), m2)


def wrap_phi(dphi: Tensor) -> Tensor:
    """Wrap an angle difference into (-π, π]."""
    return math.pi - torch.remainder(math.pi - dphi, 2 * math.pi)


def delta_phi(phi_a: Tensor, phi_b: Tensor) -> Tensor:
    """φ_a − φ_b wrapped into (-π, π]."""
    return wrap_phi(phi_a - phi_b)


def delta_r(eta_a: Tensor, phi_a: Tensor, eta_b: Tensor, phi_b: Tensor) -> Tensor:
    """Angular distance sqrt(Δη² + Δφ²) with φ wrapping (pass rapidities for ΔR in y)."""
    return torch.hypot(eta_a - eta_b, delta_phi(phi_a, phi_b))


def zero_padded(p4: Tensor, mask: Tensor) -> Tensor:
    """p4 with padded rows set to 0 (``where``, so even NaN junk there is dropped). (B, N, 4)."""
    return torch.where(mask.bool().unsqueeze(-1), p4, torch.zeros((), dtype=p4.dtype, device=p4.device))


def jet_p4(p4: Tensor, mask: Tensor) -> Tensor:
    """Jet four-vector as the masked sum of constituents. Shapes: (B, N, 4), (B, N) -> (B, 4)."""
    return zero_padded(p4, mask).sum(dim=1)


# ----------------------------------------------------------------------------- per particle

PID_CHANNELS = ("is_charged_hadron", "is_neutral_hadron", "is_photon", "is_electron", "is_muon")
# Long-lived charged final-state particles (|PDG id|), used when no charge column is given:
# e, μ, π±, K±, p, Σ−, Σ+, Ξ−, Ω−.
_CHARGED_PIDS = (11, 13, 211, 321, 2212, 3112, 3222, 3312, 3334)
_WIDTHS = {"pid_onehot": len(PID_CHANNELS)}
PARTICLE_FEATURES = (
    "deta", "dphi", "dr", "log_pt", "log_e", "log_pt_rel", "log_e_rel", "charge", "pid_onehot",
    "px", "py", "pz", "e", "pt", "eta", "phi",
)  # fmt: skip


def validate_names(names: Sequence[str], known: Sequence[str], what: str) -> None:
    """Raise ConfigError naming the first unknown feature name and listing the known ones."""
    if isinstance(names, str):
        raise ConfigError(f"{what} names must be a list of names, got the string {names!r}")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"unknown {what} {unknown[0]!r}; known names: {', '.join(known)}")


def feature_dim(names: Sequence[str]) -> int:
    """Number of channels ``particle_features(..., names)`` returns (``pid_onehot`` counts 5)."""
    validate_names(names, PARTICLE_FEATURES, "particle feature")
    return sum(_WIDTHS.get(n, 1) for n in names)


def expand_feature_names(names: Sequence[str]) -> list[str]:
    """One name per output channel, e.g. ``pid_onehot`` -> its five ``is_*`` channels."""
    validate_names(names, PARTICLE_FEATURES, "particle feature")
    return [c for n in names for c in (PID_CHANNELS if n == "pid_onehot" else (n,))]


def pid_onehot(pid: Tensor, charge: Tensor | None = None) -> Tensor:
    """Particle-type one-hot (ParT/ParticleNet): charged/neutral hadron, photon, electron, muon.

    Hadron charge comes from ``charge`` when given, else from a table of long-lived charged
    particles. Neutrinos and unknown neutral ids count as neutral hadrons.

    Shapes: pid (B, N) int, charge (B, N) or None -> (B, N, 5) bool.
    """
    apid = pid.abs()
    if charge is not None:
        charged = charge != 0
    else:
        charged = torch.isin(apid, torch.tensor(_CHARGED_PIDS, device=pid.device, dtype=apid.dtype))
    is_e, is_mu, is_gamma = apid == 11, apid == 13, apid == 22
    lepton_or_photon = is_e | is_mu | is_gamma
    ch_had = charged & ~lepton_or_photon
    neu_had = ~charged & ~lepton_or_photon
    return torch.stack([ch_had, neu_had, is_gamma, is_e, is_mu], dim=-1)


def particle_features(
    p4: Tensor,
    mask: Tensor,
    names: Sequence[str],
    *,
    charge: Tensor | None = None,
    pid: Tensor | None = None,
    eps: float = 1e-8,
) -> Tensor:
    """Per-particle features for padded jets, one channel per name (see the module table).

    Args:
        p4: constituent four-vectors (E, px, py, pz); padded rows should be 0 (they are ignored).
        mask: True for real particles.
        names: feature names, in output channel order.
        charge, pid: optional per-particle charge and PDG id, needed by ``charge``/``pid_onehot``.
        eps: clamp for arguments of logarithms (ln of a padded pT never reaches the output).

    Shapes: p4 (B, N, 4), mask (B, N) -> (B, N, feature_dim(names)); padded rows are exactly 0.
    Raises ConfigError for an unknown name or a missing charge/pid input.
    """
    validate_names(names, PARTICLE_FEATURES, "particle feature")
    mask = mask.bool()
    p4 = zero_padded(p4, mask)  # (B, N, 4)
    jet = jet_p4(p4, mask).unsqueeze(1)  # (B, 1, 4)
    cache: dict[str, Tensor] = {}

    def get(name: str) -> Tensor:  # lazily computed (B, N) quantities, shared between names
        if name not in cache:
            cache[name] = _particle_quantity(name, p4, jet, get, eps)
        return cache[name]

    chans: list[Tensor] = []
    for name in names:
        if name == "charge":
            if charge is None:
                raise ConfigError("particle feature 'charge' needs the part_charge column (charge=...)")
            chans.append(charge.to(p4.dtype).unsqueeze(-1))
        elif name == "pid_onehot":
            if pid is None:
                raise ConfigError("particle feature 'pid_onehot' needs the part_pid column (pid=...)")
            chans.append(pid_onehot(pid, charge).to(p4.dtype))
        else:
            chans.append(get(name).unsqueeze(-1))
    out = torch.cat(chans, dim=-1) if chans else p4.new_zeros(*p4.shape[:2], 0)  # (B, N, C)
    # Every channel is finite on the zeroed padded rows (logs are clamped), so a product zeroes them
    # exactly; it is cheaper than a where on the hot path.
    return out.mul_(mask.unsqueeze(-1).to(out.dtype))


def _particle_quantity(name: str, p4: Tensor, jet: Tensor, get, eps: float) -> Tensor:
    """One (B, N) kinematic quantity by name; ``get`` fetches other (cached) quantities."""
    if name in ("e", "px", "py", "pz"):
        return p4[..., ("e", "px", "py", "pz").index(name)]
    formulas = {
        "pt": lambda: pt(p4),
        "eta": lambda: eta(p4, eps, pt_=get("pt")),
        "phi": lambda: phi(p4),
        "deta": lambda: get("eta") - eta(jet, eps),  # (B, N) - (B, 1)
        "dphi": lambda: delta_phi(get("phi"), phi(jet)),
        "dr": lambda: torch.hypot(get("deta"), get("dphi")),
        "log_pt": lambda: torch.log(get("pt").clamp_min(eps)),
        "log_e": lambda: torch.log(get("e").clamp_min(eps)),
        "log_pt_rel": lambda: get("log_pt") - torch.log(pt(jet).clamp_min(eps)),
        "log_e_rel": lambda: get("log_e") - torch.log(jet[..., 0].clamp_min(eps)),
    }
    return formulas[name]()


# ----------------------------------------------------------------------------- per pair

PAIR_FEATURES = ("ln_kt", "ln_z", "ln_dr", "ln_m2", "minkowski", "ln_minkowski")


@torch.no_grad()  # pair features are model inputs, as in ParT: no gradient flows back to p4
def pair_features(
    p4: Tensor,
    mask: Tensor,
    names: Sequence[str] = ("ln_kt", "ln_z", "ln_dr", "ln_m2"),
    eps: float = 1e-8,
    *,
    self_pairs: bool = True,
) -> Tensor:
    """Pairwise interaction features of ParT (arXiv:2202.03772, eq. 3), built per batch.

    Δ = sqrt(Δy² + Δφ²) in rapidity y; kT = min(pT_a, pT_b) Δ; z = min(pT_a, pT_b) / (pT_a + pT_b);
    m² = (E_a + E_b)² − |p_a + p_b|². Logarithms take arguments clamped at ``eps``, as in ParT.

    m² and p_a·p_b are evaluated in the cancellation-free form
        p_a·p_b = (mT_a mT_b − pT_a pT_b) + 2 mT_a mT_b sinh²(Δy/2) + 2 pT_a pT_b sin²(Δφ/2),
        m² = m_a² + m_b² + 2 p_a·p_b,
    (exact algebra with E = mT cosh y, pz = mT sinh y), so that nearly collinear pairs keep their
    precision in float32 where the naive (E_a + E_b)² − |p_a + p_b|² loses it all.

    Diagonal: with ``self_pairs=True`` (ParT's default) a particle paired with itself uses the same
    formulas (Δ = 0 so ln Δ = ln kT = ln eps, z = ½, m² = 4 m², p·p = m²); with ``self_pairs=False``
    the diagonal is 0 like a padded pair. Entries where either particle is padded are exactly 0.

    Memory: output O(B N² P) in the input dtype, allocated once as a channels-first (B, P, N, N)
    buffer and returned as a (B, N, N, P) view (``.permute(0, 3, 1, 2)`` gives ParT's layout back
    without a copy). Intermediates are at most five (B, N, N) tensors in the input dtype; only the
    O(B N) per-particle pT, m², mT, y, φ are computed in float64.

    Shapes: p4 (B, N, 4), mask (B, N) -> (B, N, N, len(names)).
    """
    validate_names(names, PAIR_FEATURES, "pair feature")
    mask = mask.bool()
    b, n = mask.shape
    inputs = _pair_inputs(p4, mask, eps)  # (B, N) each, in p4's dtype
    a, c = (slice(None), slice(None), None), (slice(None), None, slice(None))  # (B,N,1), (B,1,N)
    # Channels-first buffer: each feature is written into a contiguous (B, N, N) slab.
    out = p4.new_empty(b, len(names), n, n)  # (B, P, N, N)
    _pair_channels(names, inputs, a, c, [out[:, k] for k in range(len(names))], eps)
    pair_mask = mask[a] & mask[c]  # (B, N, N)
    if not self_pairs:
        pair_mask &= ~torch.eye(n, dtype=torch.bool, device=mask.device)
    out.mul_(pair_mask.unsqueeze(1).to(out.dtype))  # padded pairs -> exactly 0 (ln eps before)
    return out.permute(0, 2, 3, 1)  # (B, N, N, P) view; .permute(0, 3, 1, 2) is free again


@torch.no_grad()
def pair_features_at(p4: Tensor, first: Tensor, second: Tensor,
                     names: Sequence[str] = ("ln_kt", "ln_z", "ln_dr", "ln_m2"), eps: float = 1e-8) -> Tensor:
    """``pair_features`` of listed pairs of real particles only: the same formulas, no (B, N, N) tensor.

    For models that run on packed real pairs (ParT's pair embedding): ``p4`` holds real particles
    only, one row each, and pair r joins particles ``first[r]`` and ``second[r]``
    (``first == second`` is the self pair of ``self_pairs=True``).

    Shapes: p4 (M, 4), first (R,), second (R,) -> (R, len(names)).
    """
    validate_names(names, PAIR_FEATURES, "pair feature")
    inputs = _pair_inputs(p4, torch.ones(p4.shape[:-1], dtype=torch.bool, device=p4.device), eps)  # (M,) each
    out = p4.new_empty(len(names), len(first))  # (P, R) channels-first, one contiguous row per feature
    _pair_channels(names, inputs, first, second, list(out), eps)
    return out.T  # (R, P)


def _pair_channels(names: Sequence[str], inputs: tuple[Tensor, ...], a: Any, c: Any, dst: list[Tensor],
                   eps: float) -> None:
    """Write pair feature ``names[k]`` into ``dst[k]`` for the pairs (a, c) of per-particle ``inputs``.

    ``a``/``c`` index the per-particle (pT, m², mT, y, φ): broadcasting slices for the dense
    (B, N, N) layout, or index tensors (R,) for listed pairs. Intermediates are computed once.
    """
    pti, m2i, mti, yi, phii = inputs
    cache: dict[str, Tensor] = {}

    def get(name: str) -> Tensor:  # pair quantities, computed once, freed on return
        if name not in cache:
            if name == "dy":
                cache[name] = yi[a] - yi[c]
            elif name == "dphi":  # wrap into (-π, π] in place: one buffer
                d = phii[c] - phii[a]  # −Δφ
                cache[name] = d.add_(math.pi).remainder_(2 * math.pi).neg_().add_(math.pi)
            elif name == "delta":
                cache[name] = torch.hypot(get("dy"), get("dphi"))
            elif name == "ptmin":
                cache[name] = torch.minimum(pti[a], pti[c])
            elif name == "dot":
                cache[name] = _stable_dot(pti, m2i, mti, get("dy"), get("dphi"), a, c)
        return cache[name]

    for name, out in zip(names, dst):
        if name == "ln_dr":
            torch.log(get("delta").clamp_min(eps), out=out)
        elif name == "ln_kt":
            torch.log(torch.mul(get("ptmin"), get("delta"), out=out).clamp_min_(eps), out=out)
        elif name == "ln_z":
            torch.div(get("ptmin"), (pti[a] + pti[c]).clamp_min_(eps), out=out)
            torch.log(out.clamp_min_(eps), out=out)
        elif name == "ln_m2":
            torch.add(m2i[a] + m2i[c], get("dot"), alpha=2, out=out)
            torch.log(out.clamp_min_(eps), out=out)
        elif name == "minkowski":
            out.copy_(get("dot"))
        else:  # ln_minkowski
            torch.log(get("dot").clamp_min(eps), out=out)


def _pair_inputs(p4: Tensor, mask: Tensor, eps: float) -> tuple[Tensor, ...]:
    """pT, m², mT, rapidity and φ per particle. Shapes: (B, N, 4) -> 5 × (B, N) in p4's dtype.

    Computed in float64 (O(B N), cheap) and cast back: E² − |p|² of a nearly massless float32
    vector cancels to noise of order ε E², which would swamp the m² of a collinear pair.
    """
    hi = p4 if p4.device.type == "mps" else p4.double()  # MPS has no float64
    hi = zero_padded(hi, mask)
    pti = pt(hi)
    m2i = mass2(hi)  # kept signed: rounding makes "massless" m² = ±ε E², and the algebra stays exact
    mti = (pti**2 + m2i).clamp_min(0).sqrt()  # transverse mass sqrt(E² − pz²)
    yi = torch.asinh(hi[..., 3] / mti.clamp_min(eps))  # rapidity = asinh(pz / mT)
    return tuple(t.to(p4.dtype) for t in (pti, m2i, mti, yi, phi(hi)))


def _stable_dot(pti: Tensor, m2i: Tensor, mti: Tensor, dy: Tensor, dphi: Tensor, a, c) -> Tensor:
    """Minkowski product p_a·p_b without the collinear cancellation. Shapes: -> (B, N, N) or (R,).

    p_a·p_b = (mT_a mT_b − pT_a pT_b) + 2 mT_a mT_b sinh²(Δy/2) + 2 pT_a pT_b sin²(Δφ/2), with
    mT_a mT_b − pT_a pT_b = (m_a² pT_b² + m_b² pT_a² + m_a² m_b²) / (mT_a mT_b + pT_a pT_b).
    """
    mt_mt = mti[a] * mti[c]
    pt_pt = pti[a] * pti[c]
    pt2 = pti * pti
    m2a, m2c = m2i[a], m2i[c]
    dot = (m2a * m2c).addcmul_(m2a, pt2[c]).addcmul_(m2c, pt2[a])
    dot.div_((mt_mt + pt_pt).clamp_min_(torch.finfo(pti.dtype).tiny))
    dot.addcmul_(mt_mt, dy.mul(0.5).sinh_().square_(), value=2)
    return dot.addcmul_(pt_pt, dphi.mul(0.5).sin_().square_(), value=2)


def __getattr__(name: str):
    """Jet-level features live in ``jet_features.py``; importing them from here works too (lazily,
    which keeps the two modules free of an import cycle)."""
    if name in ("jet_features", "nsubjettiness", "JET_FEATURES"):
        from hepnn.data import jet_features as jet_level

        return getattr(jet_level, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
