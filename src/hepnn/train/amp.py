"""Mixed precision: which autocast dtype a device runs fast, decided once and logged.

``train.amp=auto`` (the default) picks bf16 autocast on CPUs with AMX (``amx_bf16``) or AVX-512 BF16
(``avx512_bf16``) in their flags: there one thread multiplies bf16 matrices ~12× faster than fp32
on a Xeon with AMX and 2.3× on an AMD EPYC with avx512_bf16 (ParT trains 1.5× faster there, with no
AUC cost within seed noise; docs/benchmarks.md).

Everywhere else it is fp32: on a CPU with AVX2 only, bf16 is converted in software and a training
step is slower than in fp32. On GPUs too, although those of compute capability ≥ 8.0 multiply bf16
natively (``fast_bf16``): at hepnn's model sizes and batch 256 an H200 spends a step on kernel
launches, gathers and scatters, not on matrix products, and bf16 made them slower (ParticleNet 0.46×,
ParT 0.66×, PFN 0.89× of fp32; LorentzNet 1.21×, PELICAN 1.07×; docs/benchmarks.md, GPU). bf16 and
fp16 (with loss scaling) stay a choice the user makes: ``train.amp=bf16|fp16``; Apple's MPS stays
in fp32. The same decision is used for training, validation, ``evaluate`` and ``predict``; a run of
jet-level observables stays in fp32 under auto (``hepnn.runs.run_amp``: bf16 gains nothing there).

Under any autocast a run's output layer computes in fp32 (``fp32_head``, applied by
``hepnn.runs.build_model``): bf16 logits would round every score to 8 bits of mantissa.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from torch import nn

from hepnn.errors import HepnnError
from hepnn.log import get_logger

log = get_logger(__name__)

AMP_CHOICES = ("auto", "none", "bf16", "fp16")
_DTYPES: Mapping[str, torch.dtype | None] = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}
FAST_BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(path: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is no such file)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86 / ARM
            return frozenset(value.split())
    return frozenset()


def fast_bf16(device_type: str, *, flags: frozenset[str] | None = None,
              cuda_capability: tuple[int, int] | None = None) -> tuple[bool, str]:
    """Whether ``device_type`` multiplies bf16 natively, and why (for the log).

    ``flags`` (CPU) and ``cuda_capability`` are read from the machine when None; tests pass fakes.
    """
    if device_type == "cuda":
        cap = cuda_capability if cuda_capability is not None else torch.cuda.get_device_capability()
        return cap >= (8, 0), f"CUDA compute capability {cap[0]}.{cap[1]} ({'≥' if cap >= (8, 0) else '<'} 8.0)"
    if device_type == "cpu":
        flags = cpu_flags() if flags is None else flags
        found = [f for f in FAST_BF16_CPU_FLAGS if f in flags]
        capability = torch.backends.cpu.get_cpu_capability()
        if found:
            return True, f"CPU flags {', '.join(found)} (torch CPU capability {capability})"
        return False, f"CPU without amx_bf16/avx512_bf16 (torch CPU capability {capability}): bf16 would be emulated"
    return False, f"{device_type} device: bf16 autocast is not known to pay"


def resolve_amp(amp: str, device: torch.device | str, *, flags: frozenset[str] | None = None,
                cuda_capability: tuple[int, int] | None = None) -> torch.dtype | None:
    """The autocast dtype for ``train.amp`` on ``device``: None (fp32), bf16 or fp16.

    "auto" decides with ``fast_bf16`` and logs the decision once per device type and reason.
    """
    if amp not in AMP_CHOICES:
        raise HepnnError(f"train.amp must be one of {', '.join(AMP_CHOICES)}, got {amp!r}")
    dev = torch.device(device)
    if amp == "fp16" and dev.type == "cpu":
        raise HepnnError("train.amp=fp16 needs a GPU; use bf16, auto or none on CPU")
    if amp != "auto":
        return _DTYPES[amp]
    fast, why = fast_bf16(dev.type, flags=flags, cuda_capability=cuda_capability)
    if dev.type == "cuda" and fast:  # native, but slower at these sizes (module docstring)
        fast, why = False, f"{why}, but bf16 trained the particle models slower than fp32 on an H200 at batch 256; " \
                           "train.amp=bf16 to try it"
    _log_once(f"train.amp=auto: {'bf16 autocast' if fast else 'fp32'} on {dev.type} ({why})")
    return torch.bfloat16 if fast else None


@functools.lru_cache(maxsize=None)
def _log_once(message: str) -> None:
    log.info(message)


def autocast(device: torch.device | str, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``dtype`` on ``device``, or a no-op for fp32 (``dtype`` None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def fp32_head(model: nn.Module, names: Iterable[str]) -> list[str]:
    """Run the modules owning the parameters ``names`` (the output layer, as
    ``hepnn.train.transfer.output_layer`` finds it) in fp32 under autocast; returns their module names.

    Why: under bf16 autocast a Linear head gives bf16 logits, 8 bits of mantissa, so scores tie (the
    PFN trained in bf16 on the committed sample: 651 distinct scores among 1000 test jets, 1000 with
    this), ties in the tail distort 1/εB at εS = 0.3, and a linear model's score, the difference of
    two nearly equal logits, drowns in rounding (the perceptron: test AUC 0.907 in bf16, 0.936 in
    fp32; with this, bf16 gives fp32's bits). The head is a small fraction of the compute; the layers
    before it keep autocast's speed.

    Each module's ``forward`` is replaced on the instance by ``FP32Forward``: its class, parameters
    and state-dict keys stay the same, so checkpoints, ``init_from``, safetensors, ONNX export and
    torch.compile see the same model; without an active autocast it is the class's forward, bit for
    bit. A name owned by a module with submodules (or by the model itself) is left under autocast
    with a warning: fp32 there would cover its whole subtree. Applying it twice changes nothing.
    """
    modules = dict(model.named_modules())
    owners = sorted({name.rpartition(".")[0] for name in names})
    wrapped = []
    for owner in owners:
        module = modules[owner]
        if next(module.children(), None) is not None:
            log.warning("output layer %r of %s has submodules; it stays under autocast",
                        owner or "(the model itself)", type(model).__name__)
            continue
        if not isinstance(module.__dict__.get("forward"), FP32Forward):
            module.forward = FP32Forward(module)
        wrapped.append(owner)
    return wrapped


class FP32Forward:
    """A module's forward that, under an active autocast on the module's device, runs the class's
    forward with autocast off on float32 inputs (a callable object, not a closure: deepcopy, pickle
    and torch.compile handle it)."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module = self.module
        forward = type(module).forward.__get__(module)
        device = next(module.parameters()).device.type
        if not torch.is_autocast_enabled(device):
            return forward(*args, **kwargs)
        with torch.autocast(device, enabled=False):
            return forward(*map(_float32, args), **{k: _float32(v) for k, v in kwargs.items()})


def _float32(value: Any) -> Any:
    return value.float() if isinstance(value, torch.Tensor) and value.is_floating_point() else value
