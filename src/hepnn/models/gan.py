"""Wasserstein GAN with gradient penalty (WGAN-GP) on jet-level features.

Goodfellow et al., arXiv:1406.2661; Arjovsky, Chintala, Bottou, arXiv:1701.07875; Gulrajani et al.,
"Improved Training of Wasserstein GANs", arXiv:1704.00028. For jets: Paganini, de Oliveira, Nachman,
CaloGAN, arXiv:1705.02355.

The module holds both players: ``generator`` G: z ~ N(0, 1) -> x and ``critic`` D: x -> R (no
normalization layers, which would break the per-sample gradient penalty). The adversarial task
(``hepnn.train.tasks_unsupervised.AdversarialTask``) updates D with its own optimizer and hands the
generator loss −D(G(z)) to the engine. ``forward(batch)`` is the pair (D(x), D(G(z))) per jet, whose
mean difference estimates the Wasserstein distance (fresh z while training, fixed-seed z when
evaluating).

Shapes: jet (B, F) -> (B, 2); sample(n) -> (n, F) in the preprocessed feature space.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from hepnn.data.batch import Batch
from hepnn.models.diffusion import fixed_noise
from hepnn.nn.layers import mlp
from hepnn.registry import register_model


class JetWGAN(nn.Module):
    """Generator and critic MLPs for jet-level features."""

    space = "jet"

    def __init__(self, *, jet_features: int, latent: int = 8, hidden: Sequence[int] = (64, 64),
                 critic_hidden: Sequence[int] = (64, 64), act: str = "leaky_relu") -> None:
        super().__init__()
        self.latent_dim = latent
        self.generator = mlp([latent, *hidden, jet_features], act=act)
        self.critic = mlp([jet_features, *critic_hidden, 1], act=act)

    def noise(self, n: int, like: torch.Tensor) -> torch.Tensor:
        if self.training:
            return torch.randn(n, self.latent_dim, dtype=like.dtype, device=like.device)
        return fixed_noise((n, self.latent_dim), like)

    def generate(self, n: int, like: torch.Tensor) -> torch.Tensor:
        return self.generator(self.noise(n, like))  # (n, F)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x).squeeze(-1)  # (B, F) -> (B,)

    def forward(self, batch: Batch) -> torch.Tensor:
        real = batch.jet
        fake = self.generate(real.shape[0], real)  # (B, F)
        return torch.stack([self.score(real), self.score(fake)], dim=1)  # (B, 2)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """``n`` jets: (n, F) preprocessed jet-level features."""
        p = next(self.parameters())
        return self.generator(torch.randn(n, self.latent_dim, dtype=p.dtype, device=p.device))


@register_model("wgan_jet", inputs=("jet",), family="generative", kind="generative")
def wgan_jet(*, jet_features: int = 5, latent: int = 8, hidden: Sequence[int] = (64, 64),
             critic_hidden: Sequence[int] = (64, 64), act: str = "leaky_relu") -> JetWGAN:
    """WGAN-GP on jet features (arXiv:1704.00028); train with train.task=adversarial."""
    return JetWGAN(jet_features=jet_features, latent=latent, hidden=hidden, critic_hidden=critic_hidden, act=act)
