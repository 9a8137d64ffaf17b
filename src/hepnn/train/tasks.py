"""Tasks: what one training step computes. The engine owns everything else.

A task supplies ``step(model, batch) -> (loss, logs)`` for training and ``outputs(model, batch)``
for evaluation (scores or predictions next to the truth). Regularization terms that depend on the
model or its inputs (L1, L2, gradient penalty) are added here, so every task gets them the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Callable

import torch
from torch import nn

from hepnn.data.batch import Batch

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


@dataclass
class Regularization:
    """lambda_1 * sum|w| + lambda_2 * sum w^2 + lambda_gp * mean ||d score / d input||^2."""

    l1: float = 0.0
    l2: float = 0.0
    grad_penalty: float = 0.0
    # The Batch fields the model reads (its spec's inputs): the gradient penalty differentiates one of
    # them, never a field the batch carries for someone else (a distillation teacher's jet features).
    inputs: tuple[str, ...] = ()


def _primary_input(batch: Batch, inputs: tuple[str, ...] = ()) -> str:
    """The float input a gradient penalty differentiates by: particles, else jet features, else image,
    else p4; among ``inputs`` when given."""
    for name in ("x", "jet", "image", "p4"):
        if getattr(batch, name) is not None and (not inputs or name in inputs):
            return name
    raise ValueError("batch has no float input of the model for the gradient penalty")


class Task(ABC):
    """Base class: loss plus regularization; subclasses define how outputs map to targets."""

    kind = "task"

    def __init__(self, loss_fn: LossFn, regularization: Regularization | None = None) -> None:
        self.loss_fn = loss_fn
        self.reg = regularization or Regularization()

    def forward(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return model(batch)

    def loss(self, output: torch.Tensor, batch: Batch) -> torch.Tensor:
        return self.loss_fn(output, batch.y, batch.weight)

    def step(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        from hepnn.train.regularize import gradient_penalty, l1_penalty, l2_penalty

        if self.reg.grad_penalty > 0:
            name = _primary_input(batch, self.reg.inputs)
            inp = getattr(batch, name).detach().requires_grad_(True)
            batch = replace(batch, **{name: inp})
        output = self.forward(model, batch)
        loss = self.loss(output, batch)
        logs = {"loss": float(loss.detach())}
        if self.reg.l1 > 0:
            loss = loss + self.reg.l1 * l1_penalty(model)
        if self.reg.l2 > 0:
            loss = loss + self.reg.l2 * l2_penalty(model)
        if self.reg.grad_penalty > 0:
            gp = gradient_penalty(self.score(output), inp)
            loss = loss + self.reg.grad_penalty * gp
            logs["grad_penalty"] = float(gp.detach())
        return loss, logs

    def score(self, output: torch.Tensor) -> torch.Tensor:
        """A per-jet scalar of the output (for the gradient penalty)."""
        return output.reshape(output.shape[0], -1)[:, -1]

    @abstractmethod
    def outputs(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        """Per-jet outputs for evaluation: "score" or "pred", "y", and the batch "loss"."""


class ClassifyTask(Task):
    """Binary or multi-class classification. Outputs logits (B, K); scores are softmax probabilities."""

    kind = "classify"

    def __init__(self, loss_fn: LossFn, loss_name: str, num_classes: int,
                 regularization: Regularization | None = None) -> None:
        super().__init__(loss_fn, regularization)
        self.loss_name = loss_name
        self.num_classes = num_classes

    def score(self, output: torch.Tensor) -> torch.Tensor:
        from hepnn.train.losses import scores_from_output

        s = scores_from_output(output, self.loss_name)
        return s if s.ndim == 1 else s[:, -1]

    @torch.no_grad()
    def outputs(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        from hepnn.train.losses import scores_from_output

        output = self.forward(model, batch)
        return {"score": scores_from_output(output.float(), self.loss_name), "y": batch.y,
                "loss": self.loss(output, batch).reshape(1)}


class RegressTask(Task):
    """Regression of one or more continuous targets. Output (B, T); squeezed to (B,) for T = 1."""

    kind = "regress"

    def forward(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        out = model(batch)
        return out.squeeze(-1) if out.ndim == 2 and out.shape[-1] == 1 else out

    def score(self, output: torch.Tensor) -> torch.Tensor:
        return output.reshape(output.shape[0], -1).sum(dim=1)

    @torch.no_grad()
    def outputs(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        output = self.forward(model, batch)
        return {"pred": output.float(), "y": batch.y, "loss": self.loss(output, batch).reshape(1)}
