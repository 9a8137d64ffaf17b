"""``fit``: one run from a config to a run directory (data, preprocessing, model, engine, evaluation).

Run directory::

    config.yaml            the resolved config (also inside every checkpoint)
    preprocess.json        fitted preprocessing (training split only)
    model.safetensors      final weights (model.json for the BDT)
    checkpoints/last.pt    full training state for --resume; checkpoints/best.safetensors
    history.csv            per-epoch losses and metrics (and tensorboard/ when installed)
    run.json               model name, parameters, training time, jets per split
    metrics.json, plots/, report.md, report.html, test_scores.parquet   (written by evaluation)
"""

from __future__ import annotations

import random
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from hepnn.config import RunConfig, dump_config, load_config
from hepnn.errors import ConfigError, HepnnError
from hepnn.io_utils import write_json_atomic, write_text_atomic
from hepnn.log import get_logger

log = get_logger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def task_kind(cfg: RunConfig) -> str:
    if cfg.train.task != "auto":
        return cfg.train.task
    return "classify" if cfg.data.target == "label" else "regress"


def model_inputs(cfg: RunConfig, spec: Any) -> dict[str, int]:
    """Input sizes and output count passed to the model factory, from the data config."""
    from hepnn.data.features import feature_dim

    params, kw = spec.params(), {}
    if "in_features" in params:
        kw["in_features"] = _width_after_preprocess(cfg, "particle", feature_dim(cfg.data.particle_features))
    if "jet_features" in params:
        kw["jet_features"] = _width_after_preprocess(cfg, "jet", len(cfg.data.jet_features))
    if "num_classes" in params:  # outputs: one per class, one logit for bce, one value for regression
        classify = task_kind(cfg) == "classify" and cfg.train.loss != "bce"
        kw["num_classes"] = cfg.data.num_classes if classify else 1
    if "image_size" in params:
        kw["image_size"] = cfg.data.image_size
    clash = sorted(set(kw) & set(cfg.model.params))
    if clash:
        raise ConfigError(f"model.params.{clash[0]} is set from the data config; remove it from model.params")
    return kw


def _width_after_preprocess(cfg: RunConfig, block: str, width: int) -> int:
    """Feature count the model sees: a PCA step replaces its columns by ``n_components``."""
    for step in cfg.preprocess:
        if step.block != block or step.kind != "pca" or step.params.get("n_components") is None:
            continue
        k = step.params["n_components"]
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ConfigError(f"preprocess pca n_components={k!r} on the {block} block: give a whole number of "
                              "components (the model's input size is fixed before the data is read)")
        width = width - (len(step.columns) if step.columns else width) + k
    return width


def build_model(cfg: RunConfig) -> Any:
    from hepnn.registry import create_model, get_model_spec

    spec = get_model_spec(cfg.model.name)
    kwargs = {**model_inputs(cfg, spec), **cfg.model.params}
    if spec.family == "bdt":
        kwargs.setdefault("seed", cfg.train.seed)
    try:
        return create_model(cfg.model.name, **kwargs)
    except (TypeError, ValueError, RuntimeError) as err:  # e.g. a negative layer width reaching torch
        raise ConfigError(f"model.params {cfg.model.params} cannot build model {cfg.model.name!r}: "
                          f"{' '.join(str(err).split())}; check the values (widths and counts must be > 0)") from err


def default_run_dir(cfg: RunConfig) -> Path:
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
    _check_before_work(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.yaml", dump_config(cfg))
    return _run(cfg, run_dir, resume=False, progress=progress, extra_callbacks=extra_callbacks)


def _check_before_work(cfg: RunConfig) -> None:
    """Fail before a run directory is made: missing data files, unknown feature names (even ones this
    model does not read: a typo should not pass silently), an unknown model, bad model.params."""
    from hepnn.data.features import PARTICLE_FEATURES, validate_names
    from hepnn.data.io import expand_paths
    from hepnn.data.jet_features import JET_FEATURES

    for files in (cfg.data.train, cfg.data.val, cfg.data.test):
        if files:
            expand_paths(files)
    validate_names(cfg.data.particle_features, PARTICLE_FEATURES, "particle feature (data.particle_features)")
    validate_names(cfg.data.jet_features, JET_FEATURES, "jet feature (data.jet_features)")
    build_model(cfg)


def resume(run_dir: str | Path, *, progress: bool = True) -> Path:
    """Continue an interrupted run from its last checkpoint (same config, same data, same RNG)."""
    run_dir = Path(run_dir)
    cfg = load_config(run_dir / "config.yaml")
    return _run(cfg, run_dir, resume=True, progress=progress)


def _run(cfg: RunConfig, run_dir: Path, *, resume: bool, progress: bool, extra_callbacks: Sequence[Any] = ()) -> Path:
    from hepnn.data.dataset import fit_preprocessors, load_splits, loader_mode, save_preprocessors
    from hepnn.evaluate.run import evaluate_loaded
    from hepnn.registry import count_parameters, get_model_spec

    seed_everything(cfg.train.seed)
    spec = get_model_spec(cfg.model.name)
    kind = task_kind(cfg)
    fields = (*spec.inputs, "y", "weight")
    if cfg.distill is not None:  # the teacher reads its inputs (rebuilt from p4 and mask) from the same batches
        from hepnn.compress.distill import teacher_fields

        fields = teacher_fields(cfg, fields)
    mode = "memory" if spec.family == "bdt" else loader_mode(cfg.data, needs_jet="jet" in fields)
    splits = load_splits(cfg.data, fields=fields, task=kind, seed=cfg.train.seed, mode=mode)
    if cfg.data.train_labels is not None:
        keep_labels(splits, cfg.data.train_labels)
    pre = fit_preprocessors(cfg.preprocess, splits.train_sample, data=cfg.data, fields=fields, seed=cfg.train.seed)
    save_preprocessors(pre, run_dir / "preprocess.json")
    model = build_model(cfg)
    t0 = time.perf_counter()
    if spec.family == "bdt":
        _fit_bdt(model, splits, pre, run_dir)
    else:
        _fit_torch(cfg, model, splits, pre, run_dir, kind=kind, fields=fields, resume=resume, progress=progress,
                   extra_callbacks=extra_callbacks)
    elapsed = time.perf_counter() - t0
    from hepnn.train.distributed import is_main

    if not is_main():  # under torchrun, rank 0 alone writes the results
        return run_dir
    info = {"model": cfg.model.name, "name": cfg.name, "seed": cfg.train.seed, "task": kind,
            "n_params": count_parameters(model), "train_time_s": elapsed,
            "n_train": len(splits.train) if mode == "memory" else None, "n_val": len(splits.val), "n_test": len(splits.test)}
    if resume and (run_dir / "run.json").exists():  # keep the time already spent before the interruption
        import json

        info["train_time_s"] += json.loads((run_dir / "run.json").read_text()).get("train_time_s", 0.0)
    write_json_atomic(run_dir / "run.json", info)
    evaluate_loaded(cfg, model, pre, splits, run_dir, kind=kind)
    log.info("run written to %s", run_dir)
    return run_dir


def _fit_bdt(model: Any, splits: Any, pre: dict[str, Any], run_dir: Path) -> None:
    jet_pre = pre.get("jet")

    def x(jets):
        return jet_pre.transform(jets.jet) if jet_pre is not None else jets.jet

    model.fit_arrays(x(splits.train), splits.train.y, splits.train.weight, x(splits.val), splits.val.y)
    model.save(run_dir / "model.json")


def keep_labels(splits: Any, labels: list[int]) -> None:
    """Train and validate on jets with ``labels`` only (e.g. QCD for anomaly detection); test keeps all."""
    if isinstance(splits.train, list):
        raise ConfigError("data.train_labels needs the training jets in memory (data.loader=memory)")
    for name in ("train", "val", "train_sample"):
        jets = getattr(splits, name)
        idx = np.flatnonzero(np.isin(jets.y, labels))
        if len(idx) == 0:
            raise ConfigError(f"data.train_labels={labels} leaves no {name} jets (labels present: "
                              f"{sorted(set(np.unique(jets.y).tolist()))})")
        setattr(splits, name, jets.take(idx))
    log.info("data.train_labels=%s: %d train, %d val jets kept", labels, len(splits.train), len(splits.val))


def make_task(cfg: RunConfig, kind: str, num_classes: int, train_labels: np.ndarray | None) -> Any:
    from hepnn.train.losses import balanced_class_weights, build_loss, resolve_loss_name
    from hepnn.train.tasks import ClassifyTask, Regularization, RegressTask
    from hepnn.train.tasks_unsupervised import UNSUPERVISED_KINDS, make_unsupervised_task

    tc = cfg.train
    if kind in UNSUPERVISED_KINDS:
        return make_unsupervised_task(kind, tc.unsupervised)
    reg = Regularization(l1=tc.l1, l2=tc.l2, grad_penalty=tc.grad_penalty)
    if kind == "classify":
        name = resolve_loss_name(tc.loss, num_classes)
        weights = None
        if tc.class_weights == "balanced" and train_labels is not None:  # None: scoring only
            weights = balanced_class_weights(torch.as_tensor(train_labels), num_classes)
        elif isinstance(tc.class_weights, list):
            weights = torch.tensor(tc.class_weights, dtype=torch.float32)
        loss = build_loss(name, num_classes=num_classes, class_weights=weights)
        if cfg.distill is not None:  # knowledge distillation from a teacher run
            from hepnn.compress.distill import DistillTask

            return DistillTask(loss, name, num_classes, reg, cfg=cfg)
        return ClassifyTask(loss, name, num_classes, reg)
    name = "mse" if tc.loss == "auto" else tc.loss
    return RegressTask(build_loss(name, num_classes=1), reg)


def make_loaders(cfg: RunConfig, splits: Any, pre: dict[str, Any], *, kind: str, fields: tuple[str, ...],
                 model: Any = None, pin_memory: bool = False):
    """The training loader (in memory, or streamed from files) and a factory of evaluation loaders.

    ``model`` decides ``data.bucketing="auto"`` for the training batches (``train_bucketing``).

    ``pin_memory`` (for CUDA): the streaming loader's batches arrive in page-locked memory, so the
    engine's ``non_blocking`` copies overlap with compute.

    Under DDP each rank trains on its own shard: every world_size-th jet in memory, every
    world_size-th file when streaming.
    """
    from hepnn.data.loader import JetLoader
    from hepnn.train.distributed import shard, world_size

    d = cfg.data
    builder = make_builder(cfg, pre, kind=kind, fields=fields)
    train_builder = make_builder(cfg, pre, kind=kind, fields=fields, trim=d.trim)
    common = dict(batch_size=d.batch_size, shuffle=True, seed=cfg.train.seed,
                  bucketing=train_bucketing(d.bucketing, model))
    if isinstance(splits.train, list):
        from hepnn.data.stream import StreamingJetLoader

        files = shard(splits.train)
        if not files:
            raise ConfigError(f"{world_size()} ranks but only {len(splits.train)} training files: give at least "
                              "one file per rank when streaming")
        needs_jet = "jet" in fields
        train_loader: Any = StreamingJetLoader(files, train_builder, chunk_size=d.chunk_size, target=d.target,
                                               jet_features=d.jet_features if needs_jet else (),
                                               max_jets=d.max_jets, pin_memory=pin_memory, workers=d.workers, **common)
    else:
        train = splits.train if world_size() == 1 else splits.train.take(shard(np.arange(len(splits.train))))
        train_loader = JetLoader(train, train_builder, **common)

    return train_loader, lambda jets: eval_loader(cfg, builder, jets)


def train_bucketing(setting: bool | str, model: Any) -> bool:
    """Whether training batches are bucketed by multiplicity.

    ``"auto"`` buckets unless ``model`` has batch norm. Bucketed batches hold jets of one multiplicity
    range, and top jets carry more constituents than QCD jets, so a batch's statistics depend on
    its multiplicity and its class mix: batch norm trained on them normalizes each jet relative to
    similar jets, which evaluation (running statistics) cannot reproduce. Validation AUC after 3 epochs
    on 20k jets (docs/benchmarks.md): ParticleNet-Lite 0.962 bucketed vs 0.976 not, ParT-lite 0.955 vs 0.976.
    """
    if setting != "auto":
        return bool(setting)
    from hepnn.nn.norm import uses_batch_norm

    return model is None or not uses_batch_norm(model)


def make_builder(cfg: RunConfig, pre: dict[str, Any], *, kind: str, fields: Sequence[str],
                 trim: float | None = None) -> Any:
    """The ``BatchBuilder`` of a run: its fields, features, fitted preprocessing and particle cap
    (``trim``: the training batches' quantile cap, ``data.trim``)."""
    from hepnn.data.loader import BatchBuilder

    d = cfg.data
    return BatchBuilder(fields=fields, particle_features=d.particle_features,
                        particle_preprocessor=pre.get("particle"), jet_preprocessor=pre.get("jet"),
                        target_preprocessor=pre.get("target"), task="regress" if kind == "regress" else "classify",
                        max_particles=d.max_particles, image_size=d.image_size, trim=trim)


def eval_loader(cfg: RunConfig, builder: Any, jets: Any) -> Any:
    """Unshuffled batches of ``jets``, sorted by multiplicity when bucketing (``predict_outputs``
    puts the outputs back in file order). The training batch size: pair-feature models hold
    (B, N, N, C) tensors, so a larger evaluation batch costs memory bandwidth, not speed."""
    from hepnn.data.loader import JetLoader

    return JetLoader(jets, builder, batch_size=cfg.data.batch_size, shuffle=False,
                     bucketing=cfg.data.bucketing is not False, pool=10**6)


def _fit_torch(cfg: RunConfig, model: Any, splits: Any, pre: dict[str, Any], run_dir: Path, *,
               kind: str, fields: tuple[str, ...], resume: bool, progress: bool,
               extra_callbacks: Sequence[Any] = ()) -> None:
    from hepnn.train.callbacks import Checkpointer, EarlyStopping, HistoryWriter
    from hepnn.train.checkpoint import load_state, save_weights
    from hepnn.train.distributed import init_from_env, is_main
    from hepnn.train.engine import Engine, resolve_device
    from hepnn.train.init import init_weights
    from hepnn.train.optim import build_optimizer
    from hepnn.train.schedules import build_schedule

    tc = cfg.train
    device = resolve_device(tc.device)
    init_from_env(device)
    init_weights(model, tc.init)
    task = make_task(cfg, kind, splits.num_classes, splits.train_sample.y)
    train_loader, eval_loader = make_loaders(cfg, splits, pre, kind=kind, fields=fields, model=model,
                                             pin_memory=device.type == "cuda")
    o, s = tc.optimizer, tc.schedule
    optimizer = build_optimizer(model, o.name, lr=o.lr, weight_decay=o.weight_decay, momentum=o.momentum,
                                betas=o.betas, eps=o.eps)
    total = tc.epochs * len(train_loader)
    warmup = s.warmup_steps
    if warmup >= total:  # a short run (few epochs or jets) of a config tuned for a long one
        warmup = total // 10
        log.warning("train.schedule.warmup_steps=%d is not shorter than the run (%d steps); using %d",
                    s.warmup_steps, total, warmup)
    schedule = build_schedule(optimizer, s.name, total_steps=total,
                              steps_per_epoch=len(train_loader), warmup_steps=warmup, decay=s.decay,
                              step_size=s.step_size, gamma=s.gamma, min_lr=s.min_lr, patience=s.patience)
    ckpt = Checkpointer(run_dir / "checkpoints")
    callbacks: list[Any] = [HistoryWriter(run_dir)]
    if tc.early_stopping is not None:
        es = tc.early_stopping
        callbacks.append(EarlyStopping(es.metric, es.mode, es.patience, es.restore_best, best_path=ckpt.best_path))
        ckpt.metric, ckpt.mode = es.metric, es.mode
        ckpt.best = float("inf") if es.mode == "min" else float("-inf")
    callbacks.append(ckpt)  # last, so the saved state includes every other callback's update
    callbacks.extend(extra_callbacks)  # stateless observers (tuning reporters) after the checkpoint
    engine = Engine(model, task, optimizer, schedule, device=device, amp=tc.amp, grad_clip=tc.grad_clip,
                    compile=tc.compile, callbacks=callbacks, progress=progress,
                    time_limit=tc.time_limit, time_clock=tc.time_clock)
    if resume and ckpt.last_path.exists():
        engine.load_state_dict(load_state(ckpt.last_path))
        log.info("resuming %s at epoch %d", run_dir, engine.state["epoch"])
    try:
        engine.fit(train_loader, eval_loader(splits.val), tc.epochs)
    finally:
        getattr(train_loader, "close", lambda: None)()  # a streaming loader's reader process
    if is_main():
        save_weights(model, run_dir / "model.safetensors")
