"""Lorentz-group operations on four-vectors (E, px, py, pz), metric (+, −, −, −).

Pure functions shared by the Lorentz-symmetric models (LoLa arXiv:1707.08966, LorentzNet
arXiv:2201.08187, PELICAN arXiv:2211.00454): Minkowski products and Gram matrices, the signed log
ψ(a) = sgn(a) ln(|a| + 1) of LorentzNet, beam spurions, and boost / rotation matrices (used to test
invariance). Every function keeps the input dtype and device.
"""

from __future__ import annotations

import torch
from torch import Tensor

_METRIC = (1.0, -1.0, -1.0, -1.0)


def metric(like: Tensor) -> Tensor:
    """The Minkowski metric diagonal (1, −1, −1, −1) in the dtype and device of ``like``. Shape (4,)."""
    return torch.tensor(_METRIC, dtype=like.dtype, device=like.device)


def minkowski_dot(a: Tensor, b: Tensor) -> Tensor:
    """a·b = a⁰b⁰ − a⃗·b⃗. Shapes: (..., 4), (..., 4) -> (...) (broadcasting)."""
    return (a * b * metric(a)).sum(-1)


def minkowski_norm2(a: Tensor) -> Tensor:
    """a·a (the invariant mass squared of a four-momentum). Shapes: (..., 4) -> (...)."""
    return minkowski_dot(a, a)


def minkowski_gram(p4: Tensor) -> Tensor:
    """All pairwise products d_ij = p_i·p_j. Shapes: (B, N, 4) -> (B, N, N)."""
    return (p4 * metric(p4)) @ p4.transpose(1, 2)  # (B, N, 4) @ (B, 4, N)


def pairwise_norm2(p4: Tensor) -> Tensor:
    """Squared Minkowski distances ‖p_i − p_j‖² = p_i² + p_j² − 2 p_i·p_j. Shapes: (B, N, 4) -> (B, N, N)."""
    gram = minkowski_gram(p4)  # (B, N, N)
    sq = torch.diagonal(gram, dim1=1, dim2=2)  # (B, N)
    return sq.unsqueeze(2) + sq.unsqueeze(1) - 2 * gram


def psi(a: Tensor) -> Tensor:
    """LorentzNet's signed logarithm ψ(a) = sgn(a) ln(|a| + 1): odd, monotone, ψ(0) = 0."""
    return torch.sign(a) * torch.log1p(a.abs())


def add_beams(p4: Tensor, mask: Tensor, energy: float = 1.0) -> tuple[Tensor, Tensor, Tensor]:
    """Prepend the two beam spurions (E, 0, 0, ±E) as extra always-real particles.

    LorentzNet and PELICAN add the beams so that the network can use the beam axis; they reduce the
    symmetry from the Lorentz group to rotations about z (a boost along z rescales the beams).

    Shapes: p4 (B, N, 4), mask (B, N) -> p4 (B, N + 2, 4), mask (B, N + 2), is_beam (B, N + 2) bool.
    """
    b = p4.shape[0]
    beams = p4.new_tensor([[energy, 0.0, 0.0, energy], [energy, 0.0, 0.0, -energy]]).expand(b, 2, 4)
    real = torch.ones(b, 2, dtype=torch.bool, device=mask.device)
    is_beam = torch.cat([real, torch.zeros_like(mask, dtype=torch.bool)], dim=1)  # (B, N + 2)
    return torch.cat([beams, p4], dim=1), torch.cat([real, mask.bool()], dim=1), is_beam


def boost_matrix(beta: Tensor) -> Tensor:
    """Λ of a pure boost with velocity β⃗ (|β| < 1), acting as p' = Λ p on (E, px, py, pz).

    Λ⁰⁰ = γ, Λ⁰ᵢ = Λⁱ⁰ = γ βᵢ, Λⁱⱼ = δᵢⱼ + (γ − 1) βᵢ βⱼ / β² (a vector at rest gets momentum +γ m β⃗,
    the convention of scikit-hep/vector's ``boost_beta3``). Shapes: beta (3,) -> (4, 4).
    """
    b2 = (beta * beta).sum()
    gamma = 1.0 / torch.sqrt(1.0 - b2)
    lam = torch.empty(4, 4, dtype=beta.dtype, device=beta.device)
    lam[0, 0] = gamma
    lam[0, 1:] = gamma * beta
    lam[1:, 0] = gamma * beta
    outer = torch.outer(beta, beta) / b2.clamp_min(torch.finfo(beta.dtype).tiny)
    lam[1:, 1:] = torch.eye(3, dtype=beta.dtype, device=beta.device) + (gamma - 1.0) * outer
    return lam


def rotation_matrix(axis: Tensor, angle: float) -> Tensor:
    """Λ of a rotation by ``angle`` about ``axis`` (Rodrigues' formula), time component untouched.

    Shapes: axis (3,) -> (4, 4).
    """
    u = axis / torch.linalg.vector_norm(axis)
    k = torch.zeros(3, 3, dtype=axis.dtype, device=axis.device)  # cross-product matrix [u]×
    k[0, 1], k[0, 2], k[1, 2] = -u[2], u[1], -u[0]
    k = k - k.T
    angle_t = torch.as_tensor(angle, dtype=axis.dtype)
    r = torch.eye(3, dtype=axis.dtype) + torch.sin(angle_t) * k + (1 - torch.cos(angle_t)) * (k @ k)
    lam = torch.eye(4, dtype=axis.dtype, device=axis.device)
    lam[1:, 1:] = r
    return lam


def transform(p4: Tensor, lam: Tensor) -> Tensor:
    """Apply a Lorentz transformation p' = Λ p to every four-vector. Shapes: (..., 4), (4, 4) -> (..., 4)."""
    return p4 @ lam.T
