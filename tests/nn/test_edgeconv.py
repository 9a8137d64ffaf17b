"""EdgeConv: a brute-force reference, equivariance, and padding never leaking (the graph helpers and
MaskedBatchNorm it uses: tests/nn/test_graph.py, tests/nn/test_norm.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hepnn.nn.edgeconv import EdgeConv
from hepnn.nn.norm import MaskedBatchNorm

C, K, WIDTHS = 5, 4, (8, 6)


def make_inputs(b=3, n=9, counts=(9, 6, 2), seed=0):
    """Points, features and mask with ``counts`` real particles per jet (rest padded with 0)."""
    g = torch.Generator().manual_seed(seed)
    points = torch.randn(b, n, 2, generator=g, dtype=torch.float64)
    x = torch.randn(b, n, C, generator=g, dtype=torch.float64)
    mask = torch.arange(n).unsqueeze(0) < torch.tensor(counts).unsqueeze(1)  # (B, N)
    return points * mask.unsqueeze(-1), x * mask.unsqueeze(-1), mask


def make_conv(seed=0, train=False):
    torch.manual_seed(seed)
    conv = EdgeConv(in_features=C, out_features=WIDTHS, k=K).double()
    with torch.no_grad():  # non-trivial running statistics and affine parameters
        for m in conv.modules():
            if isinstance(m, MaskedBatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    return conv.train(train)


def reference_edgeconv(conv: EdgeConv, points, x, mask):
    """Per-particle loop in eval mode: explicit neighbour search with numpy, torch's own batch_norm."""

    def bn(h, norm):
        return F.batch_norm(h, norm.running_mean, norm.running_var, norm.weight, norm.bias, False, 0.0, norm.eps)

    out = torch.zeros(*x.shape[:2], WIDTHS[-1], dtype=x.dtype)
    for b in range(x.shape[0]):
        real = np.flatnonzero(mask[b].numpy())
        for i in real:
            d = ((points[b, real] - points[b, i]) ** 2).sum(-1).numpy()
            others = [j for j in real[np.argsort(d, kind="stable")] if j != i][:K]
            nbrs = others + [i] * (K - len(others))  # missing neighbours: self edges (x_i, 0)
            e = torch.stack([torch.cat([x[b, i], x[b, j] - x[b, i]]) for j in nbrs])  # (K, 2C)
            for lin, norm in zip(conv.linears, conv.norms):
                e = torch.relu(bn(lin(e), norm))
            short = bn(conv.shortcut(x[b, i : i + 1]), conv.shortcut_norm)[0]
            out[b, i] = torch.relu(e.mean(0) + short)
    return out


def test_matches_brute_force_reference():
    points, x, mask = make_inputs()
    conv = make_conv()
    with torch.no_grad():
        out = conv(points, x, mask)
    assert out.shape == (3, 9, WIDTHS[-1])
    torch.testing.assert_close(out, reference_edgeconv(conv, points, x, mask), rtol=1e-10, atol=1e-10)
    assert (out[~mask] == 0).all()


@pytest.mark.parametrize("train", [False, True])
def test_permuted_points_give_permuted_outputs(train):
    points, x, mask = make_inputs()
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(1))
    conv = make_conv(train=train)
    out = conv(points, x, mask)
    out_perm = conv(points[:, perm], x[:, perm], mask[:, perm])
    torch.testing.assert_close(out_perm, out[:, perm], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("train", [False, True])
def test_padded_points_never_matter(train):
    """Garbage in padded slots, placed on top of real points (the nearest possible), changes nothing."""
    points, x, mask = make_inputs()
    conv = make_conv(train=train)
    ref = conv(points, x, mask)
    g = torch.Generator().manual_seed(5)
    bad_points = torch.where(mask.unsqueeze(-1), points, points[:, :1] + 1e-6)  # next to particle 0
    bad_x = torch.where(mask.unsqueeze(-1), x, 100 * torch.randn(x.shape, generator=g, dtype=x.dtype))
    out = conv(bad_points, bad_x, mask)
    torch.testing.assert_close(out[mask], ref[mask], rtol=1e-10, atol=1e-10)
    # extra padding columns: same real outputs (batch statistics included)
    wide = conv(F.pad(points, (0, 0, 0, 4)), F.pad(x, (0, 0, 0, 4)), F.pad(mask, (0, 4)))
    torch.testing.assert_close(wide[:, :9], ref, rtol=1e-10, atol=1e-10)


def test_gradients_reach_every_parameter():
    points, x, mask = make_inputs()
    conv = make_conv(train=True)
    conv(points, x, mask).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in conv.parameters())


def test_eval_on_real_rows_equals_the_export_layout(monkeypatch):
    """Eval runs the edge MLP on the real particles' rows only (half a random batch's rows are
    padding); under export it keeps every row so no shape depends on the data. Both give the same."""
    conv, (points, x, mask) = make_conv(train=False), make_inputs()
    packed = conv(points, x, mask)
    monkeypatch.setattr(torch.compiler, "is_exporting", lambda: True)
    every_row = conv(points, x, mask)
    torch.testing.assert_close(packed, every_row, rtol=1e-12, atol=1e-12)
    assert (packed[~mask] == 0).all()


def test_autocast_output_keeps_the_input_dtype(monkeypatch):
    """On a GPU autocast's batch norm keeps bf16 (on a CPU it returns float32): the block's output is
    still in its input's dtype (the next block's kNN distances). CUDA's autocast does not promote
    index_copy's operands as the CPU's does (the H200 raised a dtype error); a CPU cannot show that
    error, but a scatter into zeros of h's dtype would fail the dtype check here."""
    import hepnn.nn.edgeconv as edgeconv

    norm_rows = edgeconv.batch_norm_rows
    monkeypatch.setattr(edgeconv, "batch_norm_rows", lambda norm, h: norm_rows(norm, h).to(h.dtype))  # as on CUDA
    conv, (points, x, mask) = make_conv(train=True), make_inputs()
    conv, points, x = conv.float(), points.float(), x.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = conv(points, x, mask)
    assert out.dtype == torch.float32
    assert (out[~mask] == 0).all() and torch.isfinite(out).all()
