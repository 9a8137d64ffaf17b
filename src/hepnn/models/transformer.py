"""Transformer encoder over the particles of a jet (Vaswani et al., "Attention Is All You Need",
arXiv:1706.03762), in the pre-LayerNorm form of GPT-2 and without positional encoding, so that the
jet is treated as a set (the output does not depend on particle order).

    h⁰ = Linear(x)
    hˡ⁺¹ = hˡ + MHA(LN(hˡ)),  hˡ⁺¹ += MLP_GELU(LN(hˡ⁺¹))     masked self-attention, padded keys −inf
    logits = Linear(LN(pool(h)))                              pool: masked mean, or a class token

Shapes: x (B, N, C), mask (B, N) -> (B, num_classes).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hepnn.data.batch import Batch
from hepnn.nn.attention import TransformerBlock, attention_mask
from hepnn.nn.layers import masked_mean
from hepnn.registry import register_model


class ParticleTransformerEncoder(nn.Module):
    """Pre-LN transformer encoder with a masked-mean (``head="pool"``) or class-token (``"cls"``) head.

    Args:
        in_features: per-particle features C. num_classes: outputs.
        dim: model width. num_heads: attention heads. num_layers: encoder blocks.
        expansion: MLP width factor. dropout: attention / residual dropout.
        head: "pool" (masked mean over real particles) or "cls" (a learned class token prepended to
            the particles; its final state is the jet representation).
    """

    def __init__(
        self,
        *,
        in_features: int,
        num_classes: int,
        dim: int = 128,
        num_heads: int = 8,
        num_layers: int = 6,
        expansion: int = 4,
        dropout: float = 0.1,
        head: str = "pool",
    ) -> None:
        super().__init__()
        if head not in ("pool", "cls"):
            raise ValueError(f"head must be 'pool' or 'cls', got {head!r}")
        self.head_kind = head
        self.embed = nn.Linear(in_features, dim)
        kw = dict(expansion=expansion, dropout=dropout)
        self.blocks = nn.ModuleList([TransformerBlock(dim, num_heads, **kw) for _ in range(num_layers)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        if head == "cls":
            self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
            nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward(self, batch: Batch) -> Tensor:
        mask = batch.mask.bool()
        h = self.embed(batch.x)  # (B, N, D)
        if self.head_kind == "cls":
            b = h.shape[0]
            h = torch.cat([self.cls_token.expand(b, 1, -1).to(h.dtype), h], dim=1)  # (B, 1 + N, D)
            mask = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=mask.device), mask], dim=1)
        attn_mask = attention_mask(mask, query_mask=mask, dtype=h.dtype)  # (B, 1, N, N)
        for block in self.blocks:
            h = block(h, attn_mask)
        pooled = h[:, 0] if self.head_kind == "cls" else masked_mean(h, mask)  # (B, D)
        return self.head(self.norm(pooled))  # (B, K)


@register_model("transformer", inputs=("x", "mask"), family="transformer", tags=("permutation",))
def transformer(
    *,
    in_features: int = 7,
    num_classes: int = 2,
    dim: int = 128,
    num_heads: int = 8,
    num_layers: int = 6,
    expansion: int = 4,
    dropout: float = 0.1,
    head: str = "pool",
) -> ParticleTransformerEncoder:
    """Transformer encoder on particles (arXiv:1706.03762), pre-LN, masked-mean or class-token head."""
    return ParticleTransformerEncoder(
        in_features=in_features, num_classes=num_classes, dim=dim, num_heads=num_heads,
        num_layers=num_layers, expansion=expansion, dropout=dropout, head=head,
    )  # fmt: skip
