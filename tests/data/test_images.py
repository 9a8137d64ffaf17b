"""Jet images against numpy histograms, vector kinematics and hand-placed particles."""

from __future__ import annotations

import math

import numpy as np
import torch
import vector

from hepnn.data.images import image_coordinates, jet_images


def p4_from(pt, eta, phi, m=0.0) -> torch.Tensor:
    """(E, px, py, pz) float64 from lists of pT, η, φ. -> (n, 4)."""
    v = vector.array({"pt": pt, "eta": eta, "phi": phi, "mass": np.full(len(pt), m)})
    return torch.from_numpy(np.stack([v.E, v.px, v.py, v.pz], -1))


def test_single_particle_lands_in_centre_pixel():
    p4 = p4_from([50.0], [0.7], [3.0]).unsqueeze(0)  # (1, 1, 4)
    mask = torch.ones(1, 1, dtype=torch.bool)
    for size in (40, 41):
        img = jet_images(p4, mask, size=size)
        assert img.shape == (1, 1, size, size)
        assert img[0, 0, size // 2, size // 2] == 1.0 and img.sum() == 1.0


def test_matches_numpy_histogram_without_preprocessing():
    rng = np.random.default_rng(0)
    pt, eta, phi = rng.exponential(10, 30) + 1, 0.3 + rng.normal(0, 0.3, 30), math.pi + rng.normal(0, 0.3, 30)
    p4 = p4_from(pt, eta, phi)
    jet = vector.obj(**dict(zip(("E", "px", "py", "pz"), p4.sum(0).tolist())))
    v = vector.array({"pt": pt, "eta": eta, "phi": phi, "mass": np.zeros(30)})
    edges = np.linspace(-0.5, 0.5, 21)
    # row = Δφ, column = Δη; Δφ wraps across ±π
    want, _, _ = np.histogram2d(v.deltaphi(jet), v.eta - jet.eta, bins=[edges, edges], weights=pt)
    img = jet_images(p4.unsqueeze(0), torch.ones(1, 30, dtype=torch.bool), size=20, extent=0.5,
                     center=False, rotate=False, flip=False, normalize=False)  # fmt: skip
    np.testing.assert_allclose(img[0, 0].numpy(), want, rtol=1e-9, atol=1e-9)
    assert img.sum().item() < pt.sum()  # some particles fall outside ±0.5 and are dropped


def test_total_intensity_preserved_and_normalized():
    rng = np.random.default_rng(1)
    pt = rng.exponential(10, 25) + 1
    p4 = p4_from(pt, rng.normal(0, 0.2, 25), rng.normal(0, 0.2, 25)).unsqueeze(0)
    mask = torch.ones(1, 25, dtype=torch.bool)
    raw = jet_images(p4, mask, normalize=False)
    assert abs(raw.sum().item() - pt.sum()) < 1e-9
    assert abs(jet_images(p4, mask).sum().item() - 1.0) < 1e-12
    assert jet_images(p4.float(), mask).dtype == torch.float32


def test_rotation_makes_principal_axis_vertical_and_flip_puts_heavy_side_up():
    # two particles on the diagonal Δη = Δφ, the harder one at the lower left
    p4 = p4_from([100.0, 40.0], [-0.2, 0.2], [-0.2, 0.2]).unsqueeze(0)
    mask = torch.ones(1, 2, dtype=torch.bool)
    x, y, _ = image_coordinates(p4, mask)
    torch.testing.assert_close(x, torch.zeros(1, 2, dtype=torch.float64), atol=1e-6, rtol=0)
    assert y[0, 0] > 0 > y[0, 1]  # the harder particle is flipped to positive y
    # distance between the two is kept: sqrt(Δη² + Δφ²) by vector
    v = vector.array({c: p4[0, :, k].numpy() for k, c in enumerate(("E", "px", "py", "pz"))})
    assert abs((y[0, 0] - y[0, 1]).item() - v[0].deltaR(v[1])) < 1e-9
    img = jet_images(p4, mask, size=41, normalize=False)[0, 0]
    rows, cols = torch.nonzero(img, as_tuple=True)
    assert set(cols.tolist()) == {20}  # both particles on the vertical centre line
    assert img[rows.max(), 20] == 100.0  # heavy particle in the upper (larger row) half


def test_padding_does_not_change_the_image():
    rng = np.random.default_rng(2)
    p4 = p4_from(rng.exponential(10, 12) + 1, rng.normal(0, 0.3, 12), rng.normal(3.0, 0.3, 12)).unsqueeze(0)
    mask = torch.ones(1, 12, dtype=torch.bool)
    padded = torch.cat([p4, torch.zeros(1, 6, 4, dtype=p4.dtype)], 1)
    padded[0, 12:, 0] = float("nan")  # junk in padded rows is ignored too
    pmask = torch.cat([mask, torch.zeros(1, 6, dtype=torch.bool)], 1)
    both = torch.cat([padded, torch.zeros(1, 18, 4, dtype=p4.dtype)])  # plus an empty jet
    bmask = torch.cat([pmask, torch.zeros(1, 18, dtype=torch.bool)])
    out = jet_images(both, bmask)
    torch.testing.assert_close(out[0], jet_images(p4, mask)[0], rtol=0, atol=1e-15)
    assert (out[1] == 0).all() and torch.isfinite(out).all()
