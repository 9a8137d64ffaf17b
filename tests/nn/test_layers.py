"""hepnn.nn.layers: masked pooling by hand (padding never counts, empty jets give 0), the MLP builder's
layer stack and values, and activations against torch's functional forms."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hepnn.nn.layers import activation, masked_max, masked_mean, masked_pool, masked_sum, mlp

# Two jets, three slots: jet 0 has two real particles (the third slot holds garbage), jet 1 has one
# real particle whose features are all negative (an unmasked max would return the padding's 0).
X = torch.tensor([[[1.0, 2.0], [3.0, -4.0], [100.0, 100.0]],
                  [[-1.0, -5.0], [0.0, 0.0], [0.0, 0.0]]])  # (B=2, N=3, C=2)
MASK = torch.tensor([[True, True, False], [True, False, False]])  # (B, N)
BY_HAND = {
    "sum": [[4.0, -2.0], [-1.0, -5.0]],
    "mean": [[2.0, -1.0], [-1.0, -5.0]],
    "max": [[3.0, 2.0], [-1.0, -5.0]],
}
POOLS = {"sum": masked_sum, "mean": masked_mean, "max": masked_max}


def padded_variant(x: torch.Tensor, mask: torch.Tensor, extra: int, seed: int = 0):
    """Same jets with garbage in every padded slot and ``extra`` more padded slots."""
    g = torch.Generator().manual_seed(seed)
    x = torch.cat([x, torch.zeros(x.shape[0], extra, x.shape[2], dtype=x.dtype)], dim=1)  # (B, N + extra, C)
    mask = torch.cat([mask, torch.zeros(mask.shape[0], extra, dtype=torch.bool)], dim=1)
    garbage = 1e3 * torch.randn(x.shape, generator=g, dtype=x.dtype)
    return torch.where(mask.unsqueeze(-1), x, garbage), mask


@pytest.mark.parametrize("how", ["sum", "mean", "max"])
def test_pooling_by_hand(how):
    expected = torch.tensor(BY_HAND[how])
    assert torch.equal(POOLS[how](X, MASK), expected)
    assert torch.equal(masked_pool(X, MASK, how), expected)


@pytest.mark.parametrize("how", ["sum", "mean", "max"])
def test_padding_never_changes_the_pool(how):
    x, mask = padded_variant(X, MASK, extra=4)
    assert torch.equal(masked_pool(x, mask, how), torch.tensor(BY_HAND[how]))


@pytest.mark.parametrize("how", ["sum", "mean", "max"])
def test_empty_jet_pools_to_zero(how):
    x = torch.full((1, 3, 2), -7.0)
    assert torch.equal(masked_pool(x, torch.zeros(1, 3, dtype=torch.bool), how), torch.zeros(1, 2))


@pytest.mark.parametrize("how", ["sum", "mean", "max"])
def test_pooling_is_permutation_invariant_and_matches_a_loop(how):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(4, 6, 3, generator=g, dtype=torch.float64)
    mask = torch.rand(4, 6, generator=g) < 0.6
    mask[:, 0] = True
    reduce = {"sum": lambda r: r.sum(0), "mean": lambda r: r.mean(0), "max": lambda r: r.max(0).values}[how]
    loop = torch.stack([reduce(x[b][mask[b]]) for b in range(4)])
    torch.testing.assert_close(masked_pool(x, mask, how), loop, rtol=1e-12, atol=1e-12)
    perm = torch.randperm(6, generator=g)
    torch.testing.assert_close(masked_pool(x[:, perm], mask[:, perm], how), loop, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("how", ["sum", "mean", "max"])
def test_no_gradient_reaches_padded_particles(how):
    x = X.clone().requires_grad_(True)
    masked_pool(x, MASK, how).sum().backward()
    assert torch.equal(x.grad[~MASK], torch.zeros(3, 2))
    assert x.grad[MASK].abs().sum() > 0


def test_unknown_pooling_names_the_choices():
    with pytest.raises(ValueError, match="unknown pooling 'median'.*sum, mean, max"):
        masked_pool(X, MASK, "median")


REFERENCE = {
    "relu": F.relu, "gelu": F.gelu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
    "leaky_relu": F.leaky_relu, "elu": F.elu, "silu": F.silu,
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_activation_by_name_computes_torchs_function(name):
    z = torch.linspace(-3, 3, 13)
    torch.testing.assert_close(activation(name)(z), REFERENCE[name](z))


def test_unknown_activation_names_the_choices():
    with pytest.raises(ValueError, match="unknown activation 'swish'; choose from relu, gelu"):
        activation("swish")


def kinds(seq: nn.Sequential) -> list[str]:
    return [type(m).__name__ for m in seq]


def test_mlp_stack_without_final_activation():
    net = mlp([3, 5, 4, 2], act="tanh")
    assert kinds(net) == ["Linear", "Tanh", "Linear", "Tanh", "Linear"]
    assert [(m.in_features, m.out_features) for m in net if isinstance(m, nn.Linear)] == [(3, 5), (5, 4), (4, 2)]


@pytest.mark.parametrize("norm, norm_kind", [("batch", "BatchNorm1d"), ("layer", "LayerNorm")])
def test_mlp_norm_dropout_and_final_act(norm, norm_kind):
    net = mlp([3, 5, 2], act="gelu", norm=norm, dropout=0.25, final_act=True)
    assert kinds(net) == ["Linear", norm_kind, "GELU", "Dropout", "Linear", norm_kind, "GELU", "Dropout"]
    norms = [m for m in net if type(m).__name__ == norm_kind]
    assert [m.weight.shape[0] for m in norms] == [5, 2]
    assert all(m.p == 0.25 for m in net if isinstance(m, nn.Dropout))


def test_mlp_computes_linear_act_linear():
    torch.manual_seed(0)
    net = mlp([3, 4, 2], act="relu")
    x = torch.randn(5, 3)
    lin1, lin2 = net[0], net[2]
    expected = torch.relu(x @ lin1.weight.T + lin1.bias) @ lin2.weight.T + lin2.bias
    torch.testing.assert_close(net(x), expected)
    assert (net(x) < 0).any()  # no activation after the last layer


def test_mlp_rejects_unknown_norm():
    with pytest.raises(ValueError, match="unknown norm 'group'"):
        mlp([3, 4, 2], norm="group")
