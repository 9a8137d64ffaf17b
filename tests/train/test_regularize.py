"""Regularization terms against by-hand values on linear models."""

import pytest
import torch
from torch import nn

from hepnn.train.regularize import gradient_penalty, l1_penalty, l2_penalty


def _model():
    model = nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2), nn.Linear(2, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 0.0]]))
        model[0].bias.fill_(10.0)  # biases and norm parameters are not penalized
        model[1].weight.fill_(7.0)
        model[2].weight.copy_(torch.tensor([[-3.0, 1.0]]))
    return model


def test_l1_l2_by_hand_over_weight_matrices_only():
    model = _model()
    assert l1_penalty(model).item() == pytest.approx(1 + 2 + 0.5 + 0 + 3 + 1)
    assert l2_penalty(model).item() == pytest.approx(1 + 4 + 0.25 + 0 + 9 + 1)


def test_l2_gradient_is_two_w_and_zero_on_biases():
    model = _model()
    l2_penalty(model).backward()
    assert torch.allclose(model[0].weight.grad, 2 * model[0].weight)
    assert model[0].bias.grad is None and model[1].weight.grad is None


def test_penalty_without_weights_is_zero():
    assert l1_penalty(nn.LayerNorm(3)).item() == 0.0
    assert l2_penalty(nn.Sequential()).item() == 0.0


def test_gradient_penalty_of_linear_model_is_squared_weight_norm():
    torch.manual_seed(0)
    w = torch.tensor([0.5, -1.0, 2.0])
    x = torch.randn(16, 3, requires_grad=True)
    y = x @ w + 0.3  # (B,)
    assert gradient_penalty(y, x).item() == pytest.approx(0.25 + 1 + 4)


def test_gradient_penalty_quadratic_by_hand_and_jagged_shapes():
    # y_b = sum_{n,c} x_bnc^2 -> grad 2 x, penalty mean_b 4 sum x_b^2
    x = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [2.0, 0.0]]], requires_grad=True)  # (2, 2, 2)
    y = x.square().sum(dim=(1, 2)).unsqueeze(1)  # (B, 1)
    assert gradient_penalty(y, x).item() == pytest.approx((4 * 1 + 4 * 6) / 2)


def test_gradient_penalty_backpropagates_into_the_weights():
    # penalty ||w||^2 for y = w.x: its gradient with respect to w is 2 w
    layer = nn.Linear(3, 1)
    x = torch.randn(8, 3, requires_grad=True)
    gradient_penalty(layer(x), x).backward()
    assert torch.allclose(layer.weight.grad, 2 * layer.weight.detach())
    assert layer.bias.grad is None or torch.count_nonzero(layer.bias.grad) == 0


def test_gradient_penalty_errors():
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="requires_grad"):
        gradient_penalty(x.sum(1), x)
    x.requires_grad_(True)
    with pytest.raises(ValueError):
        gradient_penalty(x, x)  # (B, 3) is not one output per jet
