"""Initialization: empirical spread of large layers against the Glorot and He formulas."""

import math

import pytest
import torch
from torch import nn

from hepnn.errors import ConfigError
from hepnn.train.init import INIT_SCHEMES, init_weights, recommended_init

FAN_IN, FAN_OUT = 600, 400  # nn.Linear(600, 400): weight (400, 600), 240k samples


def _linear_weights(scheme):
    torch.manual_seed(0)
    layer = init_weights(nn.Linear(FAN_IN, FAN_OUT), scheme)
    assert torch.count_nonzero(layer.bias) == 0
    return layer.weight.detach()


@pytest.mark.parametrize(
    ("scheme", "std"),
    [("glorot_normal", math.sqrt(2 / (FAN_IN + FAN_OUT))), ("he_normal", math.sqrt(2 / FAN_IN))],
)
def test_normal_schemes_std(scheme, std):
    w = _linear_weights(scheme)
    assert w.std().item() == pytest.approx(std, rel=0.02)
    assert abs(w.mean().item()) < 0.01 * std


@pytest.mark.parametrize(
    ("scheme", "bound"),
    [("glorot_uniform", math.sqrt(6 / (FAN_IN + FAN_OUT))), ("he_uniform", math.sqrt(6 / FAN_IN))],
)
def test_uniform_schemes_bounds_and_std(scheme, bound):
    w = _linear_weights(scheme)
    assert w.abs().max().item() <= bound
    assert w.abs().max().item() > 0.99 * bound  # fills the interval
    assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02)  # std of U(-a, a)


def test_conv_fans_include_the_kernel():
    torch.manual_seed(1)
    conv = init_weights(nn.Conv2d(32, 64, 5), "he_normal")  # fan_in = 32 * 25
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (32 * 25)), rel=0.02)
    assert torch.count_nonzero(conv.bias) == 0


def test_attention_norms_and_tokens():
    torch.manual_seed(2)
    model = nn.Module()
    model.attn = nn.MultiheadAttention(256, 4, batch_first=True)
    model.norm = nn.LayerNorm(256)
    model.token = nn.Parameter(torch.full((1, 1, 256), 0.5))
    with torch.no_grad():
        model.norm.weight.fill_(3.0)
        model.attn.in_proj_bias.fill_(1.0)
    init_weights(model, "glorot_normal")
    # in_proj_weight (3E, E): fan_in E, fan_out 3E
    assert model.attn.in_proj_weight.std().item() == pytest.approx(math.sqrt(2 / (256 + 768)), rel=0.02)
    assert torch.count_nonzero(model.attn.in_proj_bias) == 0
    assert torch.all(model.norm.weight == 3.0) and torch.all(model.token == 0.5)


def test_default_leaves_pytorch_init():
    torch.manual_seed(3)
    layer = nn.Linear(5, 3)
    before = [p.clone() for p in layer.parameters()]
    init_weights(layer, "default")
    assert all(torch.equal(a, b) for a, b in zip(before, layer.parameters()))
    assert torch.count_nonzero(layer.bias) > 0  # PyTorch's bias init is not zero


def test_recommended_init():
    assert recommended_init("relu") == "he_normal"
    assert recommended_init(nn.GELU()) == "he_normal"
    assert recommended_init(nn.LeakyReLU) == "he_normal"
    assert recommended_init("tanh") == "glorot_uniform"
    assert recommended_init(nn.Sigmoid()) == "glorot_uniform"
    assert all(recommended_init(a) in INIT_SCHEMES for a in ("silu", "elu", "identity"))
    with pytest.raises(ConfigError):
        recommended_init("sinusoid")
    with pytest.raises(ConfigError):
        init_weights(nn.Linear(2, 2), "orthogonal")
