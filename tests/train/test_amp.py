"""train.amp=auto: bf16 only on CPUs that multiply it natively (fp32 on GPUs, where it was measured
slower), decided from faked capabilities."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from hepnn.config import TrainConfig
from hepnn.errors import HepnnError
from hepnn.train.amp import _log_once, cpu_flags, fast_bf16, resolve_amp

AVX2 = frozenset({"sse4_2", "avx", "avx2", "fma"})
AVX512 = AVX2 | {"avx512f", "avx512bw", "avx512vl"}  # AVX-512 without BF16: emulated bf16


def test_auto_is_the_default():
    assert TrainConfig().amp == "auto"


@pytest.mark.parametrize(
    "flags, expected",
    [(AVX2, None), (AVX512, None), (AVX512 | {"avx512_bf16"}, torch.bfloat16),
     (AVX512 | {"avx512_bf16", "amx_tile", "amx_bf16"}, torch.bfloat16), (frozenset(), None)],
)
def test_cpu_decision_from_flags(flags, expected):
    assert resolve_amp("auto", "cpu", flags=flags) is expected


@pytest.mark.parametrize("capability", [(7, 0), (7, 5), (8, 0), (9, 0)])
def test_cuda_stays_fp32_whatever_its_bf16(capability):
    assert fast_bf16("cuda", cuda_capability=capability)[0] is (capability >= (8, 0))  # what the GPU can do
    assert resolve_amp("auto", "cuda", cuda_capability=capability) is None  # what auto chooses
    assert resolve_amp("bf16", "cuda", cuda_capability=capability) is torch.bfloat16


def test_explicit_choices_are_kept_and_fp16_needs_a_gpu():
    assert resolve_amp("none", "cpu", flags=AVX512 | {"amx_bf16"}) is None
    assert resolve_amp("bf16", "cpu", flags=AVX2) is torch.bfloat16
    assert resolve_amp("fp16", "cuda", cuda_capability=(7, 0)) is torch.float16
    with pytest.raises(HepnnError, match="fp16 needs a GPU"):
        resolve_amp("fp16", "cpu")
    with pytest.raises(HepnnError, match="train.amp must be one of"):
        resolve_amp("fp8", "cpu")


def test_mps_stays_fp32():
    assert fast_bf16("mps")[0] is False


def test_decision_is_logged_once():
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("hepnn.train.amp")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    _log_once.cache_clear()
    try:
        for _ in range(3):
            resolve_amp("auto", "cpu", flags=AVX2)
            resolve_amp("auto", "cuda", cuda_capability=(9, 0))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    messages = [r.getMessage() for r in records]
    assert len(messages) == 2, messages
    assert "fp32 on cpu" in messages[0] and "emulated" in messages[0]
    assert "fp32 on cuda" in messages[1] and "train.amp=bf16" in messages[1]


def test_cpu_flags_parsed_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 amx_bf16 avx512_bf16\n\n")
    assert {"avx2", "amx_bf16", "avx512_bf16"} <= cpu_flags(info)
    assert fast_bf16("cpu", flags=cpu_flags(info))[0]
    assert cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize("name", ["part_lite", "lorentznet_lite", "pelican_lite", "particlenet_lite"])
def test_packed_models_train_and_predict_under_bf16_autocast(name):
    """bf16 autocast (what train.amp=auto picks on AMX CPUs and Ampere+ GPUs) runs the packed layouts:
    a training step and predictions stay finite, and the loss is close to fp32's."""
    import numpy as np

    from hepnn.data.batch import Batch
    from hepnn.data.features import particle_features
    from hepnn.data.jagged import JaggedJets
    from hepnn.registry import create_model, get_model_spec
    from hepnn.train.engine import Engine
    from hepnn.train.losses import build_loss
    from hepnn.train.optim import build_optimizer
    from hepnn.train.schedules import build_schedule
    from hepnn.train.tasks import ClassifyTask
    from tests.conftest import random_jets

    jets = JaggedJets.from_awkward(random_jets(24, seed=1, max_particles=12), target="label")
    pad = jets.pad(np.arange(24))
    p4, mask = torch.from_numpy(pad.p4), torch.from_numpy(pad.mask)
    spec = get_model_spec(name)
    kw = {"in_features": 7} if "x" in spec.inputs else {}
    feats = ["deta", "dphi", "log_pt", "log_e", "log_pt_rel", "log_e_rel", "dr"]
    batch = Batch(x=particle_features(p4, mask, feats) if "x" in spec.inputs else None, mask=mask,
                  p4=p4 * 0.01, y=torch.from_numpy(jets.y))  # p4 in units of 100 GeV: bf16-sized numbers
    losses = {}
    for amp in ("none", "bf16"):
        torch.manual_seed(0)
        model = create_model(name, **kw)
        opt = build_optimizer(model, "adam", lr=1e-3)
        engine = Engine(model, ClassifyTask(build_loss("ce", num_classes=2), "ce", 2), opt,
                        build_schedule(opt, "constant", total_steps=10, steps_per_epoch=1), amp=amp, progress=False)
        losses[amp] = engine.train_step(batch)["loss"]
        out = engine.predict([batch])
        assert np.isfinite(out["score"]).all()
    assert np.isfinite(losses["bf16"]) and abs(losses["bf16"] - losses["none"]) < 0.05 * max(1.0, losses["none"])


@pytest.mark.parametrize("model, amp, expected", [
    ("perceptron", "auto", "none"), ("mlp", "auto", "none"),  # jet-level: bf16 gains nothing, costs the score
    ("mlp", "bf16", "bf16"), ("pfn", "auto", "auto"), ("part_lite", "auto", "auto")])
def test_run_amp_keeps_jet_level_models_in_fp32(model, amp, expected):
    from hepnn.config import load_config
    from hepnn.runs import run_amp
    from tests.conftest import ROOT

    cfg = load_config(ROOT / "configs" / "top_tagging" / "mlp.yaml", [f"model.name={model}", f"train.amp={amp}"])
    assert run_amp(cfg) == expected


@pytest.mark.parametrize("amp", ["none", "bf16"])
def test_evaluation_scores_at_the_runs_precision(amp, monkeypatch):
    """The test split is scored on the model's device at the run's train.amp (it used "auto" and the
    CPU whatever the run said: train.amp=none was ignored in evaluation)."""
    import numpy as np

    import hepnn.train.engine as engine_module
    from hepnn.config import load_config
    from hepnn.data.dataset import fit_preprocessors, load_splits
    from hepnn.evaluate.scores import predict_jets
    from hepnn.runs import build_model, run_fields
    from tests.conftest import ROOT

    cfg = load_config(ROOT / "configs" / "top_tagging" / "pfn.yaml", [f"train.amp={amp}"])
    fields = run_fields(cfg)
    splits = load_splits(cfg.data, fields=fields, task="classify", seed=0)
    pre = fit_preprocessors(cfg.preprocess, splits.train_sample, data=cfg.data, fields=fields, seed=0)
    seen = []
    real = engine_module.predict_outputs

    def spy(model, task, loader, device="cpu", amp="auto"):
        seen.append((torch.device(device), amp))
        return real(model, task, loader, device, amp)

    monkeypatch.setattr(engine_module, "predict_outputs", spy)
    out = predict_jets(cfg, build_model(cfg), pre, splits.test.take(np.arange(64)), "classify")
    assert seen == [(torch.device("cpu"), amp)] and np.isfinite(out["score"]).all()


# ---------------------------------------------------------------- the output layer in fp32 (fp32_head)


def _run_model(name: str):
    """The run's model (``build_model``, output layer in fp32) and the same factory's plain model
    with the same weights; ``name`` on the PFN's particle features or the MLP's jet observables."""
    from hepnn.config import load_config
    from hepnn.registry import create_model, get_model_spec
    from hepnn.runs import build_model, model_inputs
    from tests.conftest import ROOT

    config = "pfn.yaml" if "x" in get_model_spec(name).inputs else "mlp.yaml"
    params = [] if name in ("pfn", "mlp") else ["model.params={}"]
    cfg = load_config(ROOT / "configs" / "top_tagging" / config, [f"model.name={name}", *params])
    torch.manual_seed(0)
    run = build_model(cfg).eval()
    plain = create_model(name, **model_inputs(cfg, get_model_spec(name)), **cfg.model.params).eval()
    plain.load_state_dict(run.state_dict())
    return run, plain


def _inputs(n: int = 1000, seed: int = 0):
    """Random jets as the models read them: x (7 features, 30 slots), p4 (in units of 100 GeV: the
    sizes bf16 sees after preprocessing) and the MLP's 9 observables."""
    from hepnn.data.batch import Batch

    g = torch.Generator().manual_seed(seed)
    mask = torch.arange(30) < torch.randint(5, 31, (n, 1), generator=g)  # (B, N)
    p = torch.randn(n, 30, 3, generator=g)  # (B, N, 3)
    p4 = torch.cat([p.norm(dim=-1, keepdim=True) + 0.1, p], dim=-1)  # (B, N, 4), massive
    return Batch(x=torch.randn(n, 30, 7, generator=g), mask=mask, p4=p4, jet=torch.randn(n, 9, generator=g))


def _bf16(model, batch):
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        return model(batch)


@pytest.mark.parametrize("name", ["pfn", "mlp", "part_lite"])
def test_bf16_logits_are_float32_and_every_jet_gets_its_own_score(name):
    """Under bf16 autocast the run's model gives fp32 logits, a score per jet (≥ 99% distinct: two fp32
    softmax scores can still coincide). The same weights without fp32_head give bf16 logits and tied
    scores (the PFN trained in bf16: 651 distinct among 1000 test jets of the committed sample)."""
    run, plain = _run_model(name)
    batch = _inputs()
    ours, theirs = _bf16(run, batch), _bf16(plain, batch)
    assert ours.dtype == torch.float32 and theirs.dtype == torch.bfloat16

    def distinct(logits):
        return len(torch.unique(torch.softmax(logits.float(), dim=1)[:, 1]))

    assert distinct(ours) >= 0.99 * len(batch) and distinct(theirs) < 0.9 * len(batch)
    with torch.no_grad():  # the body still ran in bf16: close to fp32
        fp32 = run(batch)
    torch.testing.assert_close(ours, fp32, rtol=0.1, atol=0.05)


def test_a_linear_model_under_bf16_is_its_fp32_self():
    """The perceptron is its output layer alone: under bf16 autocast it computes exactly what it does
    in fp32 (its score was the difference of two bf16-rounded logits)."""
    run, plain = _run_model("perceptron")
    batch = _inputs()
    with torch.no_grad():
        assert torch.equal(_bf16(run, batch), run(batch))
        assert not torch.equal(_bf16(plain, batch).float(), plain(batch))


@pytest.mark.parametrize("name", ["pfn", "mlp", "part_lite", "particlenet_lite"])
def test_fp32_outputs_are_bit_identical_with_and_without_fp32_head(name):
    run, plain = _run_model(name)
    batch = _inputs(64)
    with torch.no_grad():
        assert torch.equal(run(batch), plain(batch))


def test_state_dict_keys_safetensors_and_copies_are_unchanged(tmp_path):
    """Checkpoints, init_from and export read state-dict keys: fp32_head changes none. A safetensors
    round trip gives the same bf16 outputs, and a deep copy (quantized_copy makes one) runs its own
    head in fp32, not the original's."""
    import copy

    from hepnn.train.checkpoint import load_weights, save_weights

    run, plain = _run_model("pfn")
    assert list(run.state_dict()) == list(plain.state_dict())
    assert [n for n, _ in run.named_parameters()] == [n for n, _ in plain.named_parameters()]
    save_weights(run, tmp_path / "model.safetensors")
    torch.manual_seed(1)
    loaded, _ = _run_model("pfn")
    with torch.no_grad():
        loaded.f[6].weight.zero_()  # different weights until loaded
    load_weights(loaded, tmp_path / "model.safetensors")
    batch = _inputs(200)
    assert torch.equal(_bf16(loaded, batch), _bf16(run, batch))
    twin = copy.deepcopy(run)
    with torch.no_grad():
        twin.f[6].bias.add_(1.0)
    assert twin.f[6].forward.module is twin.f[6]
    torch.testing.assert_close(_bf16(twin, batch), _bf16(run, batch) + 1.0)


def test_training_under_bf16_reaches_the_head_in_fp32_and_the_body_in_bf16():
    from hepnn.train.engine import Engine
    from hepnn.train.losses import build_loss
    from hepnn.train.optim import build_optimizer
    from hepnn.train.schedules import build_schedule
    from hepnn.train.tasks import ClassifyTask

    model, _ = _run_model("pfn")
    head = model.f[6]
    seen = []
    head.register_forward_hook(lambda m, args, out: seen.append((args[0].dtype, out.dtype)))
    batch = _inputs(128)
    batch.y = (batch.mask.sum(1) > 17).long()  # a learnable label: multiplicity
    opt = build_optimizer(model, "adam", lr=1e-3)
    engine = Engine(model, ClassifyTask(build_loss("ce", num_classes=2), "ce", 2), opt,
                    build_schedule(opt, "constant", total_steps=10, steps_per_epoch=1), amp="bf16", progress=False)
    before = head.weight.detach().clone()
    losses = [engine.train_step(batch)["loss"] for _ in range(10)]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert head.weight.grad.dtype == torch.float32 and head.weight.grad.abs().sum() > 0
    assert not torch.equal(head.weight, before)
    assert seen[0] == (torch.bfloat16, torch.float32)  # bf16 features in, fp32 logits out


def test_fp32_head_on_other_owners(caplog):
    """Any leaf module runs in fp32 (here not a Linear); an owner with submodules stays under
    autocast with a warning (fp32 there would cover its subtree); wrapping twice is wrapping once."""
    from torch import nn

    from hepnn.train.amp import FP32Forward, fp32_head

    class Scale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.full((3,), 1.001))

        def forward(self, h):
            return h @ torch.diag(self.w)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Linear(3, 3)
            self.scale = Scale()
            self.temperature = nn.Parameter(torch.ones(3))

        def forward(self, x):
            return self.scale(self.body(x)) * self.temperature

    net = Net()
    with caplog.at_level(logging.WARNING, logger="hepnn.train.amp"):
        assert fp32_head(net, ["scale.w", "temperature"]) == ["scale"]
    assert "(the model itself)" in caplog.text and isinstance(net.scale.forward, FP32Forward)
    first = net.scale.forward
    assert fp32_head(net, ["scale.w"]) == ["scale"] and net.scale.forward is first
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        h = net.body(torch.randn(5, 3))
        assert h.dtype == torch.bfloat16 and net.scale(h).dtype == torch.float32


@pytest.mark.parametrize("overrides, expected", [
    ((), ["f.6.weight", "f.6.bias"]), (("train.loss=bce",), ["f.6.weight", "f.6.bias"]),
    (("data.target=jet_mass",), ["f.6.weight", "f.6.bias"])])
def test_output_names_for_logits_a_bce_logit_and_regression(overrides, expected):
    """The output layer is found by the factory's num_classes (one output for bce and regression:
    the data's class count says nothing there), without moving torch's random stream."""
    from hepnn.config import load_config
    from hepnn.registry import create_model, get_model_spec
    from hepnn.runs import build_model, model_inputs, output_names
    from tests.conftest import ROOT

    cfg = load_config(ROOT / "configs" / "top_tagging" / "pfn.yaml", list(overrides))
    assert output_names(cfg) == expected
    torch.manual_seed(0)
    build_model(cfg)
    after_build = torch.rand(3)
    torch.manual_seed(0)
    create_model("pfn", **model_inputs(cfg, get_model_spec("pfn")), **cfg.model.params)
    assert torch.equal(after_build, torch.rand(3))
