"""hepnn.train.tasks: classification and regression steps against hand-computed losses, scores and
outputs; L1, L2 and the gradient penalty added with exactly their lambdas (on a linear model, where
every term has a closed form); the logged loss is the task loss alone."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hepnn.data.batch import Batch
from hepnn.train.losses import build_loss
from hepnn.train.tasks import ClassifyTask, Regularization, RegressTask

W = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]], dtype=torch.float64)  # (K=2, F=3)
BIAS = torch.tensor([0.25, -0.5], dtype=torch.float64)
JET = torch.tensor([[0.5, 1.0, -1.0], [2.0, 0.0, 1.0], [-1.0, 0.5, 0.0], [0.0, -0.5, 2.0]], dtype=torch.float64)
Y = torch.tensor([1, 0, 0, 1])


class OnJet(nn.Module):
    """A linear model of the jet features: logits = jet W^T + b."""

    def __init__(self, w=W, b=BIAS) -> None:
        super().__init__()
        self.lin = nn.Linear(w.shape[1], w.shape[0]).double()
        with torch.no_grad():
            self.lin.weight.copy_(w), self.lin.bias.copy_(b)

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.lin(batch.jet)


def classify(reg=None, loss="ce", k=2) -> ClassifyTask:
    return ClassifyTask(build_loss(loss, num_classes=k), loss, k, reg)


def logits() -> torch.Tensor:
    return JET @ W.T + BIAS  # (B, 2)


def test_classify_step_is_cross_entropy_and_logs_it():
    loss, logs = classify().step(OnJet(), Batch(jet=JET, y=Y))
    expected = F.cross_entropy(logits(), Y)
    torch.testing.assert_close(loss, expected)
    assert logs == {"loss": pytest.approx(float(expected))}
    loss.backward()  # the step's loss reaches the model


def test_classify_step_weights_jets():
    weight = torch.tensor([1.0, 0.0, 0.0, 3.0], dtype=torch.float64)
    loss, _ = classify().step(OnJet(), Batch(jet=JET, y=Y, weight=weight))
    per_jet = F.cross_entropy(logits(), Y, reduction="none")
    torch.testing.assert_close(loss, (per_jet[0] + 3 * per_jet[3]) / 4)


def test_classify_outputs_are_probabilities_and_the_truth():
    out = classify().outputs(OnJet(), Batch(jet=JET, y=Y))
    torch.testing.assert_close(out["score"], torch.softmax(logits(), -1)[:, 1].float())
    assert torch.equal(out["y"], Y)
    torch.testing.assert_close(out["loss"], F.cross_entropy(logits(), Y).reshape(1))
    assert not out["score"].requires_grad


def test_classify_outputs_with_bce_is_the_sigmoid():
    model = OnJet(W[1:], BIAS[1:])  # one logit per jet
    out = classify(loss="bce").outputs(model, Batch(jet=JET, y=Y))
    torch.testing.assert_close(out["score"], torch.sigmoid(logits()[:, 1]).float())


def test_l1_and_l2_are_added_with_their_lambdas_over_weights_only():
    base, _ = classify().step(OnJet(), Batch(jet=JET, y=Y))
    l1, l2 = 0.01, 0.003
    loss, logs = classify(Regularization(l1=l1, l2=l2)).step(OnJet(), Batch(jet=JET, y=Y))
    abs_sum = 1 + 2 + 0.5 + 0 + 3 + 1  # sum |W_ij|, no bias
    sq_sum = 1 + 4 + 0.25 + 0 + 9 + 1  # sum W_ij^2, no bias
    torch.testing.assert_close(loss, base + l1 * abs_sum + l2 * sq_sum)
    assert logs["loss"] == pytest.approx(float(base.detach()))  # the log shows the task loss, not the penalties


def test_gradient_penalty_of_the_signal_probability_by_hand():
    """score = softmax(z)_1 = sigmoid(z_1 - z_0), so d score / d jet = s (1 - s) (w_1 - w_0)."""
    lam = 0.5
    batch = Batch(jet=JET, y=Y)
    base, _ = classify().step(OnJet(), batch)
    loss, logs = classify(Regularization(grad_penalty=lam)).step(OnJet(), batch)
    s = torch.softmax(logits(), -1)[:, 1]
    gp = ((s * (1 - s)) ** 2 * (W[1] - W[0]).square().sum()).mean()
    assert logs["grad_penalty"] == pytest.approx(float(gp), rel=1e-10)
    torch.testing.assert_close(loss, base + lam * gp)
    assert not batch.jet.requires_grad  # the caller's batch is left alone


def test_gradient_penalty_of_the_last_class_probability():
    """Three classes: the penalized score is p_2 = softmax(z)_2, with d p_2 / d jet = p_2 (w_2 - sum_k p_k w_k)."""
    w3 = torch.cat([W, torch.tensor([[0.5, 0.5, 2.0]], dtype=torch.float64)])  # (K=3, F)
    b3 = torch.cat([BIAS, torch.tensor([0.1], dtype=torch.float64)])
    batch = Batch(jet=JET, y=torch.tensor([2, 0, 1, 2]))
    _, logs = classify(Regularization(grad_penalty=1.0), k=3).step(OnJet(w3, b3), batch)
    p = torch.softmax(JET @ w3.T + b3, -1)  # (B, 3)
    grad = p[:, 2:] * (w3[2] - p @ w3)  # (B, F)
    assert logs["grad_penalty"] == pytest.approx(float(grad.square().sum(1).mean()), rel=1e-10)


def test_gradient_penalty_trains_the_model():
    model = OnJet()
    loss, _ = classify(Regularization(grad_penalty=1.0)).step(model, Batch(jet=JET, y=Y))
    loss.backward()
    plain = OnJet()
    classify().step(plain, Batch(jet=JET, y=Y))[0].backward()
    assert not torch.allclose(model.lin.weight.grad, plain.lin.weight.grad)  # the penalty has a gradient


def test_regress_step_squeezes_one_target():
    target = torch.tensor([0.5, -1.0, 2.0, 0.0], dtype=torch.float64)
    model = OnJet(W[:1], BIAS[:1])  # (B, 1) output
    task = RegressTask(build_loss("mse", num_classes=1))
    loss, logs = task.step(model, Batch(jet=JET, y=target))
    pred = (JET @ W[0] + BIAS[0])  # (B,)
    torch.testing.assert_close(loss, ((pred - target) ** 2).mean())
    out = task.outputs(model, Batch(jet=JET, y=target))
    assert out["pred"].shape == (4,) and torch.allclose(out["pred"], pred.float())
    assert torch.equal(out["y"], target)


def test_regress_gradient_penalty_sums_the_targets():
    """Two targets: the penalized score is their sum, whose input gradient is w_0 + w_1 for every jet."""
    target = torch.zeros(4, 2, dtype=torch.float64)
    task = RegressTask(build_loss("mse", num_classes=1), Regularization(grad_penalty=2.0))
    loss, logs = task.step(OnJet(), Batch(jet=JET, y=target))
    gp = (W[0] + W[1]).square().sum()
    assert logs["grad_penalty"] == pytest.approx(float(gp))
    torch.testing.assert_close(loss, (logits() ** 2).mean() + 2.0 * gp)


class OnX(nn.Module):
    """Reads the particle features only: logits (0, sum of x)."""

    def forward(self, batch: Batch) -> torch.Tensor:
        s = batch.x.sum((1, 2))  # (B, N, C) -> (B,)
        return torch.stack([torch.zeros_like(s), s], dim=-1)


class OnParticles(nn.Module):
    """Reads the four-vectors only: logits (0, (sum of the real particles' energies)^2)."""

    def forward(self, batch: Batch) -> torch.Tensor:
        e = (batch.p4[..., 0] * batch.mask).sum(1) ** 2  # (B,)
        return torch.stack([torch.zeros_like(e), e], dim=-1)


def test_gradient_penalty_differentiates_particles_first():
    """With x and jet in the batch, the penalty differentiates the particle features x."""
    batch = Batch(x=torch.ones(2, 3, 1, dtype=torch.float64), jet=torch.ones(2, 3, dtype=torch.float64),
                  mask=torch.ones(2, 3, dtype=torch.bool), y=torch.tensor([0, 1]))
    _, logs = classify(Regularization(grad_penalty=1.0)).step(OnX(), batch)
    s = torch.sigmoid(torch.tensor(3.0, dtype=torch.float64))
    assert logs["grad_penalty"] == pytest.approx(float((s * (1 - s)) ** 2 * 3))  # 3 entries, each s(1-s)


def test_gradient_penalty_differentiates_an_input_the_model_reads():
    """A p4 model whose batch also carries jet features (a distillation from a jet-feature teacher)."""
    g = torch.Generator().manual_seed(0)
    batch = Batch(p4=torch.rand(2, 3, 4, generator=g, dtype=torch.float64), mask=torch.ones(2, 3, dtype=torch.bool),
                  jet=torch.rand(2, 5, generator=g, dtype=torch.float64), y=torch.tensor([0, 1]))
    _, logs = classify(Regularization(grad_penalty=1.0, inputs=("p4", "mask"))).step(OnParticles(), batch)
    assert logs["grad_penalty"] > 0
    with pytest.raises(RuntimeError):  # without the model's inputs the penalty would take jet, which it never reads
        classify(Regularization(grad_penalty=1.0)).step(OnParticles(), batch)
