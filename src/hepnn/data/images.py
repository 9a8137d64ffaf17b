"""Jet images for CNNs: constituent pT histogrammed in the (η, φ) plane, built per batch.

Standard pre-processing of jet images (Cogan et al., arXiv:1407.5675; de Oliveira et al.,
arXiv:1511.05190; Macaluso & Shih, arXiv:1803.00107):

1. coordinates relative to the jet axis: (Δη, Δφ) with Δφ wrapped into (-π, π];
2. ``center``: shift to the pT-weighted centroid, so the centroid is the image origin;
3. ``rotate``: rotate about the origin so that the principal axis of the pT-weighted second-moment
   tensor of (Δη, Δφ) points along the vertical image axis;
4. ``flip``: reflect each axis so that the half with more pT lies at positive coordinates: after
   flipping the top-right quadrant (large column and large row index) is the heavy one;
5. pixelize: ``size`` × ``size`` pixels over [-extent, extent)² with pixel intensity = Σ pT,
   optionally normalized to sum 1.

Pixel convention: ``image[b, 0, row, col]``, the column follows the horizontal coordinate (Δη after
any rotation) and the row the vertical one (Δφ), both increasing with the coordinate. Pixel
``size // 2`` contains the origin. The default half-width ``extent = 1.0`` contains an R = 0.8 jet
even after the centroid shift; particles outside are dropped (and do not count in the normalization).
"""

from __future__ import annotations

import torch
from torch import Tensor

from hepnn.data.features import delta_phi, eta, jet_p4, phi, pt, zero_padded


def image_coordinates(
    p4: Tensor, mask: Tensor, *, center: bool = True, rotate: bool = True, flip: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """Pre-processed image-plane coordinates and weights of every particle (steps 1–4 above).

    Shapes: p4 (B, N, 4), mask (B, N) -> x (B, N), y (B, N), w (B, N); padded entries are 0.
    """
    maskf = mask.to(p4.dtype)
    p4 = zero_padded(p4, mask)
    jet = jet_p4(p4, mask).unsqueeze(1)  # (B, 1, 4)
    w = pt(p4) * maskf  # (B, N) intensity
    x = (eta(p4) - eta(jet)) * maskf  # (B, N) Δη
    y = delta_phi(phi(p4), phi(jet)) * maskf  # (B, N) Δφ
    wsum = w.sum(1, keepdim=True).clamp_min(torch.finfo(p4.dtype).tiny)  # (B, 1)
    if center:
        x = (x - (w * x).sum(1, keepdim=True) / wsum) * maskf
        y = (y - (w * y).sum(1, keepdim=True) / wsum) * maskf
    if rotate:
        cxx, cyy, cxy = ((w * u * v).sum(1, keepdim=True) for u, v in ((x, x), (y, y), (x, y)))
        theta = 0.5 * torch.atan2(2 * cxy, cxx - cyy)  # (B, 1) angle of the major axis to +x
        alpha = torch.pi / 2 - theta  # rotate the major axis onto +y
        cos, sin = torch.cos(alpha), torch.sin(alpha)
        x, y = x * cos - y * sin, x * sin + y * cos
    if flip:
        x = x * _heavier_side_sign(w, x)
        y = y * _heavier_side_sign(w, y)
    return x, y, w


def _heavier_side_sign(w: Tensor, u: Tensor) -> Tensor:
    """+1 where the pT at u > 0 is at least the pT at u < 0, else -1. Shapes: (B, N) -> (B, 1)."""
    balance = (w * torch.sign(u)).sum(1, keepdim=True)
    return torch.where(balance < 0, -1.0, 1.0).to(u.dtype)


def jet_images(
    p4: Tensor,
    mask: Tensor,
    size: int = 40,
    extent: float = 1.0,
    center: bool = True,
    rotate: bool = True,
    flip: bool = True,
    normalize: bool = True,
) -> Tensor:
    """Jet images: pT deposited in a ``size`` × ``size`` grid over [-extent, extent)² (module doc).

    One scatter-add over all particles of all jets, no per-jet loop.

    Args:
        p4: constituent four-vectors (E, px, py, pz); mask: True for real particles.
        size: pixels per side. extent: half-width of the image in Δη and Δφ.
        center, rotate, flip: pre-processing steps (module doc).
        normalize: divide each image by its total intensity (empty images stay 0).

    Shapes: p4 (B, N, 4), mask (B, N) -> (B, 1, size, size) in p4's dtype.
    """
    b, n = mask.shape
    x, y, w = image_coordinates(p4, mask, center=center, rotate=rotate, flip=flip)  # (B, N) each
    pix = 2 * extent / size
    col = torch.floor((x + extent) / pix).long()  # (B, N)
    row = torch.floor((y + extent) / pix).long()
    inside = mask.bool() & (col >= 0) & (col < size) & (row >= 0) & (row < size)
    jet_idx = torch.arange(b, device=p4.device).unsqueeze(1)  # (B, 1)
    flat = (jet_idx * size + row.clamp(0, size - 1)) * size + col.clamp(0, size - 1)  # (B, N)
    img = p4.new_zeros(b * size * size)
    img.index_add_(0, flat.reshape(-1), (w * inside.to(w.dtype)).reshape(-1))
    img = img.view(b, 1, size, size)  # (B, 1, H, W)
    if normalize:
        total = img.sum(dim=(1, 2, 3), keepdim=True)
        img = torch.where(total > 0, img / torch.where(total > 0, total, 1.0), 0.0)
    return img
