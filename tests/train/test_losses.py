"""Losses against torch.nn.functional references and by-hand values."""

import math

import pytest
import torch
import torch.nn.functional as F

from hepnn.errors import ConfigError
from hepnn.train.losses import balanced_class_weights, build_loss, resolve_loss_name, scores_from_output


def test_ce_matches_torch_and_hand_value():
    torch.manual_seed(0)
    logits, target = torch.randn(7, 3), torch.tensor([0, 1, 2, 2, 1, 0, 1])
    loss = build_loss("ce", num_classes=3)
    assert torch.allclose(loss(logits, target), F.cross_entropy(logits, target))
    # one jet, logits (0, log 3): softmax = (1/4, 3/4); -log(3/4) for class 1
    hand = build_loss("ce", num_classes=2)(torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([1]))
    assert hand.item() == pytest.approx(-math.log(0.75), rel=1e-6)


def test_ce_class_weights_match_torch_weighted_mean():
    torch.manual_seed(1)
    logits, target = torch.randn(9, 3), torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2])
    cw = torch.tensor([0.5, 2.0, 1.0])
    got = build_loss("ce", num_classes=3, class_weights=cw)(logits, target)
    assert torch.allclose(got, F.cross_entropy(logits, target, weight=cw))
    assert not torch.allclose(got, F.cross_entropy(logits, target))


def test_class_and_jet_weights_multiply_by_hand():
    # per-jet CE losses are log 2 (equal logits) and -log(3/4)
    logits = torch.tensor([[0.0, 0.0], [0.0, math.log(3.0)]])
    target = torch.tensor([0, 1])
    l0, l1 = math.log(2.0), -math.log(0.75)
    loss = build_loss("ce", num_classes=2, class_weights=torch.tensor([3.0, 1.0]))
    jet_w = torch.tensor([1.0, 2.0])
    w0, w1 = 3.0 * 1.0, 1.0 * 2.0
    assert loss(logits, target, jet_w).item() == pytest.approx((w0 * l0 + w1 * l1) / (w0 + w1), rel=1e-6)


@pytest.mark.parametrize("shape", [(6,), (6, 1)])
def test_bce_single_logit_matches_torch(shape):
    torch.manual_seed(2)
    z, y = torch.randn(shape), torch.tensor([0, 1, 1, 0, 1, 0])
    got = build_loss("bce", num_classes=2)(z, y)
    assert torch.allclose(got, F.binary_cross_entropy_with_logits(z.reshape(-1), y.float()))
    w = torch.rand(6)
    got_w = build_loss("bce", num_classes=2)(z, y, w)
    ref = (F.binary_cross_entropy_with_logits(z.reshape(-1), y.float(), reduction="none") * w).sum() / w.sum()
    assert torch.allclose(got_w, ref)


def test_bce_hand_value_with_class_weights():
    # z = 0 -> p = 1/2, loss log 2 for either label; z = log 3 -> p = 3/4, label 1 -> -log(3/4)
    z, y = torch.tensor([0.0, math.log(3.0)]), torch.tensor([0.0, 1.0])
    got = build_loss("bce", num_classes=2, class_weights=torch.tensor([1.0, 4.0]))(z, y)
    assert got.item() == pytest.approx((math.log(2) + 4 * -math.log(0.75)) / 5, rel=1e-6)


def test_regression_losses_match_torch_and_hand():
    pred, true = torch.tensor([0.0, 1.0, 4.0]), torch.tensor([0.5, 1.0, 1.0])
    # residuals 0.5, 0, 3
    assert build_loss("mse", num_classes=1)(pred, true).item() == pytest.approx((0.25 + 0 + 9) / 3)
    assert build_loss("mae", num_classes=1)(pred, true).item() == pytest.approx((0.5 + 0 + 3) / 3)
    # Huber delta 1: 0.5 r^2 = 0.125, 0, delta(|r| - delta/2) = 2.5
    assert build_loss("huber", num_classes=1)(pred, true).item() == pytest.approx((0.125 + 2.5) / 3)
    assert build_loss("huber", num_classes=1, huber_delta=2.0)(pred, true).item() == pytest.approx((0.125 + 4) / 3)
    torch.manual_seed(3)
    a, b = torch.randn(5, 3), torch.randn(5, 3)
    assert torch.allclose(build_loss("mse", num_classes=1)(a, b), F.mse_loss(a, b))
    assert torch.allclose(build_loss("mae", num_classes=1)(a, b), F.l1_loss(a, b))
    assert torch.allclose(build_loss("huber", num_classes=1)(a, b), F.huber_loss(a, b))
    # (B, 1) output against (B,) target
    assert torch.allclose(build_loss("mse", num_classes=1)(a[:, :1], b[:, 0]), F.mse_loss(a[:, 0], b[:, 0]))


def test_regression_jet_weights_average_over_targets_first():
    pred, true = torch.tensor([[1.0, 3.0], [0.0, 0.0]]), torch.zeros(2, 2)
    w = torch.tensor([1.0, 3.0])  # per-jet mse: (1 + 9)/2 = 5 and 0
    assert build_loss("mse", num_classes=1)(pred, true, w).item() == pytest.approx(5 * 1 / 4)


def test_auto_and_errors():
    assert resolve_loss_name("auto", 2) == "ce"
    assert resolve_loss_name("auto", 5) == "ce"
    assert resolve_loss_name("auto", 1) == "mse"
    with pytest.raises(ConfigError):
        build_loss("focal", num_classes=2)
    with pytest.raises(ConfigError):
        build_loss("mse", num_classes=1, class_weights=torch.ones(2))
    with pytest.raises(ConfigError):
        build_loss("ce", num_classes=3, class_weights=torch.ones(2))
    for name, k in [("ce", 1), ("bce", 3), ("mse", 2), ("huber", 3)]:
        with pytest.raises(ConfigError):
            build_loss(name, num_classes=k)
    with pytest.raises(ValueError):
        build_loss("ce", num_classes=2)(torch.zeros(4, 1), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError):
        build_loss("bce", num_classes=2)(torch.zeros(4, 2), torch.zeros(4))


def test_loss_is_differentiable():
    z = torch.randn(4, 2, requires_grad=True)
    build_loss("ce", num_classes=2)(z, torch.tensor([0, 1, 1, 0])).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


def test_scores_from_output():
    z2 = torch.tensor([[0.0, math.log(3.0)], [1.0, 1.0]])
    assert torch.allclose(scores_from_output(z2, "ce"), torch.tensor([0.75, 0.5]))
    z3 = torch.zeros(2, 3)
    assert torch.allclose(scores_from_output(z3, "ce"), torch.full((2, 3), 1 / 3))
    assert torch.allclose(scores_from_output(torch.tensor([[math.log(3.0)]]), "bce"), torch.tensor([0.75]))
    r = torch.randn(3, 2)
    assert torch.equal(scores_from_output(r, "mse"), r)
    with pytest.raises(ConfigError):
        scores_from_output(r, "auto")


def test_balanced_class_weights_by_hand():
    # scikit-learn's "balanced": n / (K n_c) with n = 8, K = 3, counts (5, 2, 1)
    y = torch.tensor([0, 0, 0, 0, 0, 1, 1, 2])
    assert torch.allclose(balanced_class_weights(y, 3), torch.tensor([8 / 15, 8 / 6, 8 / 3]))
    assert balanced_class_weights(torch.tensor([0, 0]), 2)[1].item() == 0.0


def test_perceptron_criterion_by_hand():
    from hepnn.train.losses import build_loss, scores_from_output

    loss = build_loss("perceptron", num_classes=2)
    # margins s = z1 - z0: +2 (signal, right side: 0), -1 (signal, wrong: 1), +3 (background, wrong: 3)
    out = torch.tensor([[0.0, 2.0], [1.0, 0.0], [0.0, 3.0]])
    y = torch.tensor([1, 1, 0])
    assert loss(out, y).item() == pytest.approx((0 + 1 + 3) / 3)
    assert torch.allclose(scores_from_output(out, "perceptron"), torch.softmax(out, -1)[:, 1])
