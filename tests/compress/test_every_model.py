"""Pruning and int8 quantization work on every classifier of the zoo, not only on the PFN of the worked example.

Several models read a Linear layer's weight themselves instead of calling the layer (ParT's folded
pair-embedding norm, fused q/k/v products, EdgeConv's split first layer, LorentzNet's edge MLPs):
torch's pruning hook and torchao's int8 weights only act through the layer's own call, so such a
layer must be left out (the model declares it, ``weights_read_directly``). Without that, fine-tuning a
pruned ParT failed with "backward through the graph a second time" and its int8 copy with an
unimplemented Int8Tensor operator.
"""

from __future__ import annotations

from dataclasses import fields

import pytest
import torch

from hepnn.compress.prune import make_permanent, prune_step, sparsity_report
from hepnn.compress.quantize import quantized_copy
from tests.models.test_contract import CLASSIFIERS, build, make_batch


def float32_batch(name: str):
    batch = make_batch(name, n_jets=8)
    for f in fields(batch):
        value = getattr(batch, f.name)
        if value is not None and value.is_floating_point():
            setattr(batch, f.name, value.float())
    return batch


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_pruned_model_fine_tunes_and_its_masks_hold(name):
    model = build(name).float().train()
    batch = float32_batch(name)
    prune_step(model, 0.5)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    for _ in range(2):  # a second backward reuses nothing of the first
        opt.zero_grad()
        model(batch).float().pow(2).sum().backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        during = model(batch)  # what the model computes with the masks as hooks
        make_permanent(model)
        after = model(batch)  # with the masked weights folded in
    # a layer read directly would have computed with a stale weight above, not the trained one
    torch.testing.assert_close(during, after)
    report = sparsity_report(model)
    n_weights = sum(layer["weights"] for layer in report["layers"])
    assert report["total"] == pytest.approx(0.5, abs=1 / n_weights + 0.01)  # torch rounds the count


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_int8_copy_runs_and_stays_close(name):
    model = build(name).float().eval()
    batch = float32_batch(name)
    with torch.no_grad():
        ref, out = model(batch), quantized_copy(model)(batch)
    assert out.shape == ref.shape and torch.isfinite(out).all()
    # int8 weights and per-token activations: within 8 % of the output's scale on every model today
    assert (out - ref).abs().max() <= 0.15 * ref.abs().max()
