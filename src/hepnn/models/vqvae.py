"""VQ-VAE particle tokenizer: each particle's (log pT, Δη, Δφ) becomes one of K codebook entries.

van den Oord, Vinyals, Kavukcuoglu, "Neural Discrete Representation Learning", arXiv:1711.00937,
with l2-normalized, low-dimensional codes (Yu et al., ViT-VQGAN, arXiv:2110.04627), which keeps most
of the codebook in use without restarts; the tokenizer stage of OmniJet-α (Birk, Hallin, Kasieczka,
arXiv:2403.05618), here per particle (a token decodes without context, so generated token sequences
decode particle by particle).

    c   = coordinates(p)                    (log pT − 1) / 2, Δη / 0.4, Δφ / 0.4 to the jet axis
    z_e = normalize(Enc(c))                 (B, N, d), on the unit sphere
    k   = argmax_j z_e · ê_j                ê_j = normalize(codebook_j): the token id (B, N)
    z_q = z_e + sg(ê_k − z_e)               straight-through: the decoder's gradient reaches Enc
    ĉ   = Dec(z_q)
    L   = ||ĉ − c||² / 3 + ||sg(z_e) − ê_k||² + β ||z_e − sg(ê_k)||²     mean over real particles

The jet axis is the sum of the jet's real particles; ``coordinates_to_p4`` maps coordinates back to
massless four-vectors with the axis at η = φ = 0 (the representation of ``ddpm_particles``).

Shapes: p4 (B, N, 4), mask (B, N) -> coordinates (B, N, 3), token ids (B, N) (−1 at padding);
``ParticleVQVAE.forward`` -> (B, 4): per-jet loss, reconstruction, commitment, codes used.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hepnn.data import features as kin
from hepnn.data.batch import Batch
from hepnn.nn.layers import mlp
from hepnn.registry import register_model

LOGPT = (1.0, 2.0)  # log(pT / GeV) shift and scale
ANGLE = 0.4  # Δη, Δφ scale (jets of radius 0.8)
# defaults shared with the GPT models, whose frozen tokenizer must have this one's shapes
CODEBOOK_SIZE, CODE_DIM, TOKENIZER_HIDDEN = 512, 4, (128, 128)


def at_least_fp32(t: Tensor) -> Tensor:
    """``t`` in float32, or float64 if it is: losses never in bf16/fp16 (autocast), never rounded down."""
    return t if t.dtype == torch.float64 else t.float()


def particle_coordinates(p4: Tensor, mask: Tensor) -> Tensor:
    """Scaled (log pT, Δη, Δφ) of each particle relative to its jet's axis; 0 at padding.

    Shapes: p4 (B, N, 4), mask (B, N) -> (B, N, 3).
    """
    jet = kin.jet_p4(p4, mask)  # (B, 4)
    safe = torch.where(mask.unsqueeze(-1), p4, p4.new_tensor([1.0, 1.0, 0.0, 0.0]))  # padding: pT 1, η = φ = 0
    deta = kin.eta(safe) - kin.eta(jet).unsqueeze(1)
    dphi = kin.wrap_phi(kin.phi(safe) - kin.phi(jet).unsqueeze(1))
    logpt = (torch.log(kin.pt(safe)) - LOGPT[0]) / LOGPT[1]
    coords = torch.stack([logpt, deta / ANGLE, dphi / ANGLE], dim=-1)  # (B, N, 3)
    return coords * mask.unsqueeze(-1).to(coords.dtype)


def coordinates_to_p4(coords: Tensor) -> Tensor:
    """Massless four-vectors (E, px, py, pz) from scaled (log pT, Δη, Δφ). (..., 3) -> (..., 4)."""
    pt = torch.exp(coords[..., 0] * LOGPT[1] + LOGPT[0])
    eta, phi = coords[..., 1] * ANGLE, coords[..., 2] * ANGLE
    return torch.stack([pt * torch.cosh(eta), pt * torch.cos(phi), pt * torch.sin(phi), pt * torch.sinh(eta)], dim=-1)


class ParticleTokenizer(nn.Module):
    """Per-particle encoder, l2-normalized codebook and decoder (module doc).

    Args:
        codebook_size: number of tokens K. code_dim: dimension d of the codes.
        hidden: widths of the encoder MLP (the decoder mirrors them).
    """

    def __init__(self, *, codebook_size: int, code_dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.encoder = mlp([3, *hidden, code_dim], act="gelu")
        self.codebook = nn.Parameter(torch.randn(codebook_size, code_dim))  # uniform directions on the sphere
        self.decoder = mlp([code_dim, *reversed(hidden), 3], act="gelu")

    def encode(self, coords: Tensor) -> Tensor:
        """z_e on the unit sphere. (..., 3) -> (..., d)."""
        return F.normalize(self.encoder(coords), dim=-1)

    def codes(self) -> Tensor:
        """The normalized codebook ê. -> (K, d)."""
        return F.normalize(self.codebook, dim=-1)

    def quantize(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Nearest code (largest cosine) of each z: (ids (...), ê_ids (..., d))."""
        codes = self.codes().to(z.dtype)
        ids = (z @ codes.T).argmax(dim=-1)
        return ids, codes[ids]

    def decode(self, ids: Tensor) -> Tensor:
        """Coordinates of token ids. (...) -> (..., 3)."""
        return self.decoder(self.codes()[ids])

    @torch.no_grad()
    def tokenize(self, p4: Tensor, mask: Tensor) -> Tensor:
        """Token id of every real particle, −1 at padding. (B, N, 4), (B, N) -> (B, N) long."""
        ids, _ = self.quantize(self.encode(particle_coordinates(p4, mask)))
        return ids.masked_fill(~mask, -1)


class ParticleVQVAE(nn.Module):
    """The tokenizer trained as a VQ-VAE (``train.task: vqvae``); its weights are ``tokenizer.*``,
    the names the GPT models (``gpt_particles``, ``gpt_classifier``) hold their frozen tokenizer under.

    Dead codes are split off popular ones (the LBG splitting of vector quantization, Linde, Buzo,
    Gray 1980): ``usage`` is an exponential moving average of each code's share of the particles; at
    the start of every training step a code whose share fell below ``dead_share / K`` is moved next
    to one of the most used codes (a small, seeded perturbation), and the two share its usage. A
    code that nothing is near gets no gradient and would stay unused for good; after the split both
    halves take part of a dense region. The decision uses the step's incoming ``usage`` and
    ``steps`` buffers and the codebook only, which DDP keeps equal on every rank.

    Args:
        codebook_size, code_dim, hidden: the tokenizer's. beta: commitment weight β (0.25 in arXiv:1711.00937).
        dead_share: a code is dead below this fraction of the uniform share 1 / K.
        usage_decay: decay of the usage average per step.
    """

    task = "vqvae"
    log_names = ("recon", "commit", "codes_used")  # forward's columns after the loss

    def __init__(self, *, codebook_size: int, code_dim: int, hidden: Sequence[int], beta: float = 0.25,
                 dead_share: float = 0.1, usage_decay: float = 0.95) -> None:
        super().__init__()
        self.beta, self.dead_share, self.usage_decay = beta, dead_share, usage_decay
        self.tokenizer = ParticleTokenizer(codebook_size=codebook_size, code_dim=code_dim, hidden=hidden)
        self.register_buffer("usage", torch.full((codebook_size,), 1.0 / codebook_size))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def split_dead_codes(self) -> int:
        """Move each dead code next to one of the most used codes (class doc); returns how many moved."""
        k = self.tokenizer.codebook_size
        dead = (self.usage < self.dead_share / k).nonzero().squeeze(1)
        dead = dead[: k - dead.numel()]  # at most as many as there are live codes to split
        if dead.numel() == 0:
            return 0
        src = self.usage.argsort(descending=True, stable=True)[: dead.numel()]
        book = self.tokenizer.codebook
        g = torch.Generator(device=book.device).manual_seed(int(self.steps))
        noise = torch.randn(dead.numel(), book.shape[1], generator=g, device=book.device, dtype=book.dtype)
        book[dead] = book[src] + 0.02 * book[src].norm(dim=1, keepdim=True) * noise
        self.usage[src] /= 2
        self.usage[dead] = self.usage[src]
        return int(dead.numel())

    def forward(self, batch: Batch) -> Tensor:
        """Per-jet loss and diagnostics, means over the jet's real particles. -> (B, 4)."""
        if self.training:
            self.split_dead_codes()
        mask = batch.mask.bool()
        coords = particle_coordinates(batch.p4, mask)  # (B, N, 3)
        z = self.tokenizer.encode(coords)  # (B, N, d)
        ids, e = self.tokenizer.quantize(z)
        recon = self.tokenizer.decoder(z + (e - z).detach())  # straight-through estimator
        rec = (at_least_fp32(recon) - coords).pow(2).mean(dim=-1)  # (B, N)
        codebook = at_least_fp32(z.detach() - e).pow(2).sum(dim=-1)  # moves the codes to the encodings
        commit = at_least_fp32(z - e.detach()).pow(2).sum(dim=-1)  # keeps the encodings near their codes
        w = mask.to(rec.dtype)
        n = w.sum(dim=1).clamp(min=1)

        def per_jet(t: Tensor) -> Tensor:
            return (t * w).sum(dim=1) / n  # (B,)

        loss = per_jet(rec + codebook + self.beta * commit)
        real_ids = ids[mask]
        if self.training:
            with torch.no_grad():
                share = torch.bincount(real_ids, minlength=self.usage.numel()).to(self.usage.dtype)
                self.usage.mul_(self.usage_decay).add_(share / max(real_ids.numel(), 1), alpha=1 - self.usage_decay)
                self.steps += 1
        used = real_ids.unique().numel() * torch.ones_like(loss)  # codes used in this batch, on every jet
        return torch.stack([loss, per_jet(rec).detach(), per_jet(commit).detach(), used], dim=1)


@register_model("vqvae_particles", inputs=("p4", "mask"), family="pretrain", tags=("permutation",))
def vqvae_particles(*, codebook_size: int = CODEBOOK_SIZE, code_dim: int = CODE_DIM,
                    hidden: Sequence[int] = TOKENIZER_HIDDEN, beta: float = 0.25, dead_share: float = 0.1,
                    usage_decay: float = 0.95) -> ParticleVQVAE:
    """VQ-VAE particle tokenizer (arXiv:1711.00937) for next-particle pre-training (arXiv:2403.05618)."""
    return ParticleVQVAE(codebook_size=codebook_size, code_dim=code_dim, hidden=hidden, beta=beta,
                         dead_share=dead_share, usage_decay=usage_decay)
