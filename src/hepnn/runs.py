"""Run assembly: a run config or a run directory → its fields, model, task and loaders.

Everything that opens a run (``train``, ``evaluate``, ``tune``, ``compress``, ``sample``) asks this
module; it imports none of them (``tests/test_imports.py`` fails on any import cycle). A run
directory holds::

    config.yaml            the resolved config (also inside every checkpoint)
    preprocess.json        fitted preprocessing (training split only)
    model.safetensors      final weights (model.json for tree models); quantization.json for int8 runs
    checkpoints/           last.pt for --resume, best.safetensors
    history.csv, run.json, metrics.json, plots/, report.md, test_scores.parquet
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Sequence

import numpy as np

from hepnn.config import RunConfig, load_config
from hepnn.errors import ConfigError, HepnnError
from hepnn.log import get_logger
from hepnn.registry import ModelSpec, TreeModel, create_model, get_model_spec

if TYPE_CHECKING:
    from hepnn.data.dataset import Splits
    from hepnn.data.jagged import JaggedJets
    from hepnn.data.loader import BatchBuilder, JetLoader
    from hepnn.data.preprocess import Preprocessor
    from hepnn.train.distill import Teacher
    from hepnn.train.tasks import Task

log = get_logger(__name__)

Model = Any  # an nn.Module, or a TreeModel (registry.ModelSpec.kind says which)
Preprocessing = dict[str, "Preprocessor"]  # fitted per block: "jet", "particle", "target"
EvalLoaders = Callable[["JaggedJets"], "JetLoader"]


class Run(NamedTuple):
    """A finished run, loaded: config, model with its weights (eval mode), preprocessing, task kind."""

    cfg: RunConfig
    model: Model
    pre: Preprocessing
    kind: str


# --------------------------------------------------------------------------------------------------
# config -> model


def task_kind(cfg: RunConfig) -> str:
    """``train.task``, or for "auto": classify on a label, regress on anything else."""
    if cfg.train.task != "auto":
        return cfg.train.task
    return "classify" if cfg.data.target == "label" else "regress"


def model_inputs(cfg: RunConfig, spec: ModelSpec) -> dict[str, int]:
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


def build_model(cfg: RunConfig) -> Model:
    """The run's model at its initial weights (``model.name`` with ``model.params`` and the data's sizes).

    Every command builds its model here (training, evaluation, prediction, a distillation teacher),
    so this is where a torch model's output layer is set to compute in fp32 under autocast
    (``hepnn.train.amp.fp32_head``: bf16 logits would tie the scores).
    """
    spec, kwargs = _factory_kwargs(cfg)
    if spec.kind == "tree":
        kwargs.setdefault("seed", cfg.train.seed)
        return _create(cfg, kwargs)
    from hepnn.train.amp import fp32_head

    model = _create(cfg, kwargs)
    fp32_head(model, output_names(cfg))
    return model


def output_names(cfg: RunConfig) -> list[str]:
    """Parameter names of the run's output layer: those whose shape follows the factory's
    ``num_classes`` (class logits, a bce logit or regression outputs); none if it takes none.

    Found by building the model with one output more (``hepnn.train.transfer.output_layer``), with
    torch's global RNG forked so that the run's random stream is the same as without the probe.
    """
    import torch

    from hepnn.train.transfer import output_layer

    spec, kwargs = _factory_kwargs(cfg)
    if spec.kind == "tree" or "num_classes" not in kwargs:
        return []
    with torch.random.fork_rng(devices=[]):
        return output_layer(lambda k: _create(cfg, {**kwargs, "num_classes": k}), kwargs["num_classes"])


def _factory_kwargs(cfg: RunConfig) -> tuple[ModelSpec, dict[str, Any]]:
    """The registered model's spec and its factory's arguments: the data's sizes, then ``model.params``."""
    spec = get_model_spec(cfg.model.name)
    return spec, {**model_inputs(cfg, spec), **cfg.model.params}


def _create(cfg: RunConfig, kwargs: dict[str, Any]) -> Model:
    try:
        return create_model(cfg.model.name, **kwargs)
    except (TypeError, ValueError, RuntimeError) as err:  # e.g. a negative layer width reaching torch
        raise ConfigError(f"model.params {cfg.model.params} cannot build model {cfg.model.name!r}: "
                          f"{' '.join(str(err).split())}; check the values (widths and counts must be > 0)") from err


def check_config(cfg: RunConfig) -> None:
    """Fail before any work: missing data files, unknown feature names (even ones this model does not
    read: a typo should not pass silently), an unknown model, bad model.params, a missing teacher or
    ``train.init_from`` source."""
    from hepnn.data.features import PARTICLE_FEATURES, validate_names
    from hepnn.data.io import expand_paths
    from hepnn.data.jet_features import JET_FEATURES

    for files in (cfg.data.train, cfg.data.val, cfg.data.test):
        if files:
            expand_paths(files)
    validate_names(cfg.data.particle_features, PARTICLE_FEATURES, "particle feature (data.particle_features)")
    validate_names(cfg.data.jet_features, JET_FEATURES, "jet feature (data.jet_features)")
    build_model(cfg)
    if cfg.distill is not None:
        teacher_config(cfg)
    if cfg.train.init_from is not None:
        from hepnn.train.transfer import resolve_source

        resolve_source(cfg.train.init_from)


def run_fields(cfg: RunConfig, *, train: bool = False) -> tuple[str, ...]:
    """Batch fields a run reads: the model's inputs and the target; for training also the weights and,
    when distilling, what the teacher reads (p4 and mask, from which its inputs are rebuilt)."""
    fields = (*get_model_spec(cfg.model.name).inputs, "y")
    if not train:
        return fields
    fields = (*fields, "weight")
    if cfg.distill is not None:
        teacher_inputs = get_model_spec(teacher_config(cfg).model.name).inputs
        fields = (*fields, "p4", "mask", *(("jet",) if "jet" in teacher_inputs else ()))
    return tuple(dict.fromkeys(fields))


# --------------------------------------------------------------------------------------------------
# config -> task and batches


def make_task(cfg: RunConfig, kind: str, num_classes: int, train_labels: np.ndarray | None) -> Task:
    """The engine task of a run. ``train_labels`` sizes balanced class weights (None: scoring only,
    where a distillation run needs no teacher)."""
    import torch

    from hepnn.train.losses import balanced_class_weights, build_loss, resolve_loss_name
    from hepnn.train.pretrain import PRETRAIN_KINDS, PretrainTask
    from hepnn.train.tasks import ClassifyTask, Regularization, RegressTask
    from hepnn.train.tasks_unsupervised import UNSUPERVISED_KINDS, make_unsupervised_task

    tc = cfg.train
    if kind in PRETRAIN_KINDS:
        return PretrainTask(kind)
    if kind in UNSUPERVISED_KINDS:
        return make_unsupervised_task(kind, tc.unsupervised)
    reg = Regularization(l1=tc.l1, l2=tc.l2, grad_penalty=tc.grad_penalty,
                         inputs=get_model_spec(cfg.model.name).inputs)
    if kind == "classify":
        name = resolve_loss_name(tc.loss, num_classes)
        weights = None
        if tc.class_weights == "balanced" and train_labels is not None:
            weights = balanced_class_weights(torch.as_tensor(train_labels), num_classes)
        elif isinstance(tc.class_weights, list):
            weights = torch.tensor(tc.class_weights, dtype=torch.float32)
        loss = build_loss(name, num_classes=num_classes, class_weights=weights)
        if cfg.distill is not None and train_labels is not None:
            from hepnn.train.distill import DistillTask

            return DistillTask(loss, name, num_classes, reg, teacher=lambda: load_teacher(cfg),
                               temperature=cfg.distill.temperature, alpha=cfg.distill.alpha)
        return ClassifyTask(loss, name, num_classes, reg)
    name = "mse" if tc.loss == "auto" else tc.loss
    return RegressTask(build_loss(name, num_classes=1), reg)


def make_builder(cfg: RunConfig, pre: Preprocessing, *, kind: str, fields: Sequence[str],
                 trim: float | None = None) -> BatchBuilder:
    """The ``BatchBuilder`` of a run: its fields, features, fitted preprocessing and particle cap
    (``trim``: the training batches' quantile cap, ``data.trim``)."""
    from hepnn.data.loader import BatchBuilder

    d = cfg.data
    return BatchBuilder(fields=fields, particle_features=d.particle_features,
                        particle_preprocessor=pre.get("particle"), jet_preprocessor=pre.get("jet"),
                        target_preprocessor=pre.get("target"), task="regress" if kind == "regress" else "classify",
                        max_particles=d.max_particles, image_size=d.image_size, trim=trim)


def eval_loader(cfg: RunConfig, builder: BatchBuilder, jets: JaggedJets) -> JetLoader:
    """Unshuffled batches of ``jets``, sorted by multiplicity when bucketing (``predict_outputs``
    puts the outputs back in file order). The training batch size: pair-feature models hold
    (B, N, N, C) tensors, so a larger evaluation batch costs memory bandwidth, not speed."""
    from hepnn.data.loader import JetLoader

    return JetLoader(jets, builder, batch_size=cfg.data.batch_size, shuffle=False,
                     bucketing=cfg.data.bucketing is not False, pool=10**6)


def run_amp(cfg: RunConfig) -> str:
    """``train.amp`` as the run applies it, in training and in evaluation alike: ``"auto"`` means fp32
    for a model of jet-level observables only (linear models, perceptron, MLP).

    Their products are too small for bf16 to gain anything (the MLP trains at 0.74× fp32's rate in bf16).
    Their scores would survive bf16 now: the output layer computes in fp32 under autocast
    (``build_model``), so the perceptron, an output layer alone, trains and scores the same bits in
    bf16 as in fp32 (test AUC 0.936; 0.907 when its logits were bf16, below the jet mass alone: 0.922).
    """
    amp = cfg.train.amp
    if amp == "auto" and get_model_spec(cfg.model.name).inputs == ("jet",):
        return "none"
    return amp


def train_bucketing(setting: bool | str, model: Model | None) -> bool:
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


def make_loaders(cfg: RunConfig, splits: Splits, pre: Preprocessing, *, kind: str, fields: Sequence[str],
                 model: Model | None = None, pin_memory: bool = False) -> tuple[Any, EvalLoaders]:
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


# --------------------------------------------------------------------------------------------------
# run directory -> run


def require_run_dir(run_dir: str | Path) -> Path:
    """``run_dir`` as a Path if it holds a run's config.yaml, else an error saying what to pass."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise HepnnError(f"{run_dir} is not a run directory (no config.yaml); pass the folder `hepnn train` wrote")
    return run_dir


def load_run(run_dir: str | Path) -> Run:
    """A finished run: config, model with weights (eval mode; re-quantized when the run is int8),
    fitted preprocessing and task kind."""
    from hepnn.data.dataset import load_preprocessors

    run_dir = require_run_dir(run_dir)
    cfg = load_config(run_dir / "config.yaml")
    model = build_model(cfg)
    if isinstance(model, TreeModel):
        path = run_dir / "model.json"
        if not path.is_file():
            raise HepnnError(f"{path} is missing; the {cfg.model.name} run did not finish")
        model.load(path)
    else:
        from hepnn.compress.recipe import RECIPE_FILE, apply_recipe, load_recipe
        from hepnn.train.checkpoint import load_weights

        load_weights(model, run_dir / "model.safetensors")
        model.eval()
        if (run_dir / RECIPE_FILE).is_file():  # a quantized run: float weights + recipe
            apply_recipe(model, load_recipe(run_dir / RECIPE_FILE))
    return Run(cfg, model, load_preprocessors(run_dir / "preprocess.json"), task_kind(cfg))


def load_run_data(run_dir: str | Path) -> tuple[RunConfig, Preprocessing, Splits, str, tuple[str, ...]]:
    """(config, fitted preprocessing, in-memory splits, task kind, model inputs) of a run."""
    from hepnn.data.dataset import load_preprocessors, load_splits

    run_dir = require_run_dir(run_dir)
    cfg = load_config(run_dir / "config.yaml")
    kind = task_kind(cfg)
    fields = run_fields(cfg, train=True)
    splits = load_splits(cfg.data, fields=fields, task=kind, seed=cfg.train.seed, mode="memory")
    return cfg, load_preprocessors(run_dir / "preprocess.json"), splits, kind, get_model_spec(cfg.model.name).inputs


def teacher_config(cfg: RunConfig) -> RunConfig:
    """The config of the run named by ``distill.teacher``."""
    if cfg.distill is None:
        raise ConfigError("no distill section in the config")
    path = Path(cfg.distill.teacher) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"distill.teacher: {cfg.distill.teacher} is not a run directory (no config.yaml)")
    return load_config(path)


def load_teacher(cfg: RunConfig) -> Teacher:
    """The frozen teacher of a distillation run, checked against the student's data."""
    from hepnn.train.distill import Teacher, check_compatible

    assert cfg.distill is not None
    run = load_run(cfg.distill.teacher)
    if isinstance(run.model, TreeModel):
        raise ConfigError("distill.teacher must be a torch model run (a tree model gives no logits to distill)")
    teacher = Teacher(run.cfg, run.model, run.pre, get_model_spec(run.cfg.model.name).inputs)
    check_compatible(cfg, teacher)
    log.info("distilling from %s (%s), T=%g, alpha=%g", cfg.distill.teacher, run.cfg.model.name,
             cfg.distill.temperature, cfg.distill.alpha)
    return teacher
