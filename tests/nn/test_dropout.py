"""Cheap CPU dropout: keeps 1 − p of the elements, scales them like torch, reproducible, exact backward."""

from __future__ import annotations

import pytest
import torch

from hepnn.nn.dropout import Dropout, dropout, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_keep_fraction_and_lanes_are_unbiased(p):
    torch.manual_seed(0)
    keep = keep_mask((4000, 1000), p, torch.device("cpu"))
    assert keep.dtype == torch.bool and keep.shape == (4000, 1000)
    # 4M draws: the binomial standard error of the fraction is < 2.5e-4
    assert abs(keep.float().mean().item() - (1 - p)) < 2e-3
    for lane in range(4):  # each 16-bit lane of the 64-bit words is uniform on its own
        assert abs(keep.view(-1, 4)[:, lane].float().mean().item() - (1 - p)) < 3e-3


def test_scale_backward_and_reproducibility():
    x = torch.randn(64, 33, requires_grad=True)
    torch.manual_seed(1)
    y = dropout(x, 0.25, training=True)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / 0.75)
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.to(x.dtype) / 0.75)
    torch.manual_seed(1)
    assert torch.equal(dropout(x, 0.25, training=True), y)


def test_identity_when_not_training_and_module_semantics():
    x = torch.randn(5, 7)
    assert dropout(x, 0.3, training=False) is x and dropout(x, 0.0, training=True) is x
    layer = Dropout(0.3).eval()
    assert layer(x) is x
    assert (Dropout(1.0).train()(x) == 0).all()
    with pytest.raises(ValueError):
        Dropout(1.5)
