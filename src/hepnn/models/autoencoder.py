"""Autoencoders for anomaly detection: jet features, constituent sets, jet images, and a VAE.

Trained on background (QCD) only, an autoencoder reconstructs background well and anything else
(tops) badly, so the per-jet reconstruction error is an anomaly score that needs no signal labels:
Heimel, Kasieczka, Plehn, Thompson, "QCD or What?", arXiv:1808.08979; Farina, Nakai, Shih,
"Searching for New Physics with Deep Autoencoders", arXiv:1808.08992. The VAE (Kingma & Welling,
arXiv:1312.6114) adds a Gaussian latent space, so −ELBO is the score and the decoder is a generator.

Every model here reconstructs one Batch field: ``forward(batch)`` returns the reconstruction and
``target(batch)`` what it should equal (same shape); the tasks in
``hepnn.train.tasks_unsupervised`` compare the two. ``field`` names the input a denoising task
corrupts.

Shapes: jet (B, F) -> (B, F); x (B, N, C), mask (B, N) -> (B, K, C) for the K hardest particles;
image (B, 1, H, W) -> (B, 1, H, W).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from hepnn.data.batch import Batch
from hepnn.nn.layers import activation, masked_sum, mlp
from hepnn.registry import register_model


class JetAE(nn.Module):
    """Dense autoencoder on jet-level features with a narrow bottleneck. jet (B, F) -> (B, F)."""

    field = "jet"

    def __init__(self, *, jet_features: int, hidden: Sequence[int] = (32, 32), latent: int = 2,
                 act: str = "relu") -> None:
        super().__init__()
        self.latent_dim = latent
        self.encoder = mlp([jet_features, *hidden, latent], act=act)
        self.decoder = mlp([latent, *reversed(hidden), jet_features], act=act)

    def encode(self, batch: Batch) -> torch.Tensor:
        return self.encoder(batch.jet)  # (B, latent)

    def target(self, batch: Batch) -> torch.Tensor:
        return batch.jet

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.decoder(self.encode(batch))  # (B, F)


class SetAE(nn.Module):
    """Particle-set autoencoder: a PFN (Deep Sets) encoder, a dense decoder of the K hardest particles.

    The encoder sums a per-particle network over real particles only (permutation and padding
    invariant, arXiv:1810.05165); the decoder emits the features of the ``k`` hardest particles in pT
    order (the loader sorts constituents by pT), with zeros where a jet has fewer than ``k``.
    """

    field = "x"

    def __init__(self, *, in_features: int, k: int = 20, phi: Sequence[int] = (64, 64), latent: int = 8,
                 hidden: Sequence[int] = (64, 128), act: str = "relu") -> None:
        super().__init__()
        self.k, self.latent_dim = k, latent
        self.phi = mlp([in_features, *phi], act=act, final_act=True)
        self.to_latent = mlp([phi[-1], latent], act=act)
        self.decoder = mlp([latent, *hidden, k * in_features], act=act)

    def encode(self, batch: Batch) -> torch.Tensor:
        h = masked_sum(self.phi(batch.x), batch.mask)  # (B, N, H) -> (B, H)
        return self.to_latent(h)  # (B, latent)

    def target(self, batch: Batch) -> torch.Tensor:
        x = batch.x * batch.mask.unsqueeze(-1).to(batch.x.dtype)  # padded rows exactly 0
        b, n, c = x.shape
        if n < self.k:
            x = torch.cat([x, x.new_zeros(b, self.k - n, c)], dim=1)
        return x[:, : self.k]  # (B, K, C)

    def forward(self, batch: Batch) -> torch.Tensor:
        out = self.decoder(self.encode(batch))  # (B, K*C)
        return out.view(out.shape[0], self.k, -1)  # (B, K, C)


class ConvAE(nn.Module):
    """Convolutional autoencoder on jet images: two stride-2 convolutions down, two transposed up.

    Jet-image autoencoders for top anomalies: arXiv:1808.08979. ``image_size`` must be divisible by 4.
    """

    field = "image"

    def __init__(self, *, image_size: int, channels: Sequence[int] = (8, 16), latent: int = 16,
                 act: str = "relu") -> None:
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size must be divisible by 4 for ConvAE, got {image_size}")
        c1, c2 = channels
        self.latent_dim, self.side = latent, image_size // 4
        flat = c2 * self.side * self.side
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, 3, stride=2, padding=1), activation(act),  # (B, c1, H/2, W/2)
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), activation(act),  # (B, c2, H/4, W/4)
            nn.Flatten(), nn.Linear(flat, latent),
        )
        self.expand = nn.Sequential(nn.Linear(latent, flat), activation(act))
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), activation(act),  # (B, c1, H/2, W/2)
            nn.ConvTranspose2d(c1, 1, 4, stride=2, padding=1),  # (B, 1, H, W)
        )
        self.c2 = c2

    def encode(self, batch: Batch) -> torch.Tensor:
        return self.encoder(batch.image)  # (B, latent)

    def target(self, batch: Batch) -> torch.Tensor:
        return batch.image

    def forward(self, batch: Batch) -> torch.Tensor:
        h = self.expand(self.encode(batch)).view(-1, self.c2, self.side, self.side)  # (B, c2, H/4, W/4)
        return self.decoder(h)  # (B, 1, H, W)


class JetVAE(nn.Module):
    """Variational autoencoder on jet-level features (arXiv:1312.6114), also a jet generator.

    q(z|x) = N(mu(x), diag exp(logvar(x))), p(z) = N(0, 1), p(x|z) = N(decoder(z), 1). ``forward``
    decodes a reparameterized sample while training and the mean mu when evaluating (deterministic).
    """

    field = "jet"
    space = "jet"  # what ``sample`` returns: preprocessed jet-level features (n, F)

    def __init__(self, *, jet_features: int, hidden: Sequence[int] = (64, 64), latent: int = 2,
                 act: str = "relu") -> None:
        super().__init__()
        self.latent_dim = latent
        self.body = mlp([jet_features, *hidden], act=act, final_act=True)
        self.mu = nn.Linear(hidden[-1], latent)
        self.logvar = nn.Linear(hidden[-1], latent)
        self.decoder = mlp([latent, *reversed(hidden), jet_features], act=act)

    def encode_stats(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(batch.jet)  # (B, H)
        return self.mu(h), self.logvar(h).clamp(-12.0, 12.0)  # (B, latent) each

    def encode(self, batch: Batch) -> torch.Tensor:
        return self.encode_stats(batch)[0]

    def elbo_terms(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction (B, F), mu (B, latent), logvar (B, latent))."""
        mu, logvar = self.encode_stats(batch)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decoder(z), mu, logvar

    def target(self, batch: Batch) -> torch.Tensor:
        return batch.jet

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.elbo_terms(batch)[0]  # (B, F)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """``n`` jets from the prior, decoded: (n, F) in the preprocessed feature space."""
        p = next(self.parameters())
        return self.decoder(torch.randn(n, self.latent_dim, dtype=p.dtype, device=p.device))


# ----------------------------------------------------------------------------- registered variants


@register_model("ae_jet", inputs=("jet",), family="autoencoder")
def ae_jet(*, jet_features: int = 5, hidden: Sequence[int] = (32, 32), latent: int = 2, act: str = "relu") -> JetAE:
    """Dense autoencoder on jet features; anomaly score = reconstruction error (arXiv:1808.08992)."""
    return JetAE(jet_features=jet_features, hidden=hidden, latent=latent, act=act)


@register_model("ae_set", inputs=("x", "mask"), family="autoencoder", tags=("permutation",))
def ae_set(*, in_features: int = 7, k: int = 20, phi: Sequence[int] = (64, 64), latent: int = 8,
           hidden: Sequence[int] = (64, 128), act: str = "relu") -> SetAE:
    """PFN encoder + decoder of the k hardest particles' features (set autoencoder)."""
    return SetAE(in_features=in_features, k=k, phi=phi, latent=latent, hidden=hidden, act=act)


@register_model("ae_image", inputs=("image",), family="autoencoder")
def ae_image(*, image_size: int = 40, channels: Sequence[int] = (8, 16), latent: int = 16, act: str = "relu") -> ConvAE:
    """Convolutional autoencoder on jet images (arXiv:1808.08979)."""
    return ConvAE(image_size=image_size, channels=channels, latent=latent, act=act)


@register_model("vae_jet", inputs=("jet",), family="autoencoder", kind="generative")
def vae_jet(*, jet_features: int = 5, hidden: Sequence[int] = (64, 64), latent: int = 2, act: str = "relu") -> JetVAE:
    """Variational autoencoder on jet features: −ELBO anomaly score and a sampler (arXiv:1312.6114)."""
    return JetVAE(jet_features=jet_features, hidden=hidden, latent=latent, act=act)
