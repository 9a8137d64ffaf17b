"""ONNX export of a run: dynamic batch and particle axes, preprocessing beside it, parity checked.

The models take a ``Batch``; ONNX takes tensors. ``ExportWrapper`` bridges the two: its forward takes
the tensors the model's registry ``inputs`` name, in that order, and builds the ``Batch``. The graph is
traced by the dynamo exporter (``torch.onnx.export(..., dynamo=True)``, needs onnxscript) with the
batch axis and the particle axis symbolic, so one file serves batch 1 and batch 4096, 10 or 128
particles. The export is checked against PyTorch in ONNX Runtime on real jets.

Written files::

    model.onnx     the graph and its weights
    onnx.json      input names, dtypes and shapes (symbolic axes by name), output names, the feature
                   names of every input column, the opset and the measured parity (max |delta|)
    preprocess.json  (already in the run directory) the fitted preprocessing the inputs expect
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from hepnn.data.batch import Batch
from hepnn.errors import HepnnError, missing_extra
from hepnn.io_utils import atomic_path, write_json_atomic
from hepnn.log import get_logger

log = get_logger(__name__)

# Symbolic axes of every Batch field a model can read: (B, N, C), (B, N), (B, N, 4), (B, F), (B, 1, H, W).
AXES: dict[str, dict[int, str]] = {
    "x": {0: "batch", 1: "particles"},
    "mask": {0: "batch", 1: "particles"},
    "p4": {0: "batch", 1: "particles"},
    "jet": {0: "batch"},
    "image": {0: "batch"},
}
RUN_FILES = ("model.safetensors", "run.json", "metrics.json", "test_scores.parquet")  # copied with --out


class ExportWrapper(nn.Module):
    """``forward(*tensors)`` with the tensors named by ``inputs`` (registry order) -> ``model(Batch)``.

    Args:
        model: a registered torch model that reads a ``Batch``.
        inputs: the Batch fields it reads, e.g. ("x", "mask", "p4").
    """

    def __init__(self, model: nn.Module, inputs: Sequence[str]) -> None:
        super().__init__()
        unknown = sorted(set(inputs) - set(AXES))
        if unknown:
            raise HepnnError(f"cannot export inputs {unknown}; exportable Batch fields: {', '.join(AXES)}")
        self.model = model
        self.inputs = tuple(inputs)

    def forward(self, *tensors: torch.Tensor) -> Any:
        return self.model(Batch(**dict(zip(self.inputs, tensors))))


def _require_onnx() -> Any:
    import logging

    # the exporter warns about every torchvision op it cannot register; irrelevant here
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    try:
        import onnxruntime
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError as err:
        raise missing_extra("onnx", err.name or "onnxruntime") from None
    return onnxruntime


def batch_tensors(batch: Batch, inputs: Sequence[str]) -> tuple[torch.Tensor, ...]:
    """The tensors of ``batch`` named by ``inputs``, in order (an absent one is an error)."""
    missing = [name for name in inputs if getattr(batch, name) is None]
    if missing:
        raise HepnnError(f"the batch lacks {missing}, which the model reads")
    return tuple(getattr(batch, name) for name in inputs)


def export_onnx(model: nn.Module, inputs: Sequence[str], example: Batch, path: str | Path, *,
                opset: int | None = None) -> Path:
    """Export ``model`` to ONNX with symbolic batch and particle axes.

    Args:
        model: the torch model (put in eval mode here).
        inputs: Batch fields it reads, in registry order; they become the ONNX input names.
        example: a real batch with at least 2 jets and 2 particles (size-1 axes would be specialized).
        path: the .onnx file to write (atomically).
        opset: ONNX opset; None lets the exporter choose.
    """
    _require_onnx()
    from torch.export import Dim

    wrapper = ExportWrapper(model, inputs).eval()
    args = batch_tensors(example, inputs)
    if args[0].shape[0] < 2 or ("mask" in inputs and example.mask.shape[1] < 2):
        raise HepnnError("the example batch needs at least 2 jets and 2 particles to keep the axes dynamic")
    # Dim.AUTO: dynamic where the model allows it; a kNN with k = min(k, N) gets a range (N >= k)
    # instead of an error. The parity check on batches of other sizes finds a specialized axis.
    # forward(*tensors): one entry for the varargs, holding one {axis: Dim} per tensor.
    dynamic = tuple({axis: Dim.AUTO for axis in AXES[field]} for field in inputs)
    kwargs = {"opset_version": opset} if opset is not None else {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch-internal pytree deprecations
            program = torch.onnx.export(wrapper, args, input_names=list(inputs), dynamic_shapes=(dynamic,),
                                        dynamo=True, verbose=False, custom_translation_table=_translations(),
                                        **kwargs)
    except Exception as err:  # the exporter raises many types; name the model and the cause
        raise HepnnError(f"ONNX export of {type(model).__name__} failed: {root_cause(err)}") from err
    path = Path(path)
    with atomic_path(path) as tmp:
        program.save(str(tmp))
    return path


def _translations() -> dict[Any, Any]:
    """ONNX translations torch 2.13 / ONNX Runtime lack.

    hypot (pT = hypot(px, py) in many models) as sqrt(x^2 + y^2); asinh (ParT's pair rapidity, computed
    in float64, where ONNX Runtime's CPU Asinh kernel is float32-only) as sign(x) ln(|x| + sqrt(x^2 + 1)).
    """
    from onnxscript import opset18 as op

    def hypot(x, y):
        return op.Sqrt(op.Add(op.Mul(x, x), op.Mul(y, y)))

    def asinh(x):
        a = op.Abs(x)
        one = op.CastLike(1.0, x)
        return op.Mul(op.Sign(x), op.Log(op.Add(a, op.Sqrt(op.Add(op.Mul(a, a), one)))))

    def atan2(y, x):  # ONNX Runtime's CPU Atan is float32-only: float64 (ParT's φ) goes through float32
        pi = op.CastLike(3.141592653589793, y)
        zero = op.CastLike(0.0, y)
        at = op.CastLike(op.Atan(op.Cast(op.Div(y, x), to=1)), y)  # to=1: FLOAT
        turned = op.Where(op.GreaterOrEqual(y, zero), op.Add(at, pi), op.Sub(at, pi))
        origin = op.And(op.Equal(x, zero), op.Equal(y, zero))  # torch: atan2(0, 0) = 0 (padded particles)
        return op.Where(origin, zero, op.Where(op.Less(x, zero), turned, at))

    return {torch.ops.prims.hypot.default: hypot, torch.ops.aten.hypot.default: hypot,
            torch.ops.aten.asinh.default: asinh, torch.ops.aten.atan2.default: atan2}


def root_cause(err: BaseException) -> str:
    """The innermost exception of a chain, as "Type: first line" (the exporter wraps the real cause)."""
    while err.__cause__ is not None:
        err = err.__cause__
    lines = [ln for ln in str(err).splitlines() if ln.strip()]
    return f"{type(err).__name__}: {lines[0][:200] if lines else ''}"


def onnx_session(path: str | Path, device: str = "cpu") -> Any:
    """An ONNX Runtime session (CUDA provider when ``device`` is cuda and it is available)."""
    ort = _require_onnx()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    providers = ["CPUExecutionProvider"]
    if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(path), opts, providers=providers)


def _flat(out: Any) -> list[np.ndarray]:
    """Every tensor in a model output (a tensor, or a tuple/list/dict of them), as numpy."""
    if isinstance(out, torch.Tensor):
        return [out.detach().float().cpu().numpy()]
    if isinstance(out, dict):
        out = list(out.values())
    return [a for o in out for a in _flat(o)]


@torch.no_grad()
def parity(session: Any, model: nn.Module, inputs: Sequence[str], batches: Iterable[Batch]) -> float:
    """Max |ONNX Runtime - PyTorch| over every output element of ``batches``."""
    model.eval()
    worst = 0.0
    for batch in batches:
        tensors = batch_tensors(batch, inputs)
        ref = _flat(model(batch))
        try:
            got = session.run(None, {name: t.numpy() for name, t in zip(inputs, tensors)})
        except Exception as err:  # e.g. an axis the exporter specialized to the example's size
            raise HepnnError(f"ONNX Runtime rejects a batch of shape {tuple(tensors[0].shape)}: {root_cause(err)}") from err
        if len(got) != len(ref):
            raise HepnnError(f"ONNX graph gives {len(got)} outputs, PyTorch {len(ref)}")
        for r, g in zip(ref, got):
            worst = max(worst, float(np.max(np.abs(r - np.asarray(g, dtype=np.float32)), initial=0.0)))
    return worst


def describe_inputs(inputs: Sequence[str], example: Batch, *, particle_features: Sequence[str] = (),
                    jet_features: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Name, dtype, shape (symbolic axes by name) and column names of every ONNX input."""
    columns = {"x": list(particle_features), "jet": list(jet_features), "p4": ["E", "px", "py", "pz"]}
    out = []
    for name, t in zip(inputs, batch_tensors(example, inputs)):
        shape = [AXES[name].get(i, int(n)) for i, n in enumerate(t.shape)]
        out.append({"name": name, "dtype": str(t.dtype).removeprefix("torch."), "shape": shape,
                    "columns": columns.get(name)})
    return out


def export_run(run_dir: str | Path, out: str | Path | None = None, *, n_check: int = 512) -> dict[str, Any]:
    """Export a finished run to ``out/model.onnx`` (default: inside the run directory) and check it.

    With a separate ``out`` the run's files (config, preprocessing, weights, metrics) are copied
    beside the ONNX file, so ``out`` is itself a run directory. Returns the onnx.json description.
    """
    from hepnn.compress.rundir import start_run
    from hepnn.data.features import expand_feature_names
    from hepnn.registry import get_model_spec
    from hepnn.runs import load_run

    run_dir = Path(run_dir)
    cfg, model, pre, kind = load_run(run_dir)
    spec = get_model_spec(cfg.model.name)
    if not spec.is_torch:
        raise HepnnError(f"{cfg.model.name} is not a torch model; export its xgboost model.json instead")
    out = run_dir if out is None else Path(out)
    if out != run_dir:  # a run directory of its own, named after it (compare keeps it apart)
        start_run(out, cfg, parent=run_dir)
        for name in RUN_FILES:
            if (run_dir / name).is_file():
                shutil.copy2(run_dir / name, out / name)
    batches = check_batches(run_dir, n_check)
    path = export_onnx(model, spec.inputs, batches[0], out / "model.onnx")
    max_diff = parity(onnx_session(path), model, spec.inputs, batches)
    info = {
        "model": cfg.model.name, "file": "model.onnx", "preprocess": "preprocess.json",
        "inputs": describe_inputs(spec.inputs, batches[0],
                                  particle_features=expand_feature_names(cfg.data.particle_features),
                                  jet_features=cfg.data.jet_features),
        "outputs": "logits (batch, classes)" if kind == "classify" else "prediction (batch, targets)",
        "parity_max_abs_diff": max_diff, "parity_jets": sum(len(b) for b in batches),
        "torch": torch.__version__,
    }
    write_json_atomic(out / "onnx.json", info)
    log.info("exported %s -> %s; max |onnx - torch| = %.3g on %d jets", run_dir, path, max_diff, info["parity_jets"])
    return info


def check_batches(run_dir: Path, n_jets: int, batch_size: int = 128) -> list[Batch]:
    """Batches of the run's first ``n_jets`` test jets, as the run's loader builds them."""
    from hepnn.runs import load_run_data, make_loaders

    cfg, pre, splits, kind, fields = load_run_data(run_dir)
    test = splits.test.take(np.arange(min(n_jets, len(splits.test))))
    if len(test) < 2:
        raise HepnnError(f"{run_dir}: the test split has {len(test)} jets; the parity check needs at least 2")
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"batch_size": batch_size})})
    _, eval_loader = make_loaders(cfg, splits, pre, kind=kind, fields=(*fields, "y"))
    loader = eval_loader(test)
    loader.batch_size = batch_size
    return [b for b in loader if len(b) >= 2]
