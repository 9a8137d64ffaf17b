"""Efficient models: pruning, int8 quantization, knowledge distillation, ONNX export, latency.

Each step takes a finished run directory and writes a new one that ``hepnn evaluate`` and
``hepnn compare`` accept, with the deployment numbers (``n_nonzero``, ``size_bytes``,
``latency_ms``) in run.json and metrics.json. torch, torchao and onnx are imported by the
submodules only when used.

    hepnn compress RUN --prune 0.9 --steps 3        hepnn.compress.prune.prune_run
    hepnn compress RUN --quantize ptq|qat           hepnn.compress.quantize.quantize_run
    hepnn distill TEACHER_RUN --student mlp         hepnn.compress.distill.distill
    hepnn export RUN --onnx                         hepnn.compress.export.export_run
    hepnn latency RUN                               hepnn.compress.latency.measure_run
"""
