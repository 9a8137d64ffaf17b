"""Masked multi-head attention over particles, with an optional per-head pair bias.

    Attention(Q, K, V) = softmax(Q Kᵀ / √d + U + M) V

U (B, H, N, N) is a learned pair bias (ParT's interaction matrix, arXiv:2202.03772) and M the
padding mask: −inf at padded keys, so they get exactly zero weight and never change a real
particle's output. A padded query row would have every key masked (softmax of all −inf = NaN), so it
keeps its own diagonal entry instead; its output is finite and is never read by real particles.
Everything goes through ``torch.nn.functional.scaled_dot_product_attention`` with M (+ U) as the
float ``attn_mask``, so fused kernels are used where the backend has them.

Packed layout: ``MultiHeadAttention`` and ``ParticleAttentionBlock`` also take the real particles
packed into rows (M, C) with a ``GroupedMask`` in place of the (B, H, N, N) mask: every per-particle
layer then runs on real rows only and attention per multiplicity group (``hepnn.nn.packed``).

Blocks: ``TransformerBlock`` (pre-LayerNorm, Vaswani et al. arXiv:1706.03762 as in GPT-2) and
``ParticleAttentionBlock`` (ParT's NormFormer-style block with the extra LayerNorms; also the
class-attention block of CaiT, arXiv:2103.17239, when given a ``context``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hepnn.nn.dropout import Dropout
from hepnn.nn.packed import JetGroups, attend


@dataclass
class GroupedMask:
    """What packed attention needs in place of a dense mask: the groups and one bias per group.

    ``bias[g]`` is (H·B_g or 1·B_g, Lq, L): the pair bias plus ``MASKED`` at padded keys
    (``JetGroups.pair_bias``), or ``JetGroups.key_bias`` for class attention (``cls=True``: the
    queries are one class token per jet, sorted like the jets, and each jet's keys are its class
    token followed by its particles).
    """

    groups: JetGroups
    bias: list[Tensor]
    cls: bool = False


def attention_mask(
    key_mask: Tensor,
    *,
    query_mask: Tensor | None = None,
    bias: Tensor | None = None,
    dtype: torch.dtype | None = None,
) -> Tensor:
    """Float attention mask: ``bias`` plus −inf at padded keys.

    Args:
        key_mask: True for real keys.
        query_mask: for self-attention (Nq = Nk); padded query rows keep their diagonal unmasked so
            that no row is all −inf (which would give NaN). None: every query is real.
        bias: optional additive pair bias U.
        dtype: float dtype of the mask (default: ``bias``'s dtype, else float32).

    Shapes: key_mask (B, Nk), query_mask (B, Nq), bias (B, H, Nq, Nk) -> (B, H or 1, Nq or 1, Nk).
    """
    dtype = dtype or (bias.dtype if bias is not None else torch.float32)
    allowed = key_mask.bool()[:, None, None, :]  # (B, 1, 1, Nk)
    if query_mask is not None:
        n = key_mask.shape[1]
        eye = torch.eye(n, dtype=torch.bool, device=key_mask.device)
        allowed = allowed | (eye & ~query_mask.bool()[:, :, None]).unsqueeze(1)  # (B, 1, N, N)
    neg = torch.zeros(allowed.shape, dtype=dtype, device=key_mask.device).masked_fill(~allowed, float("-inf"))
    return neg if bias is None else bias + neg


class MultiHeadAttention(nn.Module):
    """Multi-head attention of queries ``x`` on keys/values ``context`` (default: ``x`` itself).

    Args:
        dim: embedding width C (split into ``num_heads`` heads of C / H).
        num_heads: number of heads H.
        dropout: dropout on the attention weights (training only).

    Shapes: x (B, Nq, C), context (B, Nk, C), attn_mask (B, H or 1, Nq or 1, Nk) -> (B, Nq, C).
    Packed (``attn_mask`` a ``GroupedMask``): x (M, C) -> (M, C); class attention x (B, C) sorted
    like the jets, context (B + M, C) = [class tokens; packed particles] -> (B, C).
    """

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embedding width {dim} is not divisible by {num_heads} heads")
        self.num_heads, self.dropout = num_heads, dropout
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def weights_read_directly(self) -> list[nn.Module]:
        """q and kv: packed self-attention multiplies by their concatenated weights in one product."""
        return [self.q, self.kv]

    def forward(self, x: Tensor, attn_mask: Tensor | GroupedMask, context: Tensor | None = None) -> Tensor:
        if isinstance(attn_mask, GroupedMask):
            return self._packed(x, attn_mask, context)
        context = x if context is None else context
        b, nq, c = x.shape
        nk, h = context.shape[1], self.num_heads
        q = self.q(x).reshape(b, nq, h, c // h).transpose(1, 2)  # (B, H, Nq, D)
        k, v = self.kv(context).reshape(b, nk, 2, h, c // h).permute(2, 0, 3, 1, 4)  # 2 × (B, H, Nk, D)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=p)  # (B, H, Nq, D)
        # an explicit copy, not reshape: SDPA's output layout depends on the backend, and torch.export
        # (ONNX) records reshape as a view that is invalid once SDPA is decomposed (see compress/export.py)
        y = y.transpose(1, 2).clone(memory_format=torch.contiguous_format)  # (B, Nq, H, D)
        return self.proj(y.view(b, nq, c))  # (B, Nq, C)

    def _packed(self, x: Tensor, mask: GroupedMask, context: Tensor | None) -> Tensor:
        groups, h, c = mask.groups, self.num_heads, x.shape[-1]
        d, p = c // h, self.dropout if self.training else 0.0
        out = []
        if not mask.cls:  # self-attention of the packed particles: q, k, v in one product
            qkv = F.linear(x, torch.cat([self.q.weight, self.kv.weight]), torch.cat([self.q.bias, self.kv.bias]))
            for rows, bias in zip(groups.square(qkv), mask.bias):  # (B_g, n, 3C), (H·B_g, n, n)
                bg, n = rows.shape[:2]
                # (B_g, n, 3, H, D) -> (3, H, B_g, n, D) -> 3 × (H·B_g, n, D)
                q, k, v = rows.view(bg, n, 3, h, d).permute(2, 3, 0, 1, 4).reshape(3, h * bg, n, d).unbind(0)
                y = attend(q, k, v, bias, p)  # (H·B_g, n, D)
                out.append(y.view(h, bg * n, d).transpose(0, 1).reshape(bg * n, c))  # (B_g·n, C)
            return self.proj(groups.unsquare(out))  # (M, C)
        # class attention: one query per jet on [its class token, its particles]
        sizes = [j1 - j0 for j0, j1, _ in groups.spans]
        queries = self.q(x).split(sizes)  # (B_g, C) each
        for keys, q, bias in zip(groups.square(self.kv(context), with_cls=True), queries, mask.bias):
            bg, n1 = keys.shape[:2]  # keys (B_g, 1 + n, 2C)
            # (B_g, 1 + n, 2, H, D) -> (2, H, B_g, 1 + n, D) -> 2 × (H·B_g, 1 + n, D)
            k, v = keys.view(bg, n1, 2, h, d).permute(2, 3, 0, 1, 4).reshape(2, h * bg, n1, d).unbind(0)
            q = q.view(bg, h, d).transpose(0, 1).reshape(h * bg, 1, d)  # (H·B_g, 1, D)
            y = attend(q, k, v, bias.repeat(h, 1, 1), p)  # (H·B_g, 1, D)
            out.append(y.view(h, bg, d).transpose(0, 1).reshape(bg, c))  # (B_g, C)
        return self.proj(torch.cat(out))  # (B, C)


def feed_forward(dim: int, expansion: int, dropout: float, post_norm: bool) -> nn.Sequential:
    """Linear → GELU → dropout → (LayerNorm, ParT's extra norm) → Linear. (..., C) -> (..., C)."""
    hidden = dim * expansion
    norm = [nn.LayerNorm(hidden)] if post_norm else []
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), Dropout(dropout), *norm, nn.Linear(hidden, dim))


class TransformerBlock(nn.Module):
    """Pre-LayerNorm encoder block: x += Attn(LN(x)); x += MLP(LN(x)) (GELU MLP, expansion 4).

    Shapes: x (B, N, C), attn_mask from ``attention_mask`` -> (B, N, C).
    """

    def __init__(self, dim: int, num_heads: int, *, expansion: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, num_heads, dropout)
        self.mlp = feed_forward(dim, expansion, dropout, post_norm=False)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, attn_mask: Tensor) -> Tensor:
        x = x + self.drop(self.attn(self.norm1(x), attn_mask))
        return x + self.drop(self.mlp(self.norm2(x)))


class ParticleAttentionBlock(nn.Module):
    """ParT block (arXiv:2202.03772, Fig. 3): P-MHA with pair bias, NormFormer's extra LayerNorms.

        x' = x + Drop(LN(MHA(LN(x), U)))
        x'' = x' + Drop(Linear(LN(GELU(Linear(LN(x'))))))

    With ``context`` it is ParT's class-attention block: the class token x (B, 1, C) attends to
    LN(context) = LN([class token, particles]) and only the class token is updated.

    Shapes: x (B, Nq, C), attn_mask (B, H or 1, Nq or 1, Nk), context (B, Nk, C) -> (B, Nq, C);
    packed as in ``MultiHeadAttention``: x (M, C) or class tokens (B, C), context (B + M, C).
    """

    def __init__(self, dim: int, num_heads: int, *, expansion: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        self.pre_attn_norm, self.post_attn_norm = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.pre_fc_norm = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, num_heads, dropout)
        self.ffn = feed_forward(dim, expansion, dropout, post_norm=True)
        self.drop = Dropout(dropout)

    def forward(self, x: Tensor, attn_mask: Tensor | GroupedMask, context: Tensor | None = None) -> Tensor:
        kv = None if context is None else self.pre_attn_norm(context)
        y = self.attn(self.pre_attn_norm(x), attn_mask, kv)  # (B, Nq, C)
        x = x + self.drop(self.post_attn_norm(y))
        return x + self.drop(self.ffn(self.pre_fc_norm(x)))
