"""The distillation task: a student learns a trained teacher's scores as well as the labels.

Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network" (arXiv:1503.02531):

    loss = alpha T^2 KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) CE(z_s, y)

with z_t the teacher's and z_s the student's logits. The temperature T softens both distributions so
the student sees how sure the teacher is; T^2 keeps the soft gradients on the scale of the hard ones.

The teacher (a finished run, frozen, in eval mode) is loaded on the first training step by the
callable the task is given (``hepnn.runs.make_task`` passes one) and scores every training batch on
the fly. It may read other inputs than the student: the batches carry ``p4`` and ``mask`` and the
teacher's particle features are rebuilt from them with the teacher's own feature list and fitted
preprocessing (``teacher_batch``), so an MLP on jet observables can learn from a PFN or ParT.
The command that trains a student from a teacher run is ``hepnn.compress.distill``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from hepnn.config import RunConfig
from hepnn.data.batch import Batch
from hepnn.data.preprocess import Preprocessor
from hepnn.errors import ConfigError
from hepnn.log import get_logger
from hepnn.train.tasks import ClassifyTask, LossFn, Regularization

log = get_logger(__name__)


@dataclass(frozen=True)
class Teacher:
    """A frozen teacher run: its config, model (eval mode), fitted preprocessing, the fields it reads."""

    cfg: RunConfig
    model: nn.Module
    pre: dict[str, Any]
    inputs: tuple[str, ...]


def two_class_logits(z: torch.Tensor) -> torch.Tensor:
    """Logits (B, K) as they are; one logit per jet (bce) becomes (B, 2) = (0, z), whose softmax is the sigmoid."""
    if z.ndim == 1 or z.shape[-1] == 1:
        z = z.reshape(-1, 1)
        return torch.cat([torch.zeros_like(z), z], dim=-1)
    return z


def soft_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float,
              weight: torch.Tensor | None = None) -> torch.Tensor:
    """T^2 KL(softmax(teacher / T) || softmax(student / T)), (weighted) mean over jets.

    Shapes: student, teacher (B, K) or (B,) logits; weight (B,) -> scalar.
    """
    t = temperature
    log_p_s = F.log_softmax(two_class_logits(student).float() / t, dim=-1)  # (B, K)
    log_p_t = F.log_softmax(two_class_logits(teacher).float() / t, dim=-1)  # (B, K)
    kl = F.kl_div(log_p_s, log_p_t, log_target=True, reduction="none").sum(dim=-1)  # (B,)
    if weight is not None:
        return t * t * (kl * weight).sum() / weight.sum().clamp_min(1e-12)
    return t * t * kl.mean()


class DistillTask(ClassifyTask):
    """Classification against the labels and a frozen teacher's softened scores.

    Evaluation (``outputs``) is plain classification: the teacher is only loaded to train.
    """

    kind = "classify"

    def __init__(self, loss_fn: LossFn, loss_name: str, num_classes: int,
                 regularization: Regularization | None = None, *, teacher: Callable[[], Teacher],
                 temperature: float, alpha: float) -> None:
        super().__init__(loss_fn, loss_name, num_classes, regularization)
        self._load_teacher = teacher
        self.temperature, self.alpha = temperature, alpha
        self._teacher: Teacher | None = None
        self._teacher_logits: torch.Tensor | None = None
        self._soft: float = 0.0

    def teacher(self) -> Teacher:
        if self._teacher is None:
            self._teacher = self._load_teacher()
            self._teacher.model.requires_grad_(False).eval()
        return self._teacher

    @torch.no_grad()
    def teacher_logits(self, batch: Batch) -> torch.Tensor:
        t = self.teacher()
        t.model.to(batch.p4.device).eval()
        return t.model(teacher_batch(batch, t.cfg, t.pre, t.inputs)).float()

    def step(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        self._teacher_logits = self.teacher_logits(batch)
        try:
            loss, logs = super().step(model, batch)  # calls self.loss with the student's output
        finally:
            self._teacher_logits = None
        logs["soft_loss"] = self._soft
        return loss, logs

    def loss(self, output: torch.Tensor, batch: Batch) -> torch.Tensor:
        hard = super().loss(output, batch)
        if self._teacher_logits is None:  # evaluation: the label loss alone
            return hard
        soft = soft_loss(output, self._teacher_logits, self.temperature, batch.weight)
        self._soft = float(soft.detach())
        return self.alpha * soft + (1 - self.alpha) * hard


def check_compatible(cfg: RunConfig, teacher: Teacher) -> None:
    """Refuse a teacher whose inputs the student's batches cannot rebuild; warn on another data split."""
    tcfg, inputs = teacher.cfg, teacher.inputs
    if "jet" in inputs:
        same = list(cfg.data.jet_features) == list(tcfg.data.jet_features) and \
            [s for s in cfg.preprocess if s.block == "jet"] == [s for s in tcfg.preprocess if s.block == "jet"]
        if not same:
            raise ConfigError("the teacher reads jet features: the student needs the same data.jet_features "
                              "and jet preprocessing")
    if "x" in inputs and any(f in ("charge", "pid", "pid_onehot") for f in tcfg.data.particle_features):
        raise ConfigError("the teacher's particle features use charge/pid, which distillation cannot rebuild "
                          "from four-vectors")
    keys = ("train", "val", "test", "split", "max_jets")
    if cfg.train.seed != tcfg.train.seed or any(getattr(cfg.data, k) != getattr(tcfg.data, k) for k in keys):
        log.warning("the student's data split differs from the teacher's: the teacher may have trained "
                    "on the student's test jets")


def teacher_batch(batch: Batch, tcfg: RunConfig, pre: dict[str, Any], inputs: tuple[str, ...]) -> Batch:
    """The teacher's inputs from a student batch: x and image rebuilt from p4 and mask.

    The jet axis of the relative features (deta, dphi, ...) is the sum of the batch's particles:
    exact when no jet has more constituents than the student's ``data.max_particles`` (the loader
    uses the full jet), a small shift for the softest particles of larger jets otherwise.

    Shapes: batch.p4 (B, N, 4), batch.mask (B, N) -> x (B, N', C_teacher), N' = min(N, teacher max_particles).
    """
    n = batch.p4.shape[1] if tcfg.data.max_particles is None else min(batch.p4.shape[1], tcfg.data.max_particles)
    p4, mask = batch.p4[:, :n], batch.mask[:, :n]  # constituents are pT-ordered: keep the hardest
    out: dict[str, torch.Tensor] = {}
    for name in inputs:
        if name in ("p4", "mask"):
            out[name] = p4 if name == "p4" else mask
        elif name == "jet":
            out["jet"] = batch.jet
        elif name == "image":
            from hepnn.data.images import jet_images

            out["image"] = jet_images(p4, mask, size=tcfg.data.image_size)  # (B, 1, H, W)
        elif name == "x":
            out["x"] = _teacher_features(p4, mask, tcfg, pre.get("particle"))
    return Batch(**out)


def _teacher_features(p4: torch.Tensor, mask: torch.Tensor, tcfg: RunConfig, pre: Preprocessor | None) -> torch.Tensor:
    from hepnn.data.features import particle_features

    x = particle_features(p4.cpu(), mask.cpu(), tcfg.data.particle_features)  # (B, N, C)
    if pre is not None:  # the real particles only, as the teacher's loader did
        xn = x.numpy()
        m = mask.cpu().numpy()
        xn[m] = pre.transform(xn[m])
    return x.to(p4.device)
