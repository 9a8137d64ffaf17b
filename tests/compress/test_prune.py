"""Magnitude pruning: the requested sparsity, the right weights, masks that survive training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hepnn.compress.prune import cubic_schedule, make_permanent, prune_model, prune_step, sparsity_report
from hepnn.errors import HepnnError


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 40), nn.ReLU(), nn.Linear(40, 30), nn.ReLU(), nn.Linear(30, 2))


def _weights(model: nn.Module) -> list[np.ndarray]:
    return [m.weight.detach().numpy().copy() for m in model if isinstance(m, nn.Linear)]


def test_cubic_schedule_by_hand():
    # s (1 - (1 - k/K)^3) for s = 0.9, K = 3: 0.9 * 19/27, 0.9 * 26/27, 0.9
    assert cubic_schedule(0.9, 3) == pytest.approx([0.9 * 19 / 27, 0.9 * 26 / 27, 0.9])
    with pytest.raises(HepnnError):
        cubic_schedule(1.0, 3)


def test_global_unstructured_removes_the_smallest_weights():
    model = _net()
    before = _weights(model)
    report = prune_model(model, 0.9)
    flat = np.concatenate([np.abs(w).ravel() for w in before])
    n_zero = int(round(0.9 * flat.size))
    threshold = np.sort(flat)[n_zero - 1]  # numpy's global L1 cut, independent of torch.prune
    for w0, w in zip(before, _weights(model)):
        np.testing.assert_array_equal(w == 0, np.abs(w0) <= threshold)
    assert report["total"] == pytest.approx(n_zero / flat.size)
    assert not any(k.endswith(("_orig", "_mask")) for k in model.state_dict())  # permanent


@pytest.mark.parametrize("steps", [1, 3])
def test_iterative_pruning_reaches_the_target_and_masks_survive_training(steps):
    model = _net(1)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    seen = []

    def between(m, k):  # a few optimizer steps with the masks in place (what fine-tuning does)
        zero = [w == 0 for w in _weights(m)]
        for _ in range(3):
            opt = torch.optim.SGD(m.parameters(), lr=0.5)
            loss = m(torch.randn(16, 10)).pow(2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        for z, w in zip(zero, _weights(m)):
            assert np.all(w[z] == 0), "a pruned weight came back during fine-tuning"
        seen.append(sparsity_report(m)["total"])

    report = prune_model(model, 0.8, steps=steps, between=between)
    assert opt is not None
    assert seen == pytest.approx(cubic_schedule(0.8, steps), abs=2e-3)
    assert report["total"] == pytest.approx(0.8, abs=1e-3)


def test_structured_prunes_the_weakest_rows_and_keeps_the_output_layer():
    model = _net(2)
    before = _weights(model)
    prune_step(model, 0.5, structured=True)
    make_permanent(model)
    after = _weights(model)
    for w0, w in zip(before[:-1], after[:-1]):
        norms = np.linalg.norm(w0, axis=1)
        expect = np.argsort(norms)[: int(round(0.5 * len(norms)))]  # weakest output channels by L2 norm
        np.testing.assert_array_equal(np.flatnonzero((w == 0).all(axis=1)), np.sort(expect))
    np.testing.assert_array_equal(after[-1], before[-1])  # the logits layer keeps every class


def test_report_counts_by_hand():
    model = nn.Sequential(nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
    report = sparsity_report(model)
    assert report["total"] == 0.75 and report["zero_rows"] == 1
    assert report["layers"][0]["zeros"] == 3
