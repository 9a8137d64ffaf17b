"""Jet-level features (kinematics, multiplicity, N-subjettiness), computed once per dataset.

Input is an awkward array in hepnn's native layout (jagged ``part_E/px/py/pz``); output is a
``(n_jets, F)`` float32 numpy array, one column per name, in order. The jet is the sum of its
constituents. All jets are processed at once: FastJet clusters every jet in C++ through its
multi-event awkward interface, and the τ_N sums are flat tensor operations over all particles.

==============  ===========================================================================
name            formula
==============  ===========================================================================
e, pt           jet energy, sqrt(px² + py²)
eta, phi        pseudorapidity asinh(pz / pT), azimuth atan2(py, px) in [-π, π]
mass            sign(m²) sqrt(|m²|), m² = E² − |p|² (vector's convention)
n_particles     number of constituents
tau1 … tau4     N-subjettiness (Thaler & Van Tilburg, arXiv:1011.2268), normalized measure,
                β = 1, R0 = 0.8:  τ_N = Σ_k pT_k min_a ΔR_{k,a} / (R0 Σ_k pT_k),
                ΔR in (rapidity, φ); axes a = exclusive-kT subjets (fjcontrib's KT_Axes).
                Jets with fewer than N constituents have τ_N = 0 (so do jets with exactly N).
tau21, tau32,   τ2/τ1, τ3/τ2, τ4/τ3, defined as 0 where the denominator is 0 (never NaN).
tau43
==============  ===========================================================================
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import awkward as ak
import numpy as np
import torch

from hepnn.data import features as kin
from hepnn.data.fields import PARTICLE_P4
from hepnn.errors import DataError
from hepnn.log import get_logger

log = get_logger(__name__)

JET_FEATURES = (
    "mass", "pt", "eta", "phi", "e", "n_particles",
    "tau1", "tau2", "tau3", "tau4", "tau21", "tau32", "tau43",
)  # fmt: skip
_RATIOS = {"tau21": (2, 1), "tau32": (3, 2), "tau43": (4, 3)}
# Exclusive-kT axes use fastjet's largest allowed R (as fjcontrib's KT_Axes does), so no
# constituent is merged with the beam before N subjets remain.
_KT_AXES_R = 1000.0


def jet_features(
    arrays: ak.Array, names: Sequence[str], *, beta: float = 1.0, r0: float = 0.8
) -> np.ndarray:
    """Jet-level features from the native jagged constituent columns (see the module table).

    Args:
        arrays: one record per jet with jagged ``part_E``, ``part_px``, ``part_py``, ``part_pz``.
        names: feature names, in output column order.
        beta, r0: N-subjettiness angular exponent and characteristic radius.

    Shapes: n_jets records -> (n_jets, len(names)) float32.
    Raises ConfigError for an unknown name, DataError for a missing column, and asks for the
    ``gen`` extra when τ_N is requested without fastjet installed.
    """
    kin.validate_names(names, JET_FEATURES, "jet feature")
    missing = [c for c in PARTICLE_P4 if c not in arrays.fields]
    if missing:
        raise DataError(f"jet_features needs the columns {', '.join(missing)}; found {arrays.fields}")
    parts = {c: ak.values_astype(arrays[c], np.float64) for c in PARTICLE_P4}
    jet = torch.stack([torch.from_numpy(ak.to_numpy(ak.sum(parts[c], axis=1))) for c in PARTICLE_P4], -1)
    n_tau = max([_highest_tau(n) for n in names if n.startswith("tau")], default=0)
    taus = _nsubjettiness(parts, n_tau, beta, r0) if n_tau else None  # (n_jets, n_tau)
    cols = []
    for name in names:
        if name in _RATIOS:
            num, den = (taus[:, i - 1] for i in _RATIOS[name])
            cols.append(torch.where(den > 0, num / torch.where(den > 0, den, 1.0), 0.0))
        elif name.startswith("tau"):
            cols.append(taus[:, int(name[3:]) - 1])
        elif name == "n_particles":
            cols.append(torch.from_numpy(ak.to_numpy(ak.num(parts["part_E"], axis=1))).double())
        else:
            fn = {"mass": kin.mass, "pt": kin.pt, "eta": kin.eta, "phi": kin.phi}.get(name)
            cols.append(fn(jet) if fn else jet[:, 0])  # "e" is the remaining name
    out = torch.stack(cols, dim=-1) if cols else torch.zeros(len(arrays), 0, dtype=torch.float64)
    return out.numpy().astype(np.float32)


def _highest_tau(name: str) -> int:
    """Largest N whose τ_N a feature needs: tau3 -> 3, tau32 -> 3."""
    return _RATIOS[name][0] if name in _RATIOS else int(name[3:])


def nsubjettiness(
    arrays: ak.Array, n_max: int = 4, *, beta: float = 1.0, r0: float = 0.8
) -> np.ndarray:
    """τ_1 … τ_{n_max} of every jet (exclusive-kT axes, normalized measure, module table).

    Shapes: n_jets records -> (n_jets, n_max) float64.
    """
    parts = {c: ak.values_astype(arrays[c], np.float64) for c in PARTICLE_P4}
    return _nsubjettiness(parts, n_max, beta, r0).numpy()


def _nsubjettiness(parts: dict[str, ak.Array], n_max: int, beta: float, r0: float) -> torch.Tensor:
    """Cluster all jets once, then τ_N for N = 1..n_max as flat sums. -> (n_jets, n_max) float64."""
    from hepnn.fastjet_utils import import_fastjet

    fastjet = import_fastjet()
    e, px, py, pz = (parts[c] for c in PARTICLE_P4)
    vecs = ak.zip({"px": px, "py": py, "pz": pz, "E": e}, with_name="Momentum4D")
    counts = torch.from_numpy(ak.to_numpy(ak.num(e, axis=1)))  # (n_jets,)
    n_jets = len(counts)
    flat = torch.stack([torch.from_numpy(ak.to_numpy(ak.flatten(x))) for x in (e, px, py, pz)], -1)
    jet_of = torch.repeat_interleave(torch.arange(n_jets), counts)  # (n_parts,) owning jet
    y, ph, ptk = kin.rapidity(flat), kin.phi(flat), kin.pt(flat)  # (n_parts,)
    norm = torch.zeros(n_jets, dtype=torch.float64).index_add_(0, jet_of, ptk) * r0**beta
    with warnings.catch_warnings():
        # fastjet's awkward interface warns about exclusive jets even for kt; the use here is standard.
        warnings.filterwarnings("ignore", message="dcut and exclusive jets")
        cs = fastjet.ClusterSequence(vecs, fastjet.JetDefinition(fastjet.kt_algorithm, _KT_AXES_R))
        axes_by_n = [cs.exclusive_jets_up_to(n) for n in range(1, n_max + 1)]
    taus = torch.zeros(n_jets, n_max, dtype=torch.float64)
    for n, axes in enumerate(axes_by_n, start=1):
        ax = _padded_axes(axes, n)  # (n_jets, n, 4); missing axes are NaN
        ay, aphi = kin.rapidity(ax), kin.phi(ax)  # (n_jets, n)
        dr = kin.delta_r(y[:, None], ph[:, None], ay[jet_of], aphi[jet_of])  # (n_parts, n)
        dmin = torch.nan_to_num(dr, nan=torch.inf).amin(dim=1) ** beta  # (n_parts,)
        num = torch.zeros(n_jets, dtype=torch.float64).index_add_(0, jet_of, ptk * dmin)
        tau = torch.where(norm > 0, num / torch.where(norm > 0, norm, 1.0), 0.0)
        taus[:, n - 1] = torch.where(counts > n, tau, 0.0)  # ≤ N constituents: τ_N = 0 exactly
    return taus


def _padded_axes(axes: ak.Array, n: int) -> torch.Tensor:
    """Jagged exclusive jets (≤ n per jet) as dense (n_jets, n, 4) (E, px, py, pz), NaN-padded."""
    padded = ak.pad_none(axes, n, clip=True)  # (n_jets, n) records, None where missing
    comps = [ak.to_numpy(ak.fill_none(padded[c], np.nan)) for c in ("E", "px", "py", "pz")]
    return torch.from_numpy(np.stack(comps, axis=-1).astype(np.float64))
