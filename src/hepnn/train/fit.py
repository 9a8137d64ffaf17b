"""``fit``: one run from a config to a run directory (data, preprocessing, model, engine, evaluation).

The pieces of a run (model, task, loaders) come from ``hepnn.runs``; this module trains them with
the engine (or fits a tree model), writes run.json and the weights, then evaluates. The run
directory's layout is in ``hepnn.runs``; ``checkpoints/last.pt`` lets ``resume`` continue exactly.
"""

from __future__ import annotations

import random
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from hepnn.config import RunConfig, dump_config, load_config
from hepnn.data.dataset import Splits
from hepnn.errors import HepnnError
from hepnn.io_utils import write_json_atomic, write_text_atomic
from hepnn.log import get_logger
from hepnn.registry import TreeModel, count_parameters, get_model_spec
from hepnn.runs import (Preprocessing, build_model, check_config, make_loaders, make_task, output_names,
                        require_run_dir, run_amp, run_fields, task_kind)
from hepnn.train.distributed import is_main, leave

log = get_logger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def default_run_dir(cfg: RunConfig) -> Path:
    """runs/NAME-MODEL-sSEED-TIME."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.name}-{cfg.model.name}-s{cfg.train.seed}-{stamp}"


def fit(cfg: RunConfig, out: str | Path | None = None, *, progress: bool = True,
        extra_callbacks: Sequence[Any] = ()) -> Path:
    """Train the run described by ``cfg`` into ``out`` (a new directory) and evaluate it.

    ``extra_callbacks`` are appended to the engine's callbacks (e.g. the tuner's pruning reporter).
    """
    run_dir = Path(out) if out is not None else default_run_dir(cfg)
    if (run_dir / "checkpoints" / "last.pt").exists() or (run_dir / "run.json").exists():
        raise HepnnError(f"{run_dir} already holds a run; resume it with `hepnn train --resume {run_dir}` "
                         "or choose another --out")
    check_config(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.yaml", dump_config(cfg))
    return _run(cfg, run_dir, resume=False, progress=progress, extra_callbacks=extra_callbacks)


def resume(run_dir: str | Path, *, progress: bool = True) -> Path:
    """Continue an interrupted run from its last checkpoint (same config, same data, same RNG)."""
    run_dir = require_run_dir(run_dir)
    cfg = load_config(run_dir / "config.yaml")
    return _run(cfg, run_dir, resume=True, progress=progress)


def _run(cfg: RunConfig, run_dir: Path, *, resume: bool, progress: bool, extra_callbacks: Sequence[Any] = ()) -> Path:
    try:
        return _train_and_evaluate(cfg, run_dir, resume=resume, progress=progress, extra_callbacks=extra_callbacks)
    finally:
        leave()  # the torchrun process group train_torch joined, if any


def _train_and_evaluate(cfg: RunConfig, run_dir: Path, *, resume: bool, progress: bool,
                        extra_callbacks: Sequence[Any]) -> Path:
    from hepnn.data.dataset import fit_preprocessors, keep_labels, load_splits, loader_mode, save_preprocessors
    from hepnn.evaluate.run import evaluate_loaded

    seed_everything(cfg.train.seed)
    spec = get_model_spec(cfg.model.name)
    kind = task_kind(cfg)
    fields = run_fields(cfg, train=True)
    mode = "memory" if spec.kind == "tree" else loader_mode(cfg.data, needs_jet="jet" in fields)
    splits = load_splits(cfg.data, fields=fields, task=kind, seed=cfg.train.seed, mode=mode)
    if cfg.data.train_labels is not None:
        keep_labels(splits, cfg.data.train_labels)
    pre = fit_preprocessors(cfg.preprocess, splits.train_sample, data=cfg.data, fields=fields, seed=cfg.train.seed)
    save_preprocessors(pre, run_dir / "preprocess.json")
    model = build_model(cfg)
    t0, cpu0 = time.perf_counter(), time.process_time()
    before = {"wall": 0.0, "cpu": 0.0}  # a resumed run's epochs before the interruption
    if isinstance(model, TreeModel):
        _fit_tree(model, splits, pre, run_dir)
    else:
        before = train_torch(cfg, model, splits, pre, run_dir, kind=kind, fields=fields, resume=resume,
                             progress=progress, extra_callbacks=extra_callbacks)
    elapsed = time.perf_counter() - t0 + before["wall"]
    cpu = time.process_time() - cpu0 + before["cpu"]
    if not is_main():  # under torchrun, rank 0 alone writes the results
        return run_dir
    info = {"model": cfg.model.name, "name": cfg.name, "seed": cfg.train.seed, "task": kind,
            "n_params": count_parameters(model), "train_time_s": elapsed, "train_cpu_s": cpu,
            "n_train": len(splits.train) if mode == "memory" else None, "n_val": len(splits.val), "n_test": len(splits.test)}
    write_json_atomic(run_dir / "run.json", info)
    evaluate_loaded(cfg, model, pre, splits, run_dir, kind=kind)
    log.info("run written to %s", run_dir)
    return run_dir


def _fit_tree(model: TreeModel, splits: Splits, pre: Preprocessing, run_dir: Path) -> None:
    """Fit a tree model on the (preprocessed) jet features of the training split; save model.json."""
    jet_pre = pre.get("jet")

    def x(jets):
        return jet_pre.transform(jets.jet) if jet_pre is not None else jets.jet

    model.fit_arrays(x(splits.train), splits.train.y, splits.train.weight, x(splits.val), splits.val.y)
    model.save(run_dir / "model.json")


def train_torch(cfg: RunConfig, model: nn.Module, splits: Splits, pre: Preprocessing, run_dir: Path, *,
                kind: str, fields: tuple[str, ...], resume: bool, progress: bool,
                extra_callbacks: Sequence[Any] = ()) -> dict[str, float]:
    """Train ``model`` with the engine into ``run_dir`` (history, checkpoints, model.safetensors):
    the optimizer, schedule and callbacks of ``cfg.train``; from the last checkpoint when ``resume``.
    Returns the wall and CPU seconds the checkpoint's epochs took (zero for a fresh run)."""
    from hepnn.train.callbacks import Checkpointer, EarlyStopping, HistoryWriter
    from hepnn.train.checkpoint import load_state, save_weights
    from hepnn.train.distributed import barrier, init_from_env
    from hepnn.train.engine import Engine, resolve_device
    from hepnn.train.init import init_weights
    from hepnn.train.optim import build_optimizer
    from hepnn.train.schedules import build_schedule
    from hepnn.train.transfer import lr_factor_of

    tc = cfg.train
    device = resolve_device(tc.device)
    init_from_env(device)
    init_weights(model, tc.init)
    ckpt = Checkpointer(run_dir / "checkpoints")
    restart = resume and ckpt.last_path.exists()  # else a resumed run starts over, from init_from too
    start_from_weights(cfg, model, run_dir, restart=restart)
    task = make_task(cfg, kind, splits.num_classes, splits.train_sample.y)
    train_loader, eval_loader = make_loaders(cfg, splits, pre, kind=kind, fields=fields, model=model,
                                             pin_memory=device.type == "cuda")
    o, s = tc.optimizer, tc.schedule
    lr_factor = lr_factor_of(model, tc.lr_factors) if tc.lr_factors else None
    optimizer = build_optimizer(model, o.name, lr=o.lr, weight_decay=o.weight_decay, momentum=o.momentum,
                                betas=o.betas, eps=o.eps, lr_factor=lr_factor)
    total = tc.epochs * len(train_loader)
    warmup = s.warmup_steps
    if warmup >= total:  # a short run (few epochs or jets) of a config tuned for a long one
        warmup = total // 10
        log.warning("train.schedule.warmup_steps=%d is not shorter than the run (%d steps); using %d",
                    s.warmup_steps, total, warmup)
    schedule = build_schedule(optimizer, s.name, total_steps=total,
                              steps_per_epoch=len(train_loader), warmup_steps=warmup, decay=s.decay,
                              step_size=s.step_size, gamma=s.gamma, min_lr=s.min_lr, patience=s.patience)
    callbacks: list[Any] = [HistoryWriter(run_dir)]
    if tc.early_stopping is not None:
        es = tc.early_stopping
        callbacks.append(EarlyStopping(es.metric, es.mode, es.patience, es.restore_best, best_path=ckpt.best_path))
        ckpt.metric, ckpt.mode = es.metric, es.mode
        ckpt.best = float("inf") if es.mode == "min" else float("-inf")
    callbacks.append(ckpt)  # last, so the saved state includes every other callback's update
    callbacks.extend(extra_callbacks)  # stateless observers (tuning reporters) after the checkpoint
    amp = run_amp(cfg)
    if amp != tc.amp:
        log.info("train.amp=auto: fp32 for a model of jet-level observables (bf16 would gain nothing)")
    engine = Engine(model, task, optimizer, schedule, device=device, amp=amp, grad_clip=tc.grad_clip,
                    compile=tc.compile, callbacks=callbacks, progress=progress,
                    time_limit=tc.time_limit, time_clock=tc.time_clock)
    if restart:
        engine.load_state_dict(load_state(ckpt.last_path))
        log.info("resuming %s at epoch %d", run_dir, engine.state["epoch"])
    before = dict(engine.state["spent"])
    try:
        engine.fit(train_loader, eval_loader(splits.val), tc.epochs)
        barrier()  # ranks leave training together (see distributed.barrier)
    finally:
        getattr(train_loader, "close", lambda: None)()  # a streaming loader's reader process
    if is_main():
        save_weights(model, run_dir / "model.safetensors")
    return before


def start_from_weights(cfg: RunConfig, model: nn.Module, run_dir: Path, *, restart: bool) -> None:
    """``train.init_from`` (unless ``restart``: the checkpoint holds the weights), then ``train.freeze``
    or ``train.linear_probe``. The load report goes to init_report.json."""
    from hepnn.train.transfer import freeze, load_init, probe, trainable_count

    tc = cfg.train
    if tc.init_from is not None and not restart:
        report = load_init(model, tc.init_from)
        if is_main():
            write_json_atomic(run_dir / "init_report.json", report)
    if tc.freeze:
        freeze(model, tc.freeze)
    elif tc.linear_probe:
        probe(model, output_names(cfg))
    if tc.freeze or tc.linear_probe:
        trainable, total = trainable_count(model)
        log.info("training %d of %d parameters", trainable, total)
