"""Denoising diffusion (DDPM) generators for jet-level features and for the K hardest constituents.

Ho, Jain, Abbeel, "Denoising Diffusion Probabilistic Models", arXiv:2006.11239; faster deterministic
sampling: Song, Meng, Ermon, "Denoising Diffusion Implicit Models" (DDIM), arXiv:2010.02502. For
jets: Mikuni & Nachman, arXiv:2304.01266; Leigh et al., arXiv:2303.05376.

Forward process q(x_t | x_0) = N(sqrt(ab_t) x_0, (1 - ab_t) I), ab_t = prod_{s<=t} (1 - beta_s), with
a linear beta schedule. A network eps_theta(x_t, t) learns the added noise with the loss
||eps - eps_theta(x_t, t)||^2 averaged over t ~ U{0..T-1}. The schedule lives in the model (buffers),
so a run directory is enough to sample. ``forward(batch)`` is the per-jet noise-prediction loss: with a
fresh draw of (t, eps) while training, and a fixed-seed draw when evaluating (a comparable
validation loss).

Shapes: data x_0 (B, D); ``sample(n)`` -> (n, D) (jet space) or (n, K, 4) (particle space).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from hepnn.data import features as kin
from hepnn.data.batch import Batch
from hepnn.nn.layers import mlp
from hepnn.registry import register_model


def fixed_noise(shape: tuple[int, ...], like: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Standard normal noise from a private generator: the same numbers on every call."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).to(like)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 1000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps (as in the transformer). t (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float64) / half)
    args = t.double().unsqueeze(1) * freqs  # (B, half)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class Denoiser(nn.Module):
    """eps_theta(x_t, t): an MLP on the noisy vector and a sinusoidal time embedding. (B, D) -> (B, D)."""

    def __init__(self, dim: int, hidden: Sequence[int], t_dim: int = 32, act: str = "silu") -> None:
        super().__init__()
        self.t_dim = t_dim
        self.net = mlp([dim + t_dim, *hidden, dim], act=act)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = timestep_embedding(t, self.t_dim).to(x.dtype)  # (B, t_dim)
        return self.net(torch.cat([x, emb], dim=1))


class DDPM(nn.Module):
    """A denoiser plus its noise schedule: training loss, ancestral and DDIM sampling on vectors.

    Args:
        dim: size D of the data vectors. hidden: widths of the denoiser. timesteps: T.
        beta_start, beta_end: the linear beta schedule (Ho et al. use 1e-4 .. 0.02 with T = 1000).
        sample_steps: default number of sampling steps: T = ancestral DDPM, fewer = DDIM (eta = 0).
    """

    space = "jet"

    def __init__(self, *, dim: int, hidden: Sequence[int] = (128, 128, 128), timesteps: int = 200,
                 beta_start: float = 1e-4, beta_end: float = 0.05, sample_steps: int | None = None,
                 act: str = "silu") -> None:
        super().__init__()
        self.dim, self.timesteps = dim, timesteps
        self.clip = 4.0  # |x0| bound in sampling (data are standardized or scaled to O(1))
        self.sample_steps = sample_steps or timesteps
        self.denoiser = Denoiser(dim, hidden, act=act)
        betas = torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)
        # persistent=False: the schedule follows from the arguments, the weights file holds weights only
        self.register_buffer("betas", betas, persistent=False)
        self.register_buffer("abar", torch.cumprod(1 - betas, dim=0), persistent=False)

    def data(self, batch: Batch) -> torch.Tensor:
        return batch.jet  # (B, D)

    def loss_per_jet(self, x0: torch.Tensor) -> torch.Tensor:
        """||eps - eps_theta(x_t, t)||^2 / D per jet, (B, D) -> (B,)."""
        b = x0.shape[0]
        if self.training:
            t = torch.randint(0, self.timesteps, (b,), device=x0.device)
            eps = torch.randn_like(x0)
        else:  # fixed (t, eps): the validation loss does not fluctuate from epoch to epoch
            t = (fixed_noise((b,), x0, seed=1).abs() * self.timesteps / 3).long().clamp(0, self.timesteps - 1)
            eps = fixed_noise(tuple(x0.shape), x0)
        ab = self.abar[t].to(x0.dtype).unsqueeze(1)  # (B, 1)
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        return (self.denoiser(xt, t) - eps).pow(2).mean(dim=1)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.loss_per_jet(self.data(batch))  # (B,)

    @torch.no_grad()
    def sample_vectors(self, n: int, steps: int | None = None) -> torch.Tensor:
        """Draw (n, D) from the reverse process: ancestral DDPM for steps = T, else DDIM (eta = 0)."""
        steps = steps or self.sample_steps
        p = next(self.parameters())
        x = torch.randn(n, self.dim, dtype=p.dtype, device=p.device)
        if steps >= self.timesteps:
            return self._ancestral(x)
        ts = torch.linspace(self.timesteps - 1, 0, steps, device=p.device).round().long()
        for i, t in enumerate(ts):
            ab = self.abar[t].to(x.dtype)
            ab_prev = self.abar[ts[i + 1]].to(x.dtype) if i + 1 < len(ts) else torch.ones((), dtype=x.dtype)
            eps = self.denoiser(x, t.expand(n))
            # x0 estimate clipped to the O(1) range of the scaled data: at large t, 1/sqrt(ab) amplifies
            # the denoiser's error (the same stabilization as clipping images to [-1, 1] in arXiv:2006.11239)
            x0 = ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-self.clip, self.clip)
            x = ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps
        return x

    def _ancestral(self, x: torch.Tensor) -> torch.Tensor:
        """x_{t-1} = (x_t - beta_t / sqrt(1 - ab_t) eps) / sqrt(1 - beta_t) + sigma_t z, sigma_t^2 = beta_t."""
        for t in range(self.timesteps - 1, -1, -1):
            beta, ab = self.betas[t].to(x.dtype), self.abar[t].to(x.dtype)
            eps = self.denoiser(x, torch.full((x.shape[0],), t, device=x.device))
            x = (x - beta / (1 - ab).sqrt() * eps) / (1 - beta).sqrt()
            if t > 0:
                x = x + beta.sqrt() * torch.randn_like(x)
        return x.clamp(-self.clip, self.clip)

    def sample(self, n: int, steps: int | None = None) -> torch.Tensor:
        """``n`` jets: (n, F) preprocessed jet-level features."""
        return self.sample_vectors(n, steps)


class ParticleDDPM(DDPM):
    """DDPM on the point cloud of the ``k`` hardest constituents, flattened to one vector per jet.

    Each of the k slots holds (log pT scaled, Δη / 0.4, Δφ / 0.4, exists = ±1) relative to the jet
    axis (the summed constituents); missing slots are (0, 0, 0, -1). ``to_p4`` maps a sample back to
    massless four-vectors with the jet axis at η = φ = 0, keeping slots with exists > 0.
    """

    space = "particles"
    _ANGLE = 0.4  # Δη, Δφ scale (jets of radius 0.8)
    _LOGPT = (1.0, 2.0)  # log(pT / GeV) shift and scale

    def __init__(self, *, k: int = 30, hidden: Sequence[int] = (256, 256, 256), timesteps: int = 200,
                 beta_start: float = 1e-4, beta_end: float = 0.05, sample_steps: int | None = None,
                 act: str = "silu") -> None:
        super().__init__(dim=4 * k, hidden=hidden, timesteps=timesteps, beta_start=beta_start,
                         beta_end=beta_end, sample_steps=sample_steps, act=act)
        self.k = k
        self.clip = 3.0  # every slot feature lies within about ±2.5

    def data(self, batch: Batch) -> torch.Tensor:
        p4, mask = batch.p4, batch.mask
        b, n, _ = p4.shape
        if n < self.k:  # padding to k slots: zero four-vectors, mask False
            p4 = torch.cat([p4, p4.new_zeros(b, self.k - n, 4)], dim=1)
            mask = torch.cat([mask, mask.new_zeros(b, self.k - n)], dim=1)
        jet = kin.jet_p4(p4, mask)  # (B, 4) from every constituent
        p4, mask = p4[:, : self.k], mask[:, : self.k]  # (B, K, 4), (B, K)
        safe = torch.where(mask.unsqueeze(-1), p4, p4.new_tensor([1.0, 1.0, 0.0, 0.0]))
        deta = kin.eta(safe) - kin.eta(jet).unsqueeze(1)
        dphi = kin.wrap_phi(kin.phi(safe) - kin.phi(jet).unsqueeze(1))
        logpt = (torch.log(kin.pt(safe)) - self._LOGPT[0]) / self._LOGPT[1]
        feats = torch.stack([logpt, deta / self._ANGLE, dphi / self._ANGLE], dim=-1)  # (B, K, 3)
        feats = feats * mask.unsqueeze(-1).to(feats.dtype)
        exists = mask.to(feats.dtype).unsqueeze(-1) * 2 - 1  # (B, K, 1)
        return torch.cat([feats, exists], dim=-1).flatten(1)  # (B, 4K)

    def sample(self, n: int, steps: int | None = None) -> torch.Tensor:
        """``n`` jets: (n, K, 4) slots (log pT scaled, Δη, Δφ scaled, exists)."""
        return self.sample_vectors(n, steps).view(n, self.k, 4)

    def to_p4(self, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, K, 4) slots -> four-vectors (n, K, 4) (E, px, py, pz) and mask (n, K), pT-ordered."""
        pt = torch.exp(slots[..., 0] * self._LOGPT[1] + self._LOGPT[0])
        eta, phi = slots[..., 1] * self._ANGLE, slots[..., 2] * self._ANGLE
        mask = slots[..., 3] > 0
        empty = torch.nonzero(~mask.any(dim=1)).squeeze(1)  # every jet keeps at least its likeliest slot
        mask[empty, slots[empty, :, 3].argmax(dim=1)] = True
        px, py, pz = pt * torch.cos(phi), pt * torch.sin(phi), pt * torch.sinh(eta)
        p4 = torch.stack([pt * torch.cosh(eta), px, py, pz], dim=-1) * mask.unsqueeze(-1)
        order = torch.argsort(torch.where(mask, pt, torch.zeros_like(pt)), dim=1, descending=True)
        return p4.gather(1, order.unsqueeze(-1).expand_as(p4)), mask.gather(1, order)


@register_model("ddpm_jet", inputs=("jet",), family="generative", kind="generative")
def ddpm_jet(*, jet_features: int = 5, hidden: Sequence[int] = (128, 128, 128), timesteps: int = 200,
             beta_start: float = 1e-4, beta_end: float = 0.05, sample_steps: int | None = None) -> DDPM:
    """DDPM on jet-level features (arXiv:2006.11239); DDIM sampling with sample_steps < timesteps."""
    return DDPM(dim=jet_features, hidden=hidden, timesteps=timesteps, beta_start=beta_start,
                beta_end=beta_end, sample_steps=sample_steps)


@register_model("ddpm_particles", inputs=("p4", "mask"), family="generative", kind="generative")
def ddpm_particles(*, k: int = 30, hidden: Sequence[int] = (256, 256, 256), timesteps: int = 200,
                   beta_start: float = 1e-4, beta_end: float = 0.05, sample_steps: int | None = None) -> ParticleDDPM:
    """DDPM on the k hardest constituents (log pT, Δη, Δφ, exists) as one vector per jet."""
    return ParticleDDPM(k=k, hidden=hidden, timesteps=timesteps, beta_start=beta_start,
                        beta_end=beta_end, sample_steps=sample_steps)
