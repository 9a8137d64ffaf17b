"""Int8 quantization with torchao: close to float, recipes that rebuild the same model, honest sizes."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

pytest.importorskip("torchao")

from hepnn.compress.quantize import calibrate, convert_qat, make_recipe, prepare_qat  # noqa: E402
from hepnn.compress.recipe import apply_recipe, linear_layers  # noqa: E402
from hepnn.compress.rundir import model_stats  # noqa: E402


class _Net(nn.Module):
    """Reads a Batch like the registered models."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(7, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        self.head = nn.Linear(64, 2)

    def forward(self, batch):
        h = self.body(batch.x)  # (B, N, 64)
        m = batch.mask.unsqueeze(-1).float()
        return self.head((h * m).sum(1) / m.sum(1).clamp_min(1))


@pytest.mark.parametrize("scheme", ["int8_dynamic", "int8_static"])
def test_quantized_close_to_float_and_recipe_round_trip(scheme, real_batches):
    net = _Net().eval()
    calib = calibrate(net, real_batches[:2], linear_layers(net)) if scheme == "int8_static" else None
    recipe = json.loads(json.dumps(make_recipe(net, scheme, calib)))  # through JSON, as on disk
    q1, q2 = apply_recipe(copy.deepcopy(net), recipe), apply_recipe(copy.deepcopy(net), recipe)
    b = real_batches[0]
    with torch.no_grad():
        ref, out1, out2 = net(b), q1(b), q2(b)
    assert torch.equal(out1, out2)  # the recipe alone rebuilds the very same model
    # unstandardized inputs up to ~10 through three int8 layers: a few per cent of the logit scale;
    # a broken quantization (wrong scale, transposed weights) is off by the whole scale
    assert (out1 - ref).abs().max() <= 0.15 * ref.abs().max()


def test_calibration_scales_by_hand(real_batches):
    net = _Net().eval()
    stats = calibrate(net, real_batches, ["body.0"])
    absmax = max(float(b.x.abs().max()) for b in real_batches)  # body.0 sees the raw features
    assert stats["body.0"]["absmax"] == pytest.approx(absmax)
    assert stats["body.0"]["ndim"] == 3
    assert make_recipe(net, "int8_static", stats)["activation_scales"]["body.0"] == pytest.approx(absmax / 127)


def test_int8_size_is_a_quarter_plus_scales():
    net = _Net().eval()
    before = model_stats(net)
    q = apply_recipe(copy.deepcopy(net), make_recipe(net, "int8_dynamic"))
    after = model_stats(q)
    weights = sum(m.weight.numel() for m in net.modules() if isinstance(m, nn.Linear))
    rows = sum(m.out_features for m in net.modules() if isinstance(m, nn.Linear))
    biases = sum(m.bias.numel() for m in net.modules() if isinstance(m, nn.Linear))
    assert before["size_bytes"] == 4 * (weights + biases)
    # int8 weights, one fp32 scale per output row, fp32 biases
    assert weights + 4 * biases + 4 * rows <= after["size_bytes"] <= weights + 4 * biases + 8 * rows
    assert after["n_params"] == before["n_params"]


def test_qat_keeps_the_state_dict_and_trains():
    net = _Net()
    keys = set(net.state_dict())
    prepare_qat(net)
    assert set(net.state_dict()) == keys  # fake quantizers add no weights: safetensors stays plain
    from hepnn.data.batch import Batch

    b = Batch(x=torch.randn(4, 5, 7), mask=torch.ones(4, 5, dtype=torch.bool))
    net(b).sum().backward()
    assert net.body[0].weight.grad is not None
    convert_qat(net)
    assert type(net.body[0]) is nn.Linear
