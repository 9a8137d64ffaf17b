"""Tasks without labels: reconstruction, denoising, ELBO, adversarial (WGAN-GP), diffusion, flow
(and, in ``hepnn.train.pretrain``, the self-supervised pre-training tasks).

Each task plugs into the one training loop (``hepnn.train.engine.Engine``) through
``step(model, batch) -> (loss, logs)`` and ``outputs(model, batch)``. ``outputs`` returns a per-jet
``score`` (reconstruction error, −ELBO, −log p, critic value), the labels ``y`` when the batch carries
them (to measure anomaly detection with tops as the anomaly) and the batch ``loss``.

The adversarial task owns the critic's optimizer: ``step`` first updates the critic itself, then
returns the generator loss computed with the critic frozen, so the engine's backward reaches only the
generator (the critic's ``.grad`` stays None after ``zero_grad(set_to_none=True)`` and its optimizer
skips them). ``state_dict`` carries the critic optimizer, so a resumed run continues exactly.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any, Iterator

import torch
from torch import nn

from hepnn.data.batch import Batch
from hepnn.train.checkpoint import unwrap

# the last three are the self-supervised pre-training tasks of hepnn.train.pretrain
UNSUPERVISED_KINDS = ("reconstruct", "denoise", "elbo", "adversarial", "diffusion", "flow",
                      "masked_particles", "vqvae", "next_particle")


def weighted_mean(per_jet: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Mean of a per-jet quantity (B,) over the batch, weighted by ``batch.weight`` when given."""
    if batch.weight is None:
        return per_jet.mean()
    return (per_jet * batch.weight).sum() / batch.weight.sum().clamp_min(1e-12)


def per_jet_error(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per jet over every other axis. (B, ...) -> (B,)."""
    return (recon.float() - target.float()).pow(2).flatten(1).mean(dim=1)


class UnsupervisedTask:
    """Base: the loss is the batch mean of a per-jet quantity; that quantity is also the score."""

    kind = "unsupervised"

    def per_jet(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return model(batch).float()  # (B,)

    def step(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        loss = weighted_mean(self.per_jet(model, batch), batch)
        return loss, {"loss": float(loss.detach())}

    @torch.no_grad()
    def outputs(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        score = self.per_jet(model, batch)
        return {"score": score, "y": batch.y, "loss": weighted_mean(score, batch).reshape(1)}


class ReconstructTask(UnsupervisedTask):
    """Autoencoder: minimize the per-jet mean squared reconstruction error (the anomaly score)."""

    kind = "reconstruct"

    def per_jet(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return per_jet_error(model(batch), unwrap(model).target(batch))


class DenoiseTask(ReconstructTask):
    """Denoising autoencoder (Vincent et al., ICML 2008): reconstruct the clean input from a copy
    with Gaussian noise of std ``noise`` added (real particles only). Evaluation scores clean inputs."""

    kind = "denoise"

    def __init__(self, noise: float = 0.1) -> None:
        self.noise = noise

    def step(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        field = unwrap(model).field
        clean = getattr(batch, field)
        noise = torch.randn_like(clean) * self.noise
        if field == "x":
            noise = noise * batch.mask.unsqueeze(-1).to(noise.dtype)  # padding stays exactly zero
        target = unwrap(model).target(batch)
        recon = model(replace(batch, **{field: clean + noise}))
        loss = weighted_mean(per_jet_error(recon, target), batch)
        return loss, {"loss": float(loss.detach())}


class ELBOTask(UnsupervisedTask):
    """VAE: minimize −ELBO = 0.5 ||x − x̂||² + beta · KL(q(z|x) || N(0, 1)) per jet (arXiv:1312.6114).

    The score is −ELBO with z = mu (the model's deterministic evaluation path).
    """

    kind = "elbo"

    def __init__(self, beta: float = 1.0) -> None:
        self.beta = beta

    def terms(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        m = unwrap(model)
        recon, mu, logvar = m.elbo_terms(batch)
        rec = 0.5 * (recon.float() - m.target(batch).float()).pow(2).flatten(1).sum(dim=1)  # (B,)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).float().sum(dim=1)  # (B,)
        return rec, kl

    def per_jet(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        rec, kl = self.terms(model, batch)
        return rec + self.beta * kl

    def step(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        rec, kl = self.terms(model, batch)
        loss = weighted_mean(rec + self.beta * kl, batch)
        return loss, {"loss": float(loss.detach()), "recon": float(rec.mean()), "kl": float(kl.mean())}


class DiffusionTask(UnsupervisedTask):
    """DDPM: the model's forward is the per-jet noise-prediction loss (its schedule lives in it)."""

    kind = "diffusion"


class FlowTask(UnsupervisedTask):
    """Normalizing flow: the model's forward is the per-jet negative log-likelihood."""

    kind = "flow"


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Parameters of ``module`` do not require grad inside the block (the graph built there
    never reaches them), and are restored afterwards."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: E[(||grad_x D(x_hat)||_2 - 1)^2] on random interpolates x_hat (arXiv:1704.00028)."""
    eps = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), dtype=real.dtype, device=real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


class AdversarialTask(UnsupervisedTask):
    """WGAN-GP. Per engine step: ``critic_steps`` critic updates (one per chunk of the real batch)
    with this task's Adam, then the generator loss −mean D(G(z)) for the engine to backprop.

    Args:
        lr, betas: the critic's Adam (Gulrajani et al.: 1e-4, (0, 0.9)).
        critic_steps: critic updates per generator update. gp_lambda: gradient-penalty weight.
    """

    kind = "adversarial"

    def __init__(self, lr: float = 1e-4, betas: tuple[float, float] = (0.0, 0.9), critic_steps: int = 5,
                 gp_lambda: float = 10.0) -> None:
        self.lr, self.betas, self.critic_steps, self.gp_lambda = lr, tuple(betas), critic_steps, gp_lambda
        self.optimizer: torch.optim.Optimizer | None = None
        self._pending: dict[str, Any] | None = None  # a loaded state, applied once the critic is known

    def _critic_optimizer(self, critic: nn.Module) -> torch.optim.Optimizer:
        if self.optimizer is None:
            self.optimizer = torch.optim.Adam(critic.parameters(), lr=self.lr, betas=self.betas)
            if self._pending is not None:
                self.optimizer.load_state_dict(self._pending)
                self._pending = None
        return self.optimizer

    def step(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        m = unwrap(model)
        opt = self._critic_optimizer(m.critic)
        real = batch.jet
        for chunk in real.chunk(min(self.critic_steps, real.shape[0])):
            fake = m.generate(chunk.shape[0], chunk).detach()
            w = m.score(chunk).mean() - m.score(fake).mean()
            gp = gradient_penalty(m.critic, chunk, fake)
            opt.zero_grad(set_to_none=True)
            (-w + self.gp_lambda * gp).backward()
            opt.step()
        with frozen(m.critic):
            g_loss = -m.score(m.generate(real.shape[0], real)).mean()
        return g_loss, {"loss": float(g_loss.detach()), "wasserstein": float(w.detach()), "gp": float(gp.detach())}

    @torch.no_grad()
    def outputs(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        """Score: the critic on real jets. Loss: the Wasserstein estimate mean D(x) − mean D(G(z))."""
        d = model(batch).float()  # (B, 2): D(x), D(G(z))
        return {"score": d[:, 0], "y": batch.y, "loss": (d[:, 0] - d[:, 1]).mean().reshape(1)}

    def state_dict(self) -> dict[str, Any]:
        if self.optimizer is not None:
            return {"critic_optimizer": self.optimizer.state_dict()}
        return {"critic_optimizer": self._pending} if self._pending is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        opt_state = state.get("critic_optimizer")
        if opt_state is None:
            return
        if self.optimizer is not None:
            self.optimizer.load_state_dict(opt_state)
        else:
            self._pending = opt_state


def make_unsupervised_task(kind: str, settings: Any = None) -> UnsupervisedTask:
    """The task for ``train.task`` = ``kind``; ``settings`` is ``train.unsupervised`` (or None = defaults)."""
    get = (lambda k, d: getattr(settings, k, d)) if settings is not None else (lambda k, d: d)
    if kind == "reconstruct":
        return ReconstructTask()
    if kind == "denoise":
        return DenoiseTask(noise=get("noise", 0.1))
    if kind == "elbo":
        return ELBOTask(beta=get("beta", 1.0))
    if kind == "adversarial":
        return AdversarialTask(lr=get("critic_lr", 1e-4), betas=get("critic_betas", (0.0, 0.9)),
                               critic_steps=get("critic_steps", 5), gp_lambda=get("gp_lambda", 10.0))
    if kind == "diffusion":
        return DiffusionTask()
    if kind == "flow":
        return FlowTask()
    raise ValueError(f"unknown unsupervised task {kind!r}; choose from {', '.join(UNSUPERVISED_KINDS)}")
