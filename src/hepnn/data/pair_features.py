"""Per-pair physics features of ParT (arXiv:2202.03772, eq. 3), dense or at listed pairs.

Per-particle quantities come from ``hepnn.data.features``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from hepnn.data.features import mass2, phi, pt, validate_names, zero_padded

PAIR_FEATURES = ("ln_kt", "ln_z", "ln_dr", "ln_m2", "minkowski", "ln_minkowski")

# The angular distance Δ of a pair, as it enters ln Δ and ln kT, is floored at 1e-4. Detector-level
# jets hold "twins": a photon and a neutral hadron in the same calorimeter cell share its direction,
# and after float32 storage their Δ is 1e-8..5e-7, the rounding noise of y and φ. Taken at face value
# (ParT clamps only at 1e-8), ln Δ of a twin is a random number between -18 and -14 that depends on
# the last bit of φ, which ONNX Runtime computes differently (its Atan is ~2e-7 off in float64).
# Any real pair is farther apart: calorimeter cells are >= 0.025 wide and tracks 1e-4 apart are
# collinear splittings the detector cannot resolve either.
DELTA_MIN = 1e-4


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

    Δ = max(sqrt(Δy² + Δφ²), DELTA_MIN) in rapidity y; kT = min(pT_a, pT_b) Δ;
    z = min(pT_a, pT_b) / (pT_a + pT_b); m² = (E_a + E_b)² − |p_a + p_b|². Logarithms take arguments
    clamped at ``eps``, as in ParT.

    m² and p_a·p_b are evaluated in the cancellation-free form
        p_a·p_b = (mT_a mT_b − pT_a pT_b) + 2 mT_a mT_b sinh²(Δy/2) + 2 pT_a pT_b sin²(Δφ/2),
        m² = m_a² + m_b² + 2 p_a·p_b,
    (exact algebra with E = mT cosh y, pz = mT sinh y), so that nearly collinear pairs keep their
    precision in float32 where the naive (E_a + E_b)² − |p_a + p_b|² loses it all.

    Diagonal: with ``self_pairs=True`` (ParT's default) a particle paired with itself uses the same
    formulas (Δ = DELTA_MIN, kT = pT DELTA_MIN, z = ½, m² = 4 m², p·p = m²); with ``self_pairs=False``
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
            elif name == "dphi":  # wrapped into [-π, π]; a small Δφ stays exact (no round trip through ±π)
                d = phii[a] - phii[c]
                cache[name] = d.sub_(torch.round(d / (2 * math.pi)).mul_(2 * math.pi))
            elif name == "delta":  # floored at DELTA_MIN: below it Δ is float32 noise (see there)
                cache[name] = torch.hypot(get("dy"), get("dphi")).clamp_min_(DELTA_MIN)
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
