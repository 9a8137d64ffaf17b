"""Particle Transformer (ParT): Qu, Li, Qian, "Particle Transformer for Jet Tagging", arXiv:2202.03772.

    x⁰ = Embed(x)                                 particle embedding MLP (128, 512, 128)
    U  = PairEmbed(ln kT, ln z, ln ΔR, ln m²)     pointwise MLP (64, 64, 64) -> one bias per head
    xˡ⁺¹ = ParticleAttentionBlock(xˡ, U)          8 blocks, softmax(QKᵀ/√d + U) V
    c  = ClassAttentionBlock(c, [c, x])           2 blocks, class token attends to the particles
    logits = Linear(LN(c))

Pair features are computed per batch inside the model from p4 (``hepnn.data.features``) on the
batch's device and dtype. Padded keys get no attention weight, so padding and particle order never
change the output.

Layout (why it is fast): the model runs on the batch's real particles packed into rows
(``hepnn.nn.packed.JetGroups``): pair features and the pair embedding on the real pairs i ≤ j only
(R rows, no (B, N, N) tensor), every per-particle layer on the M real particles, and attention per
group of jets of similar multiplicity, each group padded to its own largest jet. A random batch of
256 jets with N ≤ 128 is half padding; grouped, ~90 % of the attention scores are real ones. Batch
statistics (the pair embedding's batch norm) still see the whole batch. The dense (B, N, N) layout
(``forward_dense``) is kept for ``torch.export`` / ONNX, where shapes must not depend on the data.

Shapes: x (B, N, C), p4 (B, N, 4), mask (B, N) -> (B, num_classes).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from hepnn.data.batch import Batch
from hepnn.data.pair_features import pair_features, pair_features_at
from hepnn.nn.attention import GroupedMask, ParticleAttentionBlock, attention_mask
from hepnn.nn.norm import MaskedBatchNorm, batch_norm_rows, fold_into_linear
from hepnn.nn.packed import JetGroups
from hepnn.registry import register_model, register_variant

PAIR_NAMES = ("ln_kt", "ln_z", "ln_dr", "ln_m2")


class PairEmbed(nn.Module):
    """ParT's pair embedding: masked BatchNorm, then pointwise (1×1 conv) Linear-BN-GELU layers.

    BatchNorm statistics use real pairs i ≤ j only (``MaskedBatchNorm``), so padding never leaks in.

    Shapes: ``rows``: pairs (R, P) of real pairs -> (R, H); ``forward`` (dense): pairs (B, N, N, P),
    pair_mask (B, N, N) -> (B, H, N, N).
    """

    def __init__(self, in_features: int, dims: Sequence[int], num_heads: int) -> None:
        super().__init__()
        widths = [in_features, *dims]
        self.norms = nn.ModuleList([MaskedBatchNorm(w) for w in widths])
        self.linears = nn.ModuleList([nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:])])
        self.out = nn.Linear(widths[-1], num_heads)
        self.act = nn.GELU()

    def weights_read_directly(self) -> list[nn.Module]:
        """The first Linear: ``rows`` folds the input norm into its weight (no pruning hook, no int8)."""
        return [self.linears[0]]

    def rows(self, pairs: Tensor) -> Tensor:
        """The embedding of packed real pairs: every row is real, so the norms are torch's fused ones,
        and the input norm is folded into the first Linear (``fold_into_linear``)."""
        w, b = fold_into_linear(self.norms[0], self.linears[0], pairs)  # (D, P), (D,)
        # a contiguous (P, D) weight: its gradient is then pairsᵀ g, a (P, R) x (R, D) product; for a
        # transposed view autograd forms (gᵀ pairs)ᵀ, a (D, R) x (R, P) product ~15x slower for P = 4
        h = self.act(batch_norm_rows(self.norms[1], torch.addmm(b, pairs, w.T.contiguous())))  # (R, D)
        for lin, norm in zip(self.linears[1:], self.norms[2:]):
            h = self.act(batch_norm_rows(norm, lin(h)))  # (R, D)
        return self.out(h)  # (R, H)

    def forward(self, pairs: Tensor, pair_mask: Tensor) -> Tensor:
        if torch.compiler.is_exporting() and not self.training:
            # the same function on every (i, j): triu_indices(n, n) would be frozen at the example's N
            # in an exported graph; in eval the norms use running statistics, so the mask is not needed
            h = self.norms[0](pairs, pair_mask)
            for lin, norm in zip(self.linears, self.norms[1:]):
                h = self.act(norm(lin(h), pair_mask))  # (B, N, N, D)
            return self.out(h).permute(0, 3, 1, 2)  # (B, H, N, N)
        # the pair features are symmetric: embed the upper triangle i ≤ j only and mirror it
        b, n = pair_mask.shape[:2]
        i, j = torch.triu_indices(n, n, device=pairs.device)  # (T,) with T = N (N + 1) / 2
        if self.training:  # only real pairs, packed into rows: batch statistics need no mask
            rows = pair_mask[:, i, j].reshape(-1).nonzero().squeeze(1)  # (R,) real pairs i ≤ j
            h = pairs[:, i, j].reshape(b * len(i), -1)[rows]  # (R, P)
            h = batch_norm_rows(self.norms[0], h)
            for lin, norm in zip(self.linears, self.norms[1:]):
                h = self.act(batch_norm_rows(norm, lin(h)))  # (R, D)
            tri = h.new_zeros(b * len(i), self.out.out_features).index_copy(0, rows, self.out(h))
            tri = tri.view(b, len(i), -1)  # (B, T, H), 0 at padded pairs
        else:
            h, m = pairs[:, i, j], pair_mask[:, i, j]  # (B, T, P), (B, T)
            h = self.norms[0](h, m)
            for lin, norm in zip(self.linears, self.norms[1:]):
                h = self.act(norm(lin(h), m))  # (B, T, D)
            tri = self.out(h)  # (B, T, H)
        u = tri.new_zeros(b, n, n, tri.shape[-1])  # (B, N, N, H)
        u[:, i, j] = tri
        u[:, j, i] = tri
        return u.permute(0, 3, 1, 2)  # (B, H, N, N)


def attention_groups_for(device: torch.device) -> int:
    """Multiplicity groups for ParT's attention on ``device``: 16 on a CPU, where padded score slots
    cost arithmetic; 1 elsewhere, where each group's kernels cost launches (docs/benchmarks.md, GPU)."""
    return 16 if device.type == "cpu" else 1


class ParticleTransformer(nn.Module):
    """ParT: particle embedding, pair-bias attention blocks, class-attention blocks, linear head.

    Args:
        in_features: per-particle features C. num_classes: outputs.
        embed_dims: particle embedding MLP widths; the last is the model width.
        pair_embed_dims: pair embedding MLP widths (then a Linear to one bias per head).
        num_heads, num_layers, num_cls_layers: heads, particle blocks, class-attention blocks.
        expansion: feed-forward width factor. dropout: attention / feed-forward dropout.
        attention_groups: at most this many multiplicity groups per batch for attention (a speed
            setting: the output does not depend on it). None: ``attention_groups_for`` the device
            (paper size on an H200: 1 group trained 3.4x faster than 16).
    """

    def __init__(
        self,
        *,
        in_features: int,
        num_classes: int,
        embed_dims: Sequence[int] = (128, 512, 128),
        pair_embed_dims: Sequence[int] = (64, 64, 64),
        num_heads: int = 8,
        num_layers: int = 8,
        num_cls_layers: int = 2,
        expansion: int = 4,
        dropout: float = 0.1,
        attention_groups: int | None = None,
    ) -> None:
        super().__init__()
        self.attention_groups = attention_groups
        dim = embed_dims[-1]
        layers: list[nn.Module] = []
        for a, b in zip([in_features, *embed_dims[:-1]], embed_dims):
            layers += [nn.LayerNorm(a), nn.Linear(a, b), nn.GELU()]  # weaver's Embed: LN, Linear, GELU
        self.embed = nn.Sequential(*layers)
        self.pair_embed = PairEmbed(len(PAIR_NAMES), pair_embed_dims, num_heads)
        kw = dict(expansion=expansion, dropout=dropout)
        self.blocks = nn.ModuleList([ParticleAttentionBlock(dim, num_heads, **kw) for _ in range(num_layers)])
        self.cls_blocks = nn.ModuleList([ParticleAttentionBlock(dim, num_heads, **kw) for _ in range(num_cls_layers)])
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, batch: Batch) -> Tensor:
        if torch.compiler.is_exporting():  # shapes must not depend on the data
            return self.forward_dense(batch)
        return self.forward_packed(batch)

    def forward_packed(self, batch: Batch) -> Tensor:
        """Real particles packed, real pairs packed, attention per multiplicity group."""
        x, mask = batch.x, batch.mask.bool()
        groups = JetGroups.from_mask(mask, self.attention_groups or attention_groups_for(x.device))
        first, second, where = groups.pairs()  # (R,), (R,): real pairs i ≤ j; where: squares -> pair
        pairs = pair_features_at(groups.pack(batch.p4.to(x.dtype)), first, second, PAIR_NAMES)  # (R, 4)
        attn = GroupedMask(groups, groups.pair_bias(self.pair_embed.rows(pairs), where))
        h = self.embed(groups.pack(x))  # (M, D)
        for block in self.blocks:
            h = block(h, attn)
        cls = self.cls_token[0].expand(x.shape[0], -1).to(h.dtype)  # (B, D), jets in sorted order
        keys = [groups.key_bias(g, h.dtype) for g in range(len(groups.spans))]
        cls_attn = GroupedMask(groups, keys, cls=True)
        for block in self.cls_blocks:
            cls = block(cls, cls_attn, context=torch.cat([cls, h]))  # (B, D)
        out = self.head(self.norm(cls))  # (B, K), sorted by multiplicity
        return out.index_select(0, torch.argsort(groups.order))  # (B, K) in batch order

    def forward_dense(self, batch: Batch) -> Tensor:
        """The (B, N, N) layout: what ``torch.export`` records (no data-dependent shape)."""
        x, p4, mask = batch.x, batch.p4, batch.mask.bool()
        b = x.shape[0]
        pair_mask = mask[:, :, None] & mask[:, None, :]  # (B, N, N)
        pairs = pair_features(p4.to(x.dtype), mask, PAIR_NAMES)  # (B, N, N, 4)
        u = self.pair_embed(pairs, pair_mask)  # (B, H, N, N)
        attn_mask = attention_mask(mask, query_mask=mask, bias=u)  # (B, H, N, N), −inf at padded keys
        h = self.embed(x)  # (B, N, D)
        for block in self.blocks:
            h = block(h, attn_mask)
        cls = self.cls_token.expand(b, 1, -1).to(h.dtype)  # (B, 1, D)
        ones = torch.ones(b, 1, dtype=torch.bool, device=mask.device)
        cls_mask = attention_mask(torch.cat([ones, mask], 1), dtype=h.dtype)  # (B, 1, 1, 1 + N)
        for block in self.cls_blocks:
            cls = block(cls, cls_mask, context=torch.cat([cls, h], dim=1))  # (B, 1, D)
        return self.head(self.norm(cls[:, 0]))  # (B, K)


@register_model("part", inputs=("x", "mask", "p4"), family="transformer", tags=("permutation",))
def part(
    *,
    in_features: int = 7,
    num_classes: int = 2,
    embed_dims: Sequence[int] = (128, 512, 128),
    pair_embed_dims: Sequence[int] = (64, 64, 64),
    num_heads: int = 8,
    num_layers: int = 8,
    num_cls_layers: int = 2,
    expansion: int = 4,
    dropout: float = 0.1,
    attention_groups: int | None = None,
) -> ParticleTransformer:
    """Particle Transformer (arXiv:2202.03772) at the paper's size: width 128, 8 heads, 8 + 2 blocks."""
    return ParticleTransformer(
        in_features=in_features, num_classes=num_classes, embed_dims=embed_dims,
        pair_embed_dims=pair_embed_dims, num_heads=num_heads, num_layers=num_layers,
        num_cls_layers=num_cls_layers, expansion=expansion, dropout=dropout, attention_groups=attention_groups,
    )  # fmt: skip


register_variant("part_lite", of="part", embed_dims=(64, 64), pair_embed_dims=(32, 32), num_heads=4, num_layers=3,
                 num_cls_layers=1, expansion=2, dropout=0.0,
                 doc="ParT for CPUs: width 64, 4 heads, 3 particle + 1 class-attention blocks, pair MLP (32, 32).")
