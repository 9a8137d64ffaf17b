"""Masked particle modeling (MPM): hide some of a jet's particles and predict them from the rest.

Golling, Heinrich, Kagan, Klein, Leigh, Osadchy, Raine, "Masked particle modeling on sets",
arXiv:2401.13537; the regression target (the hidden particles' own standardized features rather
than VQ-VAE token ids) is one of the tokenization-free targets of Leigh et al., arXiv:2409.12589.

    H ⊂ real particles, |H| = clamp(round(f · n), 1, max(n − 1, 1)) per jet   (f = mask_fraction)
    h⁰_i = Embed(x_i)              i visible
    h⁰_i = m + R(r_i)              i hidden: a learned mask token m plus an embedding of its pT rank r_i
    U_ij = PairEmbed(p_i, p_j)     ParT only: visible pairs; U_ij = 0 where i or j is hidden
    h = Blocks(h⁰, U)              the downstream classifier's backbone
    x̂_i = Predictor(h_i)          loss per jet = mean over i ∈ H of ||x̂_i − x_i||² / C

Nothing of a hidden particle but its pT rank reaches the network: its features are replaced by the
mask token, its four-momentum is zeroed before the pair features and its pairs get no bias. The rank
is given on purpose: in a permutation-equivariant network every mask token of a jet is the same
input, so without it all hidden particles of a jet would get one identical prediction (2401.13537
studies this ordering question). The rank says "the 3rd hardest particle is missing", which bounds
its pT between its visible neighbours' and nothing else.

Which particles are hidden: a fresh uniform draw per jet while training; in evaluation a fixed
pseudo-random number hashed from each particle's four-momentum, so the validation loss is the same
every epoch and does not depend on padding or on the order of the particles.

Fine-tuning contract: ``embed``, ``pair_embed`` and ``blocks`` are built by the downstream model's
own constructor (``ParticleTransformer`` / ``ParticleTransformerEncoder``), so their state-dict
names and shapes are exactly those of ``part_lite`` / ``part`` / ``transformer`` at the same
settings. ``mask_token``, ``rank_embed`` and ``predictor`` exist only here; the classifier's
``cls_blocks``, ``cls_token``, ``norm`` and ``head`` start new.

Shapes: x (B, N, C), p4 (B, N, 4), mask (B, N), hidden (B, N) -> (B, 1) per-jet loss (``forward``),
(B, N, C) predictions (``predict``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import torch
from torch import Tensor, nn

from hepnn.data.batch import Batch
from hepnn.data.features import pt
from hepnn.data.pair_features import pair_features
from hepnn.models.part import PAIR_NAMES, ParticleTransformer
from hepnn.models.transformer import ParticleTransformerEncoder
from hepnn.models.vqvae import at_least_fp32
from hepnn.nn.attention import attention_mask
from hepnn.registry import register_model, register_variant


def choose_hidden(mask: Tensor, fraction: float, noise: Tensor) -> Tensor:
    """The ``clamp(round(f n), 1, max(n − 1, 1))`` real particles of each jet with the smallest ``noise``.

    Shapes: mask (B, N) bool, noise (B, N) -> hidden (B, N) bool (a subset of ``mask``).
    """
    n = mask.sum(dim=1)  # (B,)
    k = torch.round(fraction * n.double()).long().clamp(min=1)
    k = torch.minimum(k, (n - 1).clamp(min=1)) * (n > 0)  # keep one particle visible when there are two
    order = noise.masked_fill(~mask, float("inf")).argsort(dim=1)  # (B, N), real first
    return _inverse(order) < k.unsqueeze(1)  # the position of each particle in its jet's noise order


def particle_hash(p4: Tensor) -> Tensor:
    """A fixed pseudo-random number in [0, 1) per particle: frac(p · w) in float64.

    The weights are large and incommensurate, so the fractional part spreads over [0, 1) even for
    soft particles, and plain multiply-adds (no transcendental function of a large argument, whose
    last bits differ between PyTorch, ONNX Runtime and GPUs) keep it the same number everywhere.

    Shapes: p4 (B, N, 4) -> (B, N).
    """
    w = torch.tensor([31.41592653, 27.18281828, 14.14213562, 17.32050808], dtype=torch.float64, device=p4.device)
    s = p4.double() @ w
    return s - torch.floor(s)


def pt_rank(p4: Tensor, mask: Tensor) -> Tensor:
    """0 for the hardest real particle of each jet, 1 for the next, ...; padding ranks last.

    Shapes: p4 (B, N, 4), mask (B, N) -> (B, N) long.
    """
    key = pt(p4.double()).masked_fill(~mask, float("-inf"))
    return _inverse(key.argsort(dim=1, descending=True))


def _inverse(order: Tensor) -> Tensor:
    """The inverse of each row's permutation: ``inv[b, order[b, i]] = i``. (B, N) -> (B, N).

    Sorts are not stable (ONNX has no stable sort); ties (equal pT) are rare and harmless here."""
    pos = torch.arange(order.shape[1], device=order.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, pos)


class MaskedParticleModel(nn.Module, ABC):
    """Shared part of the MPM models: which particles hide, the mask token, predictor and loss.

    A subclass holds the backbone and implements ``encode(batch, hidden) -> (B, N, D)``, calling
    ``hide`` on its embedded particles before the first block.

    Args:
        in_features: per-particle features C (the prediction target). dim: backbone width D.
        mask_fraction: fraction f of each jet's particles hidden (see the module doc).
        num_ranks: size of the pT-rank table; ranks beyond it share the last entry.
    """

    task = "masked_particles"  # the train.task this model is trained by
    log_names: tuple[str, ...] = ()  # forward returns the loss only

    def __init__(self, *, in_features: int, dim: int, mask_fraction: float, num_ranks: int) -> None:
        super().__init__()
        if not 0.0 < mask_fraction < 1.0:
            raise ValueError(f"mask_fraction must lie in (0, 1), got {mask_fraction}")
        self.mask_fraction = mask_fraction
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.rank_embed = nn.Embedding(num_ranks, dim)
        nn.init.trunc_normal_(self.rank_embed.weight, std=0.02)
        self.predictor = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, in_features))

    def hidden(self, batch: Batch) -> Tensor:
        """The particles to hide: random while training, hashed from p4 in evaluation. -> (B, N) bool."""
        mask = batch.mask.bool()
        noise = torch.rand(mask.shape, device=mask.device) if self.training else particle_hash(batch.p4)
        return choose_hidden(mask, self.mask_fraction, noise)

    def hide(self, h: Tensor, batch: Batch, hidden: Tensor) -> Tensor:
        """Replace the hidden particles' embeddings by the mask token plus their pT-rank embedding."""
        rank = pt_rank(batch.p4, batch.mask.bool()).clamp(max=self.rank_embed.num_embeddings - 1)
        token = self.mask_token.to(h.dtype) + self.rank_embed(rank).to(h.dtype)  # (B, N, D)
        return torch.where(hidden.unsqueeze(-1), token, h)

    @abstractmethod
    def encode(self, batch: Batch, hidden: Tensor) -> Tensor:
        """Per-particle representations with ``hidden`` hidden. -> (B, N, D)."""

    def predict(self, batch: Batch, hidden: Tensor) -> Tensor:
        """Predicted features at every slot (meaningful at the hidden ones). -> (B, N, C)."""
        return self.predictor(self.encode(batch, hidden))

    def forward(self, batch: Batch, hidden: Tensor | None = None) -> Tensor:
        """Per-jet mean squared error over the hidden particles' features. -> (B, 1)."""
        hidden = self.hidden(batch) if hidden is None else hidden & batch.mask.bool()
        err = (at_least_fp32(self.predict(batch, hidden)) - batch.x).pow(2).mean(dim=-1)  # (B, N)
        w = hidden.to(err.dtype)
        return ((err * w).sum(dim=1) / w.sum(dim=1).clamp(min=1)).unsqueeze(1)  # (B, 1)


class MaskedParT(MaskedParticleModel):
    """MPM with the Particle Transformer's backbone (arXiv:2202.03772): embedding, pair embedding
    and particle-attention blocks, exactly as ``ParticleTransformer`` builds them."""

    def __init__(self, *, in_features: int, embed_dims: Sequence[int], pair_embed_dims: Sequence[int],
                 num_heads: int, num_layers: int, expansion: int, dropout: float, mask_fraction: float,
                 num_ranks: int) -> None:
        super().__init__(in_features=in_features, dim=embed_dims[-1], mask_fraction=mask_fraction,
                         num_ranks=num_ranks)
        # ParT's own constructor builds the backbone, so the names and shapes are ParT's by construction
        donor = ParticleTransformer(in_features=in_features, num_classes=1, embed_dims=embed_dims,
                                    pair_embed_dims=pair_embed_dims, num_heads=num_heads, num_layers=num_layers,
                                    num_cls_layers=0, expansion=expansion, dropout=dropout)
        self.embed, self.pair_embed, self.blocks = donor.embed, donor.pair_embed, donor.blocks

    def encode(self, batch: Batch, hidden: Tensor) -> Tensor:
        x, mask = batch.x, batch.mask.bool()
        visible = mask & ~hidden
        p4 = batch.p4.to(x.dtype) * visible.unsqueeze(-1).to(x.dtype)  # hidden momenta never enter
        vis_pairs = visible[:, :, None] & visible[:, None, :]  # (B, N, N)
        u = self.pair_embed(pair_features(p4, visible, PAIR_NAMES), vis_pairs)  # (B, H, N, N)
        u = u.masked_fill(~vis_pairs.unsqueeze(1), 0.0)  # no bias on pairs with a hidden particle
        attn_mask = attention_mask(mask, query_mask=mask, bias=u)  # (B, H, N, N)
        h = self.hide(self.embed(x), batch, hidden)  # (B, N, D)
        for block in self.blocks:
            h = block(h, attn_mask)
        return h


class MaskedTransformer(MaskedParticleModel):
    """MPM with the plain transformer encoder's backbone (arXiv:1706.03762): Linear embedding and
    pre-LN blocks, exactly as ``ParticleTransformerEncoder`` builds them."""

    def __init__(self, *, in_features: int, dim: int, num_heads: int, num_layers: int, expansion: int,
                 dropout: float, mask_fraction: float, num_ranks: int) -> None:
        super().__init__(in_features=in_features, dim=dim, mask_fraction=mask_fraction, num_ranks=num_ranks)
        donor = ParticleTransformerEncoder(in_features=in_features, num_classes=1, dim=dim, num_heads=num_heads,
                                           num_layers=num_layers, expansion=expansion, dropout=dropout)
        self.embed, self.blocks = donor.embed, donor.blocks

    def encode(self, batch: Batch, hidden: Tensor) -> Tensor:
        mask = batch.mask.bool()
        h = self.hide(self.embed(batch.x), batch, hidden)  # (B, N, D)
        attn_mask = attention_mask(mask, query_mask=mask, dtype=h.dtype)  # (B, 1, N, N)
        for block in self.blocks:
            h = block(h, attn_mask)
        return h


# ----------------------------------------------------------------------------- registered variants
# Each variant's defaults are those of the classifier it pre-trains (part, part_lite, transformer).


@register_model("mpm_part", inputs=("x", "mask", "p4"), family="pretrain", tags=("permutation",))
def mpm_part(*, in_features: int = 7, embed_dims: Sequence[int] = (128, 512, 128),
             pair_embed_dims: Sequence[int] = (64, 64, 64), num_heads: int = 8, num_layers: int = 8,
             expansion: int = 4, dropout: float = 0.1, mask_fraction: float = 0.3, num_ranks: int = 128) -> MaskedParT:
    """Masked particle modeling (arXiv:2401.13537) with ParT's backbone at the paper's size (for ``part``)."""
    return MaskedParT(in_features=in_features, embed_dims=embed_dims, pair_embed_dims=pair_embed_dims,
                      num_heads=num_heads, num_layers=num_layers, expansion=expansion, dropout=dropout,
                      mask_fraction=mask_fraction, num_ranks=num_ranks)


register_variant("mpm_part_lite", of="mpm_part", embed_dims=(64, 64), pair_embed_dims=(32, 32), num_heads=4,
                 num_layers=3, expansion=2, dropout=0.0,
                 doc="Masked particle modeling (arXiv:2401.13537) with ParT-lite's backbone (for ``part_lite``).")


@register_model("mpm_transformer", inputs=("x", "mask", "p4"), family="pretrain", tags=("permutation",))
def mpm_transformer(*, in_features: int = 7, dim: int = 128, num_heads: int = 8, num_layers: int = 6,
                    expansion: int = 4, dropout: float = 0.1, mask_fraction: float = 0.3,
                    num_ranks: int = 128) -> MaskedTransformer:
    """Masked particle modeling (arXiv:2401.13537) with the transformer encoder's backbone (for ``transformer``)."""
    return MaskedTransformer(in_features=in_features, dim=dim, num_heads=num_heads, num_layers=num_layers,
                             expansion=expansion, dropout=dropout, mask_fraction=mask_fraction, num_ranks=num_ranks)
