"""Inference latency per jet (batch 1) and throughput (large batch) for several runtimes.

Runtimes: PyTorch eager, ``torch.compile``, torchao dynamic int8 and ONNX Runtime, on CUDA when
available (int8 and ONNX on the CPU provider otherwise). Every number is the median of ``repeats``
timed calls after ``warmup`` untimed ones, on real jets of the run's test split (batch 1: the
first test jet; large batch: the first ``batch_size`` test jets, padded to the largest).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from hepnn.data.batch import Batch
from hepnn.errors import HepnnError
from hepnn.log import get_logger

log = get_logger(__name__)

BACKENDS = ("eager", "compile", "int8", "onnx")


def time_call(fn: Callable[[], Any], *, warmup: int = 5, repeats: int = 20, cuda: bool = False) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _runner(backend: str, model: nn.Module, inputs: Sequence[str], device: torch.device,
            workdir: Path, example: Batch) -> Callable[[Batch], Any]:
    """A function batch -> output for one runtime (built once; compiled or exported here)."""
    if backend == "eager":
        m = model.to(device).eval()
        return lambda b: m(b)
    if backend == "compile":
        m = torch.compile(model.to(device).eval(), dynamic=False)
        return lambda b: m(b)
    if backend == "int8":
        from hepnn.compress.quantize import quantized_copy

        m = quantized_copy(model).to(device)
        return lambda b: m(b)
    if backend == "onnx":
        from hepnn.compress.export import batch_tensors, export_onnx, onnx_session

        path = export_onnx(model.cpu(), inputs, example, workdir / "model.onnx")
        model.to(device)
        session = onnx_session(path, device.type)
        return lambda b: session.run(None, {n: t.cpu().numpy() for n, t in zip(inputs, batch_tensors(b, inputs))})
    raise HepnnError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")


@torch.inference_mode()
def measure_model(model: nn.Module, inputs: Sequence[str], batches: dict[int, Batch], *,
                  backends: Sequence[str] = BACKENDS, device: str | torch.device = "cpu", warmup: int = 5,
                  repeats: int = 20) -> list[dict[str, Any]]:
    """One row per (backend, batch size): median ms per call, us per jet, jets per second.

    A runtime that cannot run this model (e.g. a model torch.export cannot trace) gives a row with
    its ``error`` instead of timings.
    """
    device = torch.device(device)
    rows = []
    example = max(batches.values(), key=len)
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            try:
                with torch.inference_mode(False), torch.no_grad():  # export and compile want no inference tensors
                    run = _runner(backend, model, inputs, device, Path(tmp), example)
            except Exception as err:  # a runtime that cannot take this model is a table entry, not a crash
                rows.append({"backend": backend, "device": device.type, "error": _short(err)})
                continue
            dev = "cpu" if backend == "onnx" and device.type == "cuda" and not _ort_cuda() else device.type
            for size, batch in sorted(batches.items()):
                b = batch.to(device)
                try:
                    sec = time_call(lambda: run(b), warmup=warmup, repeats=repeats, cuda=device.type == "cuda")
                except Exception as err:
                    rows.append({"backend": backend, "device": dev, "batch": size, "error": _short(err)})
                    continue
                rows.append({"backend": backend, "device": dev, "batch": size, "ms": sec * 1e3,
                             "us_per_jet": sec * 1e6 / size, "jets_per_s": size / sec})
    return rows


def _short(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:120] if text else ''}"


def _ort_cuda() -> bool:
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers()


def format_rows(rows: Sequence[dict[str, Any]]) -> str:
    """The latency table as markdown."""
    lines = ["| Runtime | Device | Batch | ms / call | µs / jet | jets / s |", "|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['backend']} | {r['device']} | {r.get('batch', '–')} | – | – | {r['error']} |")
        else:
            lines.append(f"| {r['backend']} | {r['device']} | {r['batch']} | {r['ms']:.3f} | {r['us_per_jet']:.1f} "
                         f"| {r['jets_per_s']:,.0f} |")
    return "\n".join(lines) + "\n"


def measure_run(run_dir: str | Path, *, backends: Sequence[str] | None = None, batch_size: int = 1024,
                device: str = "auto", warmup: int = 5, repeats: int = 20) -> list[dict[str, Any]]:
    """Latency of a run's model on its test jets; writes latency.json and records ``latency_ms``
    (eager, batch 1) and ``throughput_jets_s`` (eager, large batch) in run.json and metrics.json.

    ``backends`` default: all of ``BACKENDS``, or only eager for a quantized run (already int8: eager
    *is* the quantized model, which neither compiles nor exports); naming another for it is an error.
    """
    from hepnn.compress.export import check_batches
    from hepnn.compress.recipe import RECIPE_FILE
    from hepnn.compress.rundir import record
    from hepnn.io_utils import write_json_atomic
    from hepnn.registry import get_model_spec
    from hepnn.runs import load_run
    from hepnn.train.engine import resolve_device

    run_dir = Path(run_dir)
    cfg, model, _, _ = load_run(run_dir)
    if not isinstance(model, nn.Module):
        raise HepnnError(f"latency is measured for torch models; {cfg.model.name} is not one")
    quantized = (run_dir / RECIPE_FILE).is_file()
    if backends is None:
        backends = ["eager"] if quantized else list(BACKENDS)
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        raise HepnnError(f"unknown latency backend(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)}")
    if quantized and set(backends) != {"eager"}:
        others = ", ".join(b for b in backends if b != "eager")
        raise HepnnError(f"{run_dir} is quantized: only the eager backend applies (it runs int8 already); "
                         f"drop {others} from --backends, or measure the run it was quantized from")
    inputs = get_model_spec(cfg.model.name).inputs
    big = check_batches(run_dir, batch_size, batch_size=batch_size)[0]
    batches = {1: big[np.arange(1)], len(big): big}
    dev = resolve_device(device)
    rows = measure_model(model, inputs, batches, backends=backends, device=dev, warmup=warmup, repeats=repeats)
    write_json_atomic(run_dir / "latency.json", {"device": str(dev), "torch_threads": torch.get_num_threads(),
                                                 "rows": rows})
    eager = {r["batch"]: r for r in rows if r["backend"] == "eager" and "ms" in r}
    if eager:
        record(run_dir, {"latency_ms": eager[min(eager)]["ms"], "throughput_jets_s": eager[max(eager)]["jets_per_s"]})
    return rows
