"""Packed particles and multiplicity groups: the layouts round-trip, every real pair appears once,
padded entries are masked, and grouped attention equals dense attention."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hepnn.nn.attention import GroupedMask, MultiHeadAttention, attention_mask
from hepnn.nn.packed import MASKED, JetGroups, JetPairs, attend, ordered_pairs

COUNTS = [5, 0, 3, 7, 1, 7, 2, 4, 6, 3]


def batch(counts=COUNTS, n=9, seed=0):
    """x (B, N, C) and a mask whose real particles sit at scattered positions (not a prefix)."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(len(counts), n, dtype=torch.bool)
    for b, c in enumerate(counts):
        mask[b, torch.randperm(n, generator=g)[:c]] = True
    return torch.randn(len(counts), n, 4, generator=g, dtype=torch.float64), mask


def test_pack_square_unsquare_round_trip():
    x, mask = batch()
    groups = JetGroups.from_mask(mask, max_groups=3, min_jets=3)
    # sorted counts 7 7 6 | 5 4 3 | 3 2 1 0: each group padded to its own largest jet
    assert groups.spans == [(0, 3, 7), (3, 6, 5), (6, 10, 3)]
    packed = groups.pack(x)  # (M, C)
    assert len(packed) == sum(COUNTS)
    sq = groups.square(packed)
    assert [tuple(s.shape) for s in sq] == [(3, 7, 4), (3, 5, 4), (4, 3, 4)]
    torch.testing.assert_close(groups.unsquare([s.reshape(-1, 4) for s in sq]), packed, rtol=0, atol=0)
    # each packed jet holds exactly its own real particles, in the jet's order
    for rank, b in enumerate(groups.order.tolist()):
        start, count = int(groups.starts[rank]), COUNTS[b]
        torch.testing.assert_close(packed[start:start + count], x[b][mask[b]], rtol=0, atol=0)


def test_every_real_pair_once_and_padded_pairs_masked():
    _, mask = batch()
    groups = JetGroups.from_mask(mask, max_groups=3, min_jets=3)
    first, second, where = groups.pairs()
    assert len(first) == sum(c * (c + 1) // 2 for c in COUNTS)
    jet_of_row = torch.repeat_interleave(torch.arange(len(COUNTS)), groups.counts)
    assert torch.equal(jet_of_row[first], jet_of_row[second]) and (first <= second).all()
    assert len(set(zip(first.tolist(), second.tolist()))) == len(first)
    values = torch.randn(len(first), 2, dtype=torch.float64)  # (R, H)
    for g, bias in enumerate(groups.pair_bias(values, where)):
        j0, j1, n = groups.spans[g]
        sq = bias.view(2, j1 - j0, n, n)
        torch.testing.assert_close(sq, sq.transpose(2, 3))  # symmetric
        real = torch.arange(n) < groups.counts[j0:j1, None]  # (B_g, n)
        pair_real = real[:, :, None] & real[:, None, :]
        assert (sq[:, ~pair_real] == MASKED).all() and (sq[:, pair_real] != MASKED).all()


def test_attend_equals_sdpa_with_a_finite_bias():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(6, 5, 4, generator=g, dtype=torch.float64) for _ in range(3))
    bias = torch.randn(6, 5, 5, generator=g, dtype=torch.float64)
    bias[:, :, 3:] = MASKED
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    torch.testing.assert_close(attend(q, k, v, bias), want, rtol=1e-12, atol=1e-12)
    w = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(4) + bias, -1)
    assert (w[:, :, 3:] == 0).all()  # exp(MASKED) is exactly 0: padding cannot leak in


def test_grouped_attention_equals_dense_attention_and_ignores_grouping():
    x, mask = batch(n=8)
    x = torch.randn(*mask.shape, 8, dtype=torch.float64)
    torch.manual_seed(0)
    attn = MultiHeadAttention(8, 2).double().eval()
    u = torch.randn(len(COUNTS), 2, 8, 8, dtype=torch.float64)
    u = u + u.transpose(2, 3)  # a symmetric pair bias, as ParT's
    dense = attn(x, attention_mask(mask, query_mask=mask, bias=u))  # (B, N, C)
    for max_groups in (1, 2, 5):
        groups = JetGroups.from_mask(mask, max_groups=max_groups, min_jets=2)
        first, second, where = groups.pairs()
        b_of_row = groups.order.repeat_interleave(groups.counts)  # batch index of each packed row
        i_of_row = groups.rows % mask.shape[1]
        values = u[b_of_row[first], :, i_of_row[first], i_of_row[second]]  # (R, H)
        packed = attn(groups.pack(x), GroupedMask(groups, groups.pair_bias(values, where)))  # (M, C)
        torch.testing.assert_close(packed, groups.pack(dense), rtol=1e-12, atol=1e-12)


def test_ordered_pairs_are_every_pair_of_distinct_particles_of_a_jet():
    counts = torch.tensor([3, 0, 1, 4])
    src, dst = ordered_pairs(counts)
    starts = [0, 3, 3, 4]
    want = [(s + i, s + j) for s, c in zip(starts, counts.tolist()) for i in range(c) for j in range(c) if i != j]
    assert list(zip(src.tolist(), dst.tolist())) == want  # sorted by i, each jet's pairs together


def test_jet_pairs_square_layout():
    counts = torch.tensor([2, 0, 3])
    pairs = JetPairs.from_counts(counts)
    want = [(i, j) for s, c in ((0, 2), (2, 3)) for i in range(s, s + c) for j in range(s, s + c)]
    assert list(zip(pairs.src.tolist(), pairs.dst.tolist())) == want
    assert torch.equal(pairs.src[pairs.transpose], pairs.dst) and torch.equal(pairs.dst[pairs.transpose], pairs.src)
    assert torch.equal(pairs.src[pairs.diag], torch.arange(5)) and torch.equal(pairs.dst[pairs.diag], torch.arange(5))
    assert pairs.pair_jet.tolist() == [0] * 4 + [2] * 9 and pairs.row_jet.tolist() == [0, 0, 2, 2, 2]
