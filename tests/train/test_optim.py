"""Optimizers: weight-decay groups, convergence on least squares, first updates by hand."""

import pytest
import torch
from torch import nn

from hepnn.errors import ConfigError
from hepnn.train.optim import OPTIMIZER_NAMES, build_optimizer, parameter_groups, split_decay_parameters


class _Net(nn.Module):
    """Every kind of parameter the decay rule has to sort."""

    def __init__(self, c: int = 8) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, c)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c))  # ndim 3, but a token: no decay
        self.conv = nn.Conv1d(c, c, 3)
        self.attn = nn.MultiheadAttention(c, 2, batch_first=True)
        self.norm = nn.LayerNorm(c)
        self.bn = nn.BatchNorm1d(c)
        self.fc = nn.Linear(c, c)
        self.head = nn.Linear(c, 10, bias=False)
        self.tied = nn.Linear(c, 10, bias=False)
        self.tied.weight = self.head.weight  # shared: must appear once
        self.frozen = nn.Linear(c, c)
        self.frozen.requires_grad_(False)


def test_decay_groups_follow_the_rule():
    net = _Net()
    decay, no_decay = split_decay_parameters(net)
    want_decay = {net.conv.weight, net.attn.in_proj_weight, net.attn.out_proj.weight, net.fc.weight, net.head.weight}
    want_no = {
        net.embed.weight, net.cls_token, net.conv.bias, net.attn.in_proj_bias, net.attn.out_proj.bias,
        net.norm.weight, net.norm.bias, net.bn.weight, net.bn.bias, net.fc.bias,
    }
    assert {id(p) for p in decay} == {id(p) for p in want_decay}
    assert {id(p) for p in no_decay} == {id(p) for p in want_no}
    assert len(decay) == len(want_decay) and len(no_decay) == len(want_no)  # shared weight once, frozen out


def test_optimizer_groups_carry_weight_decay():
    net = _Net()
    opt = build_optimizer(net, "adamw", lr=1e-3, weight_decay=0.1)
    by_name = {g["name"]: g for g in opt.param_groups}
    assert by_name["decay"]["weight_decay"] == 0.1 and by_name["no_decay"]["weight_decay"] == 0.0
    assert len(by_name["decay"]["params"]) == 5
    only_bias = nn.Sequential(nn.LayerNorm(4))
    assert [g["name"] for g in parameter_groups(only_bias, 0.1)] == ["no_decay"]


_LR = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.3, "rmsprop": 0.01, "adadelta": 1.0,
       "adam": 0.05, "amsgrad": 0.05, "adamw": 0.05}


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_each_optimizer_reduces_least_squares_loss(name):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 5, generator=g)
    y = X @ torch.tensor([1.0, -2.0, 0.5, 0.0, 3.0]) + 0.7
    torch.manual_seed(0)
    model = nn.Linear(5, 1)
    eps = 1e-4 if name == "adadelta" else 1e-8  # Adadelta steps start at ~sqrt(eps): tiny with 1e-8
    opt = build_optimizer(model, name, lr=_LR[name], weight_decay=1e-4, eps=eps)
    losses = []
    for _ in range(100):
        loss = (model(X)[:, 0] - y).square().mean()
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.1 * losses[0], (name, losses[0], losses[-1])


def _one_param(value: float = 1.0) -> nn.Linear:
    m = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        m.weight.fill_(value)
    return m


def _step(opt: torch.optim.Optimizer, p: torch.Tensor, grad: float) -> float:
    p.grad = torch.full_like(p, grad)
    opt.step()
    return p.item()


@pytest.mark.parametrize(
    ("name", "first", "second"),
    [
        # v1 = g1 = 2; p1 = 1 - 0.1*2; v2 = 0.9*2 + 1 = 2.8; p2 = 0.8 - 0.1*2.8
        ("momentum", 0.8, 0.52),
        # step uses g + mu v: 2 + 1.8 = 3.8 -> 0.62; then 1 + 0.9*2.8 = 3.52 -> 0.62 - 0.352
        ("nesterov", 0.62, 0.268),
        ("sgd", 0.8, 0.7),
    ],
)
def test_sgd_family_first_two_updates_by_hand(name, first, second):
    m = _one_param()
    opt = build_optimizer(m, name, lr=0.1, momentum=0.9)
    assert _step(opt, m.weight, 2.0) == pytest.approx(first, abs=1e-6)
    assert _step(opt, m.weight, 1.0) == pytest.approx(second, abs=1e-6)


def test_sgd_weight_decay_only_on_weight_by_hand():
    m = nn.Linear(1, 1)
    with torch.no_grad():
        m.weight.fill_(1.0)
        m.bias.fill_(1.0)
    opt = build_optimizer(m, "sgd", lr=0.1, weight_decay=0.5)
    m.weight.grad, m.bias.grad = torch.full((1, 1), 2.0), torch.full((1,), 2.0)
    opt.step()
    assert m.weight.item() == pytest.approx(1 - 0.1 * (2 + 0.5 * 1), abs=1e-6)  # 0.75
    assert m.bias.item() == pytest.approx(0.8, abs=1e-6)


@pytest.mark.parametrize("name", ["adam", "amsgrad", "adamw", "adagrad"])
def test_adaptive_first_step_is_lr_times_sign(name):
    # Adam: m_hat = g, v_hat = g^2 after bias correction -> step lr g / |g|; Adagrad: G = g^2 likewise
    m = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([[0.3, -0.2]]))
    opt = build_optimizer(m, name, lr=0.01)
    m.weight.grad = torch.tensor([[3.0, -0.5]])
    opt.step()
    assert torch.allclose(m.weight, torch.tensor([[0.3 - 0.01, -0.2 + 0.01]]), atol=1e-7)


def test_adamw_decoupled_vs_adam_coupled_decay_by_hand():
    lr, wd = 0.01, 0.5
    w = _one_param(2.0)
    opt = build_optimizer(w, "adamw", lr=lr, weight_decay=wd)
    _step(opt, w.weight, -1e-3)  # tiny gradient: sign still decides the Adam step
    assert w.weight.item() == pytest.approx(2.0 * (1 - lr * wd) + lr, abs=1e-6)
    a = _one_param(2.0)
    opt = build_optimizer(a, "adam", lr=lr, weight_decay=wd)
    _step(opt, a.weight, -1e-3)  # coupled: g + wd p = 0.999 > 0 -> step -lr
    assert a.weight.item() == pytest.approx(2.0 - lr, abs=1e-6)


def test_rmsprop_first_step_by_hand():
    # v = (1 - 0.99) g^2 -> step lr g / (0.1 |g|) = 10 lr sign(g) (momentum buffer starts at that)
    m = _one_param(1.0)
    opt = build_optimizer(m, "rmsprop", lr=0.001, momentum=0.9)
    assert _step(opt, m.weight, 4.0) == pytest.approx(1.0 - 0.01, abs=1e-6)


def test_errors():
    with pytest.raises(ConfigError):
        build_optimizer(nn.Linear(2, 2), "lion", lr=1e-3)
    with pytest.raises(ConfigError):
        build_optimizer(nn.Linear(2, 2).requires_grad_(False), "adam", lr=1e-3)
