"""Next-particle generative pre-training: a GPT over each jet's pT-ordered particle tokens.

OmniJet-α (Birk, Hallin, Kasieczka, arXiv:2403.05618): particles are tokenized by a learned VQ-VAE
codebook (``hepnn.models.vqvae``), each jet becomes the sequence [start, t₁, …, tₙ, stop] in
decreasing pT, and a causal transformer (GPT-2's pre-LN blocks, Radford et al. 2019; nanoGPT) learns
p(t_{i+1} | start, t₁…t_i) by next-token cross entropy. Sampling draws tokens until stop and decodes
them particle by particle into (log pT, Δη, Δφ), then four-vectors.

    s = [start, t₁, …, t_M]            M = min(n, max_particles) hardest particles, ids from the frozen tokenizer
    h = Blocks_causal(E[s] + P[0:M+1])  attention of position i on positions ≤ i only
    ``gpt_particles``:   logits = LMHead(LN(h)) over the vocabulary; loss = mean_i CE(logits_i, s_{i+1} or stop)
    ``gpt_classifier``:  logits = Head(masked_mean(LN(h)))       (fine-tuning on top vs QCD)

A jet with more than ``max_particles`` particles is cut to its hardest ones; its last position then
has no target (no stop is learned there). Both models sort the particles by pT themselves, so their
outputs do not depend on the order of the input particles.

Fine-tuning contract: ``tokenizer.*`` (frozen: requires_grad False, it never gets a gradient),
``token_embed.*``, ``pos_embed``, ``blocks.*`` and ``norm.*`` have the same names and shapes in both
models at the same settings; ``lm_head`` exists only in the generator, ``head`` only in the
classifier. ``tokenizer.*`` are also the names of a ``vqvae_particles`` run's weights, so both models
take their tokenizer from that run with ``train.init_from``.

Shapes: p4 (B, N, 4), mask (B, N) -> (B, 2) per-jet loss and next-token accuracy (``gpt_particles``),
(B, num_classes) logits (``gpt_classifier``); ``sample(n)`` -> (n, max_particles, 4) slots.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hepnn.data.batch import Batch
from hepnn.data.features import pt
from hepnn.models.vqvae import (
    CODE_DIM, CODEBOOK_SIZE, TOKENIZER_HIDDEN, ParticleTokenizer, at_least_fp32, coordinates_to_p4,
)
from hepnn.nn.attention import TransformerBlock
from hepnn.nn.layers import masked_mean
from hepnn.registry import register_model


def causal_mask(seq_mask: Tensor, dtype: torch.dtype) -> Tensor:
    """Float attention mask: 0 where key j ≤ query i and j is real, −inf elsewhere.

    Row i always keeps key 0 (the start token), so no row is all −inf.
    Shapes: seq_mask (B, L) -> (B, 1, L, L).
    """
    n = seq_mask.shape[1]
    allowed = torch.ones(n, n, dtype=torch.bool, device=seq_mask.device).tril() & seq_mask[:, None, :]  # (B, L, L)
    neg = torch.zeros(allowed.shape, dtype=dtype, device=seq_mask.device).masked_fill(~allowed, float("-inf"))
    return neg.unsqueeze(1)


class TokenTransformer(nn.Module):
    """The shared backbone: frozen tokenizer, token and position embeddings, causal blocks, final LN.

    Args:
        codebook_size, code_dim, tokenizer_hidden: the tokenizer's (those of the ``vqvae_particles`` run).
        dim, num_heads, num_layers, expansion, dropout: the transformer's.
        max_particles: longest particle sequence M (positions 0..M with the start token).
    """

    def __init__(self, *, codebook_size: int, code_dim: int, tokenizer_hidden: Sequence[int], dim: int,
                 num_heads: int, num_layers: int, expansion: int, dropout: float, max_particles: int) -> None:
        super().__init__()
        self.dim, self.max_particles = dim, max_particles
        self.start_id, self.stop_id = codebook_size, codebook_size + 1
        self.tokenizer = ParticleTokenizer(codebook_size=codebook_size, code_dim=code_dim, hidden=tokenizer_hidden)
        self.tokenizer.requires_grad_(False)  # trained by the VQ-VAE run; token ids carry no gradient anyway
        self.token_embed = nn.Embedding(codebook_size + 2, dim)  # K codes, start, stop
        self.pos_embed = nn.Parameter(torch.zeros(1, max_particles + 1, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        kw = dict(expansion=expansion, dropout=dropout)
        self.blocks = nn.ModuleList([TransformerBlock(dim, num_heads, **kw) for _ in range(num_layers)])
        self.norm = nn.LayerNorm(dim)

    def sequence(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor]:
        """Token ids [start, t₁…t_M] in decreasing pT, their mask, and which jets were cut.

        Shapes: -> ids (B, L) long, seq_mask (B, L) bool with L = min(N, M) + 1, truncated (B,) bool.
        """
        p4, mask = batch.p4, batch.mask.bool()
        order = pt(p4).masked_fill(~mask, float("-inf")).argsort(dim=1, descending=True)  # (B, N); ONNX: no stable sort
        p4 = p4.gather(1, order.unsqueeze(-1).expand_as(p4))
        mask = mask.gather(1, order)
        ids = self.tokenizer.tokenize(p4, mask)[:, : self.max_particles]  # jet axis from every particle
        b = ids.shape[0]
        start = torch.full((b, 1), self.start_id, dtype=torch.long, device=ids.device)
        ids = torch.cat([start, ids.clamp(min=0)], dim=1)  # (B, L); padding holds id 0 behind its mask
        seq_mask = torch.cat([torch.ones_like(mask[:, :1]), mask[:, : self.max_particles]], dim=1)  # (B, L)
        return ids, seq_mask, mask.sum(dim=1) > self.max_particles

    def encode(self, ids: Tensor, seq_mask: Tensor) -> Tensor:
        """Causal transformer states. ids (B, L), seq_mask (B, L) -> (B, L, D)."""
        h = self.token_embed(ids) + self.pos_embed[:, : ids.shape[1]]  # (B, L, D)
        attn_mask = causal_mask(seq_mask, h.dtype)  # (B, 1, L, L)
        for block in self.blocks:
            h = block(h, attn_mask)
        return self.norm(h)


class ParticleGPT(TokenTransformer):
    """The generator: next-token logits over the vocabulary (module doc); samples jets.

    ``space``, ``k``, ``sample`` and ``to_p4`` are the generative-model protocol of ``ddpm_particles``
    (``hepnn.sample``, ``hepnn.evaluate.unsupervised``).
    """

    task = "next_particle"
    log_names = ("accuracy",)  # forward's columns after the loss
    space = "particles"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.k = self.max_particles  # the generated jets hold at most this many particles
        self.lm_head = nn.Linear(self.dim, self.stop_id + 1)  # the vocabulary: K codes, start (never a target), stop

    def forward(self, batch: Batch) -> Tensor:
        """Per-jet mean next-token cross entropy and accuracy over the predicted positions. -> (B, 2)."""
        ids, seq_mask, truncated = self.sequence(batch)
        logits = at_least_fp32(self.lm_head(self.encode(ids, seq_mask)))  # (B, L, K + 2)
        n = seq_mask.sum(dim=1) - 1  # (B,) particles in the sequence; position n predicts stop
        target = torch.cat([ids[:, 1:], ids[:, :1]], dim=1)  # (B, L): the next id (the wrapped slot is replaced)
        last = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0) == n.unsqueeze(1)  # (B, L)
        target = target.masked_fill(last, self.stop_id)
        valid = seq_mask & ~(last & truncated.unsqueeze(1))  # a cut jet does not stop where it was cut
        ce = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")  # (B, L)
        hit = (logits.argmax(dim=-1) == target).to(ce.dtype)
        w = valid.to(ce.dtype)
        count = w.sum(dim=1).clamp(min=1)
        return torch.stack([(ce * w).sum(dim=1) / count, (hit * w).sum(dim=1) / count], dim=1)

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        """``n`` jets drawn token by token: (n, M, 4) slots (log pT, Δη, Δφ scaled, exists = ±1).

        The first token is never stop (a jet has at least one particle); a sequence that reaches M
        particles ends there. Finished sequences leave the batch.
        """
        device = self.pos_embed.device
        seq = torch.full((n, self.max_particles + 1), self.start_id, dtype=torch.long, device=device)
        alive = torch.arange(n, device=device)  # indices of unfinished sequences
        length = torch.zeros(n, dtype=torch.long, device=device)  # particles drawn per jet
        for step in range(self.max_particles):
            if alive.numel() == 0:
                break
            ids = seq[alive, : step + 1]  # (A, step + 1), every position real
            h = self.encode(ids, torch.ones_like(ids, dtype=torch.bool))[:, -1]  # (A, D)
            logits = self.lm_head(h).float() / temperature  # (A, K + 2)
            logits[:, self.start_id] = float("-inf")  # never a target, but never drawn either
            if step == 0:
                logits[:, self.stop_id] = float("-inf")
            nxt = torch.multinomial(logits.softmax(dim=-1), 1).squeeze(1)  # (A,)
            go = nxt != self.stop_id
            seq[alive[go], step + 1] = nxt[go]
            length[alive[go]] += 1
            alive = alive[go]
        tokens = seq[:, 1:]  # (n, M)
        exists = torch.arange(self.max_particles, device=device).unsqueeze(0) < length.unsqueeze(1)  # (n, M)
        coords = self.tokenizer.decode(tokens.masked_fill(~exists, 0)) * exists.unsqueeze(-1)  # (n, M, 3)
        return torch.cat([coords, exists.unsqueeze(-1).to(coords.dtype) * 2 - 1], dim=-1)

    def to_p4(self, slots: Tensor) -> tuple[Tensor, Tensor]:
        """(n, M, 4) slots -> four-vectors (n, M, 4) (E, px, py, pz) and mask (n, M), pT-ordered."""
        mask = slots[..., 3] > 0
        p4 = coordinates_to_p4(slots[..., :3]) * mask.unsqueeze(-1)
        order = torch.argsort(pt(p4), dim=1, descending=True, stable=True)
        return p4.gather(1, order.unsqueeze(-1).expand_as(p4)), mask.gather(1, order)


class GPTClassifier(TokenTransformer):
    """The generator's backbone with a classification head on the masked mean of its states."""

    def __init__(self, *, num_classes: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.head = nn.Linear(self.dim, num_classes)

    def forward(self, batch: Batch) -> Tensor:
        ids, seq_mask, _ = self.sequence(batch)
        h = self.encode(ids, seq_mask)  # (B, L, D)
        return self.head(masked_mean(h, seq_mask))  # (B, num_classes)


# ----------------------------------------------------------------------------- registered variants
# CPU-sized defaults; the generator and the classifier must be built with the same settings.


@register_model("gpt_particles", inputs=("p4", "mask"), family="generative", tags=("permutation",), kind="generative")
def gpt_particles(*, codebook_size: int = CODEBOOK_SIZE, code_dim: int = CODE_DIM,
                  tokenizer_hidden: Sequence[int] = TOKENIZER_HIDDEN, dim: int = 64, num_heads: int = 4,
                  num_layers: int = 3, expansion: int = 2, dropout: float = 0.0,
                  max_particles: int = 128) -> ParticleGPT:
    """Next-particle GPT over VQ-VAE particle tokens, a jet generator (OmniJet-α, arXiv:2403.05618)."""
    return ParticleGPT(codebook_size=codebook_size, code_dim=code_dim, tokenizer_hidden=tokenizer_hidden, dim=dim,
                       num_heads=num_heads, num_layers=num_layers, expansion=expansion, dropout=dropout,
                       max_particles=max_particles)


@register_model("gpt_classifier", inputs=("p4", "mask"), family="transformer", tags=("permutation",))
def gpt_classifier(*, num_classes: int = 2, codebook_size: int = CODEBOOK_SIZE, code_dim: int = CODE_DIM,
                   tokenizer_hidden: Sequence[int] = TOKENIZER_HIDDEN, dim: int = 64, num_heads: int = 4,
                   num_layers: int = 3, expansion: int = 2, dropout: float = 0.0,
                   max_particles: int = 128) -> GPTClassifier:
    """Classifier on the next-particle GPT's backbone (OmniJet-α fine-tuning, arXiv:2403.05618)."""
    return GPTClassifier(num_classes=num_classes, codebook_size=codebook_size, code_dim=code_dim,
                         tokenizer_hidden=tokenizer_hidden, dim=dim, num_heads=num_heads, num_layers=num_layers,
                         expansion=expansion, dropout=dropout, max_particles=max_particles)
