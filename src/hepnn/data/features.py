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

Pair features (``pair_features``, in ``hepnn.data.pair_features``; ParT, arXiv:2202.03772 eq. 3;
y is rapidity):

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
    p4 = _columns(zero_padded(p4, mask))  # (B, N, 4)
    jet = jet_p4(p4, mask).unsqueeze(1)  # (B, 1, 4)
    out = _particle_channels(p4, lambda name: _jet_quantity(name, jet, eps), names, charge, pid, eps)  # (B, N, C)
    # Every channel is finite on the zeroed padded rows (logs are clamped), so a product zeroes them
    # exactly; it is cheaper than a where on the hot path.
    return out.mul_(mask.unsqueeze(-1).to(out.dtype))


def particle_features_flat(
    p4: Tensor,
    counts: Tensor,
    names: Sequence[str],
    *,
    charge: Tensor | None = None,
    pid: Tensor | None = None,
    eps: float = 1e-8,
) -> Tensor:
    """``particle_features`` of jets stored flat (all constituents one after the other, ``counts[j]``
    of jet j): no padding is built, the jet axes are segment sums, and each jet-level quantity is
    computed once per jet and gathered to its particles.

    Shapes: p4 (P, 4), counts (n,) -> (P, feature_dim(names)); charge, pid (P,).
    """
    validate_names(names, PARTICLE_FEATURES, "particle feature")
    jet_of = torch.repeat_interleave(torch.arange(len(counts), device=p4.device), counts)  # (P,)
    jet = torch.segment_reduce(p4, "sum", lengths=counts)  # (n, 4) jet four-vectors
    p4 = _columns(p4)
    jet_values: dict[str, Tensor] = {}

    def jet_quantity(name: str) -> Tensor:  # (P,) per particle, from one value per jet
        if name not in jet_values:
            jet_values[name] = _jet_quantity(name, jet, eps).index_select(0, jet_of)
        return jet_values[name]

    return _particle_channels(p4, jet_quantity, names, charge, pid, eps)


def _columns(p4: Tensor) -> Tensor:
    """``p4`` with each of E, px, py, pz contiguous in memory (same shape and values): the
    elementwise kernels run ~4x faster on contiguous than on every-fourth-element inputs."""
    return p4.movedim(-1, 0).contiguous().movedim(0, -1)  # (..., 4) view of a (4, ...) buffer


def _particle_channels(p4: Tensor, jet_quantity, names: Sequence[str], charge: Tensor | None,
                       pid: Tensor | None, eps: float) -> Tensor:
    """The channels ``names`` of particles ``p4 (..., 4)`` stacked on a last axis -> (..., C)."""
    cache: dict[str, Tensor] = {}

    def get(name: str) -> Tensor:  # lazily computed per-particle quantities, shared between names
        if name not in cache:
            cache[name] = _particle_quantity(name, p4, jet_quantity, get, eps)
        return cache[name]

    out = p4.new_empty(*p4.shape[:-1], feature_dim(names))  # (..., C)
    k = 0
    for name in names:  # each channel written into its column: no (..., 1) pieces to concatenate
        if name == "charge":
            if charge is None:
                raise ConfigError("particle feature 'charge' needs the part_charge column (charge=...)")
            out[..., k].copy_(charge)
        elif name == "pid_onehot":
            if pid is None:
                raise ConfigError("particle feature 'pid_onehot' needs the part_pid column (pid=...)")
            out[..., k:k + len(PID_CHANNELS)].copy_(pid_onehot(pid, charge))
        else:
            out[..., k].copy_(get(name))
        k += _WIDTHS.get(name, 1)
    return out


def _jet_quantity(name: str, jet: Tensor, eps: float) -> Tensor:
    """η, φ, ln pT or ln E of jet four-vectors. Shapes: (..., 4) -> (...)."""
    if name == "eta":
        return eta(jet, eps)
    if name == "phi":
        return phi(jet)
    if name == "log_pt":
        return torch.log(pt(jet).clamp_min(eps))
    return torch.log(jet[..., 0].clamp_min(eps))  # log_e


def _particle_quantity(name: str, p4: Tensor, jet_quantity, get, eps: float) -> Tensor:
    """One per-particle kinematic quantity by name; ``get`` fetches other (cached) quantities and
    ``jet_quantity`` the jet's η, φ, ln pT, ln E broadcastable to the particles."""
    if name in ("e", "px", "py", "pz"):
        return p4[..., ("e", "px", "py", "pz").index(name)]
    formulas = {
        "pt": lambda: pt(p4),
        "eta": lambda: eta(p4, eps, pt_=get("pt")),
        "phi": lambda: phi(p4),
        "deta": lambda: get("eta") - jet_quantity("eta"),
        "dphi": lambda: delta_phi(get("phi"), jet_quantity("phi")),
        "dr": lambda: torch.hypot(get("deta"), get("dphi")),
        "log_pt": lambda: torch.log(get("pt").clamp_min(eps)),
        "log_e": lambda: torch.log(get("e").clamp_min(eps)),
        "log_pt_rel": lambda: get("log_pt") - jet_quantity("log_pt"),
        "log_e_rel": lambda: get("log_e") - jet_quantity("log_e"),
    }
    return formulas[name]()
