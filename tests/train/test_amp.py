"""train.amp=auto: bf16 only where the hardware multiplies it natively, decided from faked capabilities."""

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


@pytest.mark.parametrize("capability, expected", [((7, 0), None), ((7, 5), None), ((8, 0), torch.bfloat16),
                                                  ((9, 0), torch.bfloat16)])
def test_cuda_decision_from_compute_capability(capability, expected):
    assert resolve_amp("auto", "cuda", cuda_capability=capability) is expected


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
    assert "bf16 autocast on cuda" in messages[1]


def test_cpu_flags_parsed_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 amx_bf16 avx512_bf16\n\n")
    assert {"avx2", "amx_bf16", "avx512_bf16"} <= cpu_flags(info)
    assert fast_bf16("cpu", flags=cpu_flags(info))[0]
    assert cpu_flags(tmp_path / "missing") == frozenset()
