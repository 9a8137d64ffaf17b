"""Self-supervised pre-training tasks: masked particles, the VQ-VAE tokenizer, next particle.

Each kind trains one family of models whose ``forward(batch)`` returns per-jet columns: column 0 is
the per-jet loss the task minimizes, the others are detached diagnostics named by the model's
``log_names`` (e.g. the VQ-VAE's reconstruction term, the GPT's next-token accuracy). The objective
lives in the model, as DDPM's noise schedule does, so that a run directory alone reproduces the
validation loss and the call goes through the model itself (DDP and torch.compile see a plain
forward). Labels are not used; evaluation scores each test jet by its loss.

=====================  ======================================================  ==========================
``train.task``         what one step minimizes                                  models
=====================  ======================================================  ==========================
``masked_particles``   MSE of hidden particles' features (arXiv:2401.13537)    mpm_part_lite, mpm_part,
                                                                               mpm_transformer
``vqvae``              VQ-VAE reconstruction + codebook + β commitment          vqvae_particles
                       (arXiv:1711.00937)
``next_particle``      next-token cross entropy over pT-ordered particle        gpt_particles
                       tokens (OmniJet-α, arXiv:2403.05618)
=====================  ======================================================  ==========================
"""

from __future__ import annotations

import torch
from torch import nn

from hepnn.data.batch import Batch
from hepnn.errors import ConfigError
from hepnn.train.checkpoint import unwrap
from hepnn.train.tasks_unsupervised import UnsupervisedTask, weighted_mean

PRETRAIN_KINDS = ("masked_particles", "vqvae", "next_particle")
_MODELS = {"masked_particles": "mpm_part_lite, mpm_part or mpm_transformer", "vqvae": "vqvae_particles",
           "next_particle": "gpt_particles"}


class PretrainTask(UnsupervisedTask):
    """One of ``PRETRAIN_KINDS``: minimizes the model's per-jet loss, logs its diagnostics."""

    def __init__(self, kind: str) -> None:
        if kind not in PRETRAIN_KINDS:
            raise ValueError(f"unknown pre-training task {kind!r}; choose from {', '.join(PRETRAIN_KINDS)}")
        self.kind = kind

    def columns(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """The model's per-jet columns, (B, 1 + len(log_names)), after checking it fits this task."""
        m = unwrap(model)
        if getattr(m, "task", None) != self.kind:
            raise ConfigError(f"train.task={self.kind} trains {_MODELS[self.kind]}, not {type(m).__name__}; "
                              f"change model.name or train.task")
        return model(batch).float()

    def per_jet(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return self.columns(model, batch)[:, 0]  # (B,)

    def step(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        cols = self.columns(model, batch)
        loss = weighted_mean(cols[:, 0], batch)
        logs = {"loss": float(loss.detach())}
        for j, name in enumerate(unwrap(model).log_names, start=1):
            logs[name] = float(weighted_mean(cols[:, j].detach(), batch))
        return loss, logs
