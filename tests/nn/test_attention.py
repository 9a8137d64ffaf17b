"""Masked attention with pair bias against a hand-written softmax(QKᵀ/√d + U)V."""

from __future__ import annotations

import math

import torch

from hepnn.nn.attention import MultiHeadAttention, ParticleAttentionBlock, TransformerBlock, attention_mask

B, N, C, H = 3, 6, 8, 2


def inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, C, generator=g, dtype=torch.float64)
    u = torch.randn(B, H, N, N, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    return x, u, mask


def by_hand(attn: MultiHeadAttention, x, u, mask):
    """Explicit per-head loop: scores = q kᵀ/√d + U, padded keys dropped, softmax, weighted v."""
    d = C // H
    wq, bq = attn.q.weight, attn.q.bias
    wk, wv = attn.kv.weight[:C], attn.kv.weight[C:]
    bk, bv = attn.kv.bias[:C], attn.kv.bias[C:]
    out = torch.zeros(B, N, C, dtype=x.dtype)
    weights = torch.zeros(B, H, N, N, dtype=x.dtype)
    for b in range(B):
        real = mask[b].nonzero().flatten()
        for h in range(H):
            sl = slice(h * d, (h + 1) * d)
            q = x[b] @ wq[sl].T + bq[sl]
            k = x[b, real] @ wk[sl].T + bk[sl]
            v = x[b, real] @ wv[sl].T + bv[sl]
            s = q @ k.T / math.sqrt(d) + u[b, h][:, real]
            w = torch.softmax(s, dim=-1)
            weights[b, h][:, real] = w
            out[b, :, sl] = w @ v
    return attn.proj(out), weights


def test_matches_hand_written_softmax_with_pair_bias():
    x, u, mask = inputs()
    torch.manual_seed(0)
    attn = MultiHeadAttention(C, H).double().eval()
    with torch.no_grad():
        ours = attn(x, attention_mask(mask, query_mask=mask, bias=u))
        expected, _ = by_hand(attn, x, u, mask)
    torch.testing.assert_close(ours[mask], expected[mask], rtol=1e-12, atol=1e-12)


def test_padded_keys_get_zero_weight_and_padded_rows_are_finite():
    x, u, mask = inputs()
    torch.manual_seed(0)
    attn = MultiHeadAttention(C, H).double().eval()
    am = attention_mask(mask, query_mask=mask, bias=u)
    # the attention weights SDPA uses are softmax(scores + mask); padded keys of real rows: exactly 0
    w = torch.softmax(torch.randn(B, H, N, N, dtype=torch.float64) + am, dim=-1)
    assert (w.masked_select(~mask[:, None, None, :] & mask[:, None, :, None]) == 0).all()
    assert torch.isfinite(w).all()
    # changing padded particles (their keys, values and bias) changes no real output
    x2, u2 = x.clone(), u.clone()
    x2[~mask] = 1e3
    u2[~mask[:, None, None, :].expand_as(u2)] = 50.0
    with torch.no_grad():
        a = attn(x, am)
        b = attn(x2, attention_mask(mask, query_mask=mask, bias=u2))
    assert torch.isfinite(a).all() and torch.isfinite(b).all()
    torch.testing.assert_close(a[mask], b[mask], rtol=0, atol=1e-12)


def test_attention_mask_values():
    mask = torch.tensor([[1, 0]], dtype=torch.bool)
    am = attention_mask(mask, query_mask=mask)
    inf = float("-inf")
    # real row: padded key masked; padded row: real keys and its own diagonal entry (never all −inf)
    torch.testing.assert_close(am[0, 0], torch.tensor([[0.0, inf], [0.0, 0.0]]))
    key_only = attention_mask(mask)
    assert key_only.shape == (1, 1, 1, 2) and key_only[0, 0, 0, 1] == inf


def test_blocks_keep_shape_and_ignore_padding():
    x, u, mask = inputs(1)
    torch.manual_seed(0)
    for block in (TransformerBlock(C, H).double().eval(), ParticleAttentionBlock(C, H).double().eval()):
        am = attention_mask(mask, query_mask=mask, bias=u)
        x2 = x.clone()
        x2[~mask] = -7.0
        with torch.no_grad():
            a, b = block(x, am), block(x2, am)
        assert a.shape == x.shape and torch.isfinite(b).all()
        torch.testing.assert_close(a[mask], b[mask], rtol=0, atol=1e-12)


def test_class_attention_reads_only_real_particles():
    x, _, mask = inputs(2)
    torch.manual_seed(0)
    block = ParticleAttentionBlock(C, H).double().eval()
    cls = torch.randn(B, 1, C, dtype=torch.float64)
    key_mask = torch.cat([torch.ones(B, 1, dtype=torch.bool), mask], 1)
    am = attention_mask(key_mask, dtype=torch.float64)
    x2 = x.clone()
    x2[~mask] = 9.0
    with torch.no_grad():
        a = block(cls, am, context=torch.cat([cls, x], 1))
        b = block(cls, am, context=torch.cat([cls, x2], 1))
    assert a.shape == (B, 1, C)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
