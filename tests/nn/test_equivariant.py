"""hepnn.nn.equivariant (PELICAN's layers): Eq2to2 against a per-entry loop over its 15 basis
operations, permutation equivariance (rows and columns permute with the particles), zero padded pairs,
padding invariance; Eq2to0 by hand, permutation and padding invariant."""

from __future__ import annotations

import torch

from hepnn.nn.equivariant import Eq2to0, Eq2to2

C_IN, C_OUT, N_REF = 3, 4, 4.0


def pairs(seed=0, b=3, n=5, counts=(5, 3, 1)):
    """t (B, N, N, C_in) float64, not symmetric; mask (B, N) with ``counts`` real particles; padded pairs hold garbage."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(b, n, n, C_IN, generator=g, dtype=torch.float64)
    mask = torch.arange(n) < torch.tensor(counts).unsqueeze(1)  # (B, N)
    return t, mask


def layer(cls, seed=0):
    """An Eq2to2 / Eq2to0 in float64 with non-zero aggregator exponents (α = 0 would hide the scaling)."""
    torch.manual_seed(seed)
    m = cls(C_IN, C_OUT, n_ref=N_REF).double()
    with torch.no_grad():
        m.alpha.copy_(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64))
    return m


def reference_eq2to2(m: Eq2to2, t, mask):
    """Entry by entry: aggregates over real particles, then the 15 basis ops mixed by m's Linear layers."""
    out = torch.zeros(*t.shape[:3], C_OUT, dtype=t.dtype)
    for b in range(t.shape[0]):
        real = torch.nonzero(mask[b]).flatten().tolist()
        n = len(real)
        grow = (n / N_REF) ** m.alpha
        s1, s2 = grow / n, grow / n**2
        T = t[b][real][:, real]  # (n, n, C) the real block
        diag = {i: T[a, a] for a, i in enumerate(real)}
        row = {i: s1 * T[a].sum(0) for a, i in enumerate(real)}
        col = {i: s1 * T[:, a].sum(0) for a, i in enumerate(real)}
        trace = s1 * sum(T[a, a] for a in range(n))
        total = s2 * T.sum((0, 1))
        for i in real:
            for j in real:
                o = m.pair(torch.cat([t[b, i, j], t[b, j, i]]))
                o = o + m.rows(torch.cat([row[i], col[i], diag[i]])) + m.cols(torch.cat([row[j], col[j], diag[j]]))
                o = o + m.glob(torch.cat([trace, total]))
                if i == j:
                    o = o + m.on_diag(torch.cat([diag[i], row[i], col[i], trace, total]))
                out[b, i, j] = o
    return out


def test_eq2to2_matches_the_basis_ops_entry_by_entry():
    t, mask = pairs()
    m = layer(Eq2to2)
    with torch.no_grad():
        torch.testing.assert_close(m(t, mask), reference_eq2to2(m, t, mask), rtol=1e-12, atol=1e-12)


def test_eq2to2_is_permutation_equivariant():
    t, mask = pairs()
    m = layer(Eq2to2)
    perm = torch.tensor([3, 0, 4, 1, 2])  # mixes real and padded slots of the shorter jets
    out = m(t, mask)
    out_perm = m(t[:, perm][:, :, perm], mask[:, perm])
    torch.testing.assert_close(out_perm, out[:, perm][:, :, perm], rtol=1e-12, atol=1e-12)
    assert not torch.allclose(out_perm, out)  # the permutation does move entries: the check has teeth


def test_eq2to2_zeroes_padded_pairs_and_ignores_padding():
    t, mask = pairs()
    m = layer(Eq2to2)
    out = m(t, mask)
    pair_mask = mask[:, :, None] & mask[:, None, :]  # (B, N, N)
    assert torch.equal(out[~pair_mask], torch.zeros_like(out[~pair_mask]))
    assert (out[pair_mask] != 0).all()
    clean = t * pair_mask.unsqueeze(-1)  # padded pairs 0 instead of garbage
    wide = torch.nn.functional.pad(clean, (0, 0, 0, 3, 0, 3), value=7.0)  # 3 more padded particles
    wide_mask = torch.nn.functional.pad(mask, (0, 3))
    torch.testing.assert_close(m(wide, wide_mask)[:, :5, :5], out, rtol=1e-12, atol=1e-12)


def test_eq2to0_by_hand():
    """One channel in, two out reading trace and total: α = 0 gives means, α = 1 gives sum / n_ref."""
    t = torch.tensor([[[1.0, 2.0, 9.0], [3.0, 5.0, 9.0], [9.0, 9.0, 9.0]]]).unsqueeze(-1)  # (1, 3, 3, 1), 2 real
    mask = torch.tensor([[True, True, False]])
    m = Eq2to0(1, 2, n_ref=4.0)
    with torch.no_grad():
        m.linear.weight.copy_(torch.eye(2))
        m.linear.bias.zero_()
        assert m(t, mask).tolist() == [[3.0, 2.75]]  # trace (1 + 5) / 2, total (1 + 2 + 3 + 5) / 4
        m.alpha.fill_(1.0)
        assert m(t, mask).tolist() == [[1.5, 1.375]]  # 6 / 4 and 11 / (2 * 4)


def test_eq2to0_is_permutation_and_padding_invariant():
    t, mask = pairs()
    m = layer(Eq2to0)
    out = m(t, mask)
    perm = torch.tensor([2, 4, 0, 3, 1])
    torch.testing.assert_close(m(t[:, perm][:, :, perm], mask[:, perm]), out, rtol=1e-12, atol=1e-12)
    wide = torch.nn.functional.pad(t, (0, 0, 0, 2, 0, 2), value=-3.0)
    torch.testing.assert_close(m(wide, torch.nn.functional.pad(mask, (0, 2))), out, rtol=1e-12, atol=1e-12)
    assert len(set(out[:, 0].tolist())) == 3  # the three jets differ: padding garbage would not cancel


def test_gradients_reach_every_parameter():
    t, mask = pairs()
    for cls in (Eq2to2, Eq2to0):
        m = layer(cls)
        m(t, mask).square().sum().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters()), cls.__name__
