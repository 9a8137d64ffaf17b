"""train.amp=auto: bf16 only on CPUs that multiply it natively (fp32 on GPUs, where it was measured
slower), decided from faked capabilities."""

from __future__ import annotations

import logging

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
