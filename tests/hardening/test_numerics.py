"""Numerics: a diverging run stops at the step where the loss or gradient turns non-finite, with the
batch's statistics; fp16 overflow is handled by the GradScaler (skipped step, smaller scale)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hepnn.data.batch import Batch
from hepnn.errors import HepnnError
from hepnn.train.engine import Engine
from tests.hardening.conftest import ROOT, assert_one_line_error, hepnn


class _Linear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.full((1,), 1e-3))

    def forward(self, batch: Batch) -> torch.Tensor:
        return batch.x.reshape(-1) * self.w


class _SumTask:
    """loss = sum(w x): finite for x = 1e34, but its gradient x times a 2^16 loss scale overflows float32."""

    def step(self, model, batch):
        loss = model(batch).sum()
        return loss, {"loss": float(loss.detach())}


class _NoSchedule:
    def step_batch(self) -> None:
        pass


def _batch(value: float, n: int = 1) -> Batch:
    return Batch(x=torch.full((1, n, 1), value), mask=torch.ones(1, n, dtype=torch.bool), y=torch.zeros(1))


def _engine(scaler: bool) -> Engine:
    model = _Linear()
    engine = Engine(model, _SumTask(), torch.optim.SGD(model.parameters(), lr=1e-33), _NoSchedule(),
                    device="cpu", progress=False)
    if scaler:  # the fp16 path (GPU only in a run) with the same GradScaler logic on CPU
        engine.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    return engine


def test_grad_scaler_skips_an_overflowing_step_and_lowers_the_scale():
    engine = _engine(scaler=True)
    w0 = engine.model.w.detach().clone()
    engine.train_step(_batch(1e34))  # scaled gradient 1e34 * 65536 > float32 max: inf, step skipped
    assert torch.equal(engine.model.w.detach(), w0)
    assert engine.scaler.get_scale() == 2.0**15
    engine.train_step(_batch(1e30))  # in range again: the step is taken (w -= 1e-33 * 1e30 = 1e-3)
    assert abs(engine.model.w.item()) < 1e-9
    assert engine.state["step"] == 2


def test_without_a_scaler_an_infinite_gradient_stops_the_run():
    engine = _engine(scaler=False)
    # loss = 1e-3 * (3e38 + 3e38) is finite; its gradient 3e38 + 3e38 overflows float32
    with pytest.raises(HepnnError, match=r"non-finite gradient norm \(inf\) at epoch 0, step 0 \(x: 0 non-finite, "
                                         r"max \|value\| 3e\+38"):
        engine.train_step(_batch(3e38, n=2))
    with pytest.raises(HepnnError, match="non-finite loss"):
        engine.train_step(_batch(float("inf")))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 autocast trains on a GPU only")
def test_fp16_on_gpu_survives_overflow():
    model = _Linear()
    engine = Engine(model, _SumTask(), torch.optim.SGD(model.parameters(), lr=1e-40), _NoSchedule(),
                    device="cuda", amp="fp16", progress=False)
    engine.train_step(_batch(1e34).to(engine.device))
    assert engine.scaler.get_scale() < 2.0**16


def test_fp16_on_cpu_is_a_clear_error():
    with pytest.raises(HepnnError, match="train.amp=fp16 needs a GPU"):
        Engine(_Linear(), _SumTask(), torch.optim.SGD(_Linear().parameters(), lr=1.0), _NoSchedule(),
               device="cpu", amp="fp16", progress=False)


@pytest.mark.slow
def test_divergence_is_caught_at_the_step_with_batch_statistics(capsys, tmp_path):
    code, out = hepnn(capsys, "-q", "train", str(ROOT / "configs/top_tagging/mlp.yaml"), "data.max_jets=1000",
                      "train.optimizer.name=sgd", "train.optimizer.lr=1e6", "train.epochs=3",
                      "train.schedule.warmup_steps=0", "--out", str(tmp_path / "r"))
    assert_one_line_error(code, out, "non-finite", "at epoch 0, step", "max |value|", "train.optimizer.lr")
    assert not (tmp_path / "r" / "model.safetensors").exists()
