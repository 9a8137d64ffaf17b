"""LorentzNet's fused edge MLPs: forward and hand-written backward equal the plain autograd formulas."""

from __future__ import annotations

import pytest
import torch

import hepnn.nn.edge_mlp as edge_mlp
from hepnn.nn.packed import ordered_pairs

D = 5


def reference(a, b, inv, x, src, dst, w_inv, w_e, b_e, w_m, b_m, w_x1=None, b_x1=None, w_x2=None, b_x2=None):
    """The module docstring's formulas with plain autograd ops over all edges at once."""
    m = torch.relu(torch.relu(a[src] + b[dst] + inv @ w_inv.T) @ w_e.T + b_e)  # (E, D)
    gate = torch.sigmoid(m @ w_m + b_m)  # (E,)
    agg = torch.zeros_like(a).index_add(0, src, gate[:, None] * m)
    if w_x1 is None:
        return agg, torch.zeros_like(x)
    px = torch.relu(m @ w_x1.T + b_x1) @ w_x2 + b_x2  # (E,)
    return agg, torch.zeros_like(x).index_add(0, src, px[:, None] * x[dst])


@pytest.mark.parametrize("with_x", [True, False])
@pytest.mark.parametrize("chunk", [7, 1000])
def test_forward_and_backward_equal_autograd(with_x, chunk, monkeypatch):
    monkeypatch.setattr(edge_mlp, "CHUNK", chunk)
    g = torch.Generator().manual_seed(0)
    counts = torch.tensor([4, 1, 6, 0, 3])
    src, dst = ordered_pairs(counts)
    m_rows = int(counts.sum())

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)

    inputs = [rand(m_rows, D), rand(m_rows, D), rand(len(src), 2), rand(m_rows, 4)]
    params = [rand(D, 2), rand(D, D), rand(D), rand(D), rand(1)]
    if with_x:
        params += [rand(D, D), rand(D), rand(D), rand(1)]
    out = edge_mlp.edge_messages(*inputs[:4], src, dst, *params)
    want = reference(*inputs[:4], src, dst, *params)
    weights = [torch.randn(t.shape, generator=g, dtype=torch.float64) for t in want]
    leaves = inputs + params
    grads = torch.autograd.grad(sum((o * w).sum() for o, w in zip(out, weights)), leaves, allow_unused=True)
    grads_want = torch.autograd.grad(sum((o * w).sum() for o, w in zip(want, weights)), leaves, allow_unused=True)
    for o, w in zip(out, want):
        torch.testing.assert_close(o, w, rtol=1e-12, atol=1e-12)
    for k, (got, exp) in enumerate(zip(grads, grads_want)):
        if exp is None:
            assert got is None or not got.abs().sum(), k
        else:
            torch.testing.assert_close(got, exp, rtol=1e-10, atol=1e-12, msg=f"gradient {k}")
