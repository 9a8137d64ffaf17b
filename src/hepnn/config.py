"""Typed schemas for a run: one YAML file, dotted overrides on the command line, validated once.

>>> cfg = load_config("configs/top_tagging/pfn.yaml", ["train.optimizer.lr=0.0003", "train.epochs=2"])

An unknown key or a wrong type is a ``ConfigError`` that names the dotted key, the value given and
the allowed keys. Library functions take plain arguments; only the CLI and factories read a config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hepnn.errors import ConfigError


class _Section(BaseModel):
    # allow_inf_nan=False: a NaN or infinite number (lr=.inf, a YAML .nan) is never a valid setting
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class SplitConfig(_Section):
    """Fractions for splitting one source into train/val/test (stratified by label, seeded)."""

    train: float = Field(0.6, gt=0, le=1)
    val: float = Field(0.2, ge=0, lt=1)
    test: float = Field(0.2, ge=0, lt=1)

    @model_validator(mode="after")
    def _sum_to_one(self) -> "SplitConfig":
        if abs(self.train + self.val + self.test - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must be 1, got {self.train + self.val + self.test:g}")
        return self


class PreprocessStep(_Section):
    """One preprocessing step, e.g. ``{kind: standardize, block: jet, columns: [mass, pt]}``."""

    block: Literal["jet", "particle", "target"] = "jet"  # jet features, particle features (x), regression target
    kind: Literal["standardize", "robust_standardize", "log", "clip", "shared_scale", "pca"]
    columns: list[str] | None = None  # None = every column of the block it applies to
    params: dict[str, Any] = Field(default_factory=dict)


class DataConfig(_Section):
    """Where the jets come from and how they become batches."""

    train: list[str] = Field(default_factory=list)  # files or globs; one source is split by `split`
    val: list[str] = Field(default_factory=list)  # optional separate files (split by file)
    test: list[str] = Field(default_factory=list)
    split: SplitConfig = Field(default_factory=SplitConfig)
    particle_features: list[str] = Field(
        default_factory=lambda: ["deta", "dphi", "log_pt", "log_e", "log_pt_rel", "log_e_rel", "dr"]
    )
    jet_features: list[str] = Field(default_factory=lambda: ["mass", "pt", "n_particles", "tau21", "tau32"])
    target: str = "label"  # column to predict: "label" (classification) or e.g. "jet_mass", "truth_pt"
    num_classes: int = Field(2, ge=1)  # 1 = regression output
    max_particles: int | None = Field(128, gt=0)  # cap N, keeping the hardest particles; None = no cap
    image_size: int = Field(40, gt=1)  # jet images are image_size x image_size
    batch_size: int = Field(256, gt=0)
    loader: Literal["auto", "memory", "stream"] = "auto"
    memory_limit_gb: float = Field(4.0, gt=0)  # in-memory loading when the estimate fits under this
    chunk_size: int = Field(100_000, gt=0)  # jets per streamed chunk
    workers: int = Field(1, ge=0)  # streaming: reader processes, each on its own row groups (0 = in the training process)
    # Batches of jets of similar multiplicity cut padding waste; sorted batches skew batch-norm statistics.
    bucketing: bool | Literal["auto"] = "auto"  # auto: always in evaluation, in training unless the model has batch norm
    trim: float | None = Field(None, gt=0, le=1)  # training: pad each batch to this quantile of its multiplicities, dropping the softest particles beyond (weaver's trimming; 0.9 for ParT)
    max_jets: int | None = Field(None, gt=0)  # quick runs: the first jets of each file, N in all (by file size)
    train_labels: list[int] | None = None  # train/validate on jets with these labels only (e.g. [0] = QCD for anomaly detection); test keeps all

    @field_validator("train", "val", "test", mode="before")
    @classmethod
    def _str_to_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class ModelConfig(_Section):
    """A registered model name and its keyword parameters (checked against the factory)."""

    name: str = "mlp"
    params: dict[str, Any] = Field(default_factory=dict)


class OptimizerConfig(_Section):
    name: Literal["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam", "amsgrad", "adamw"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)  # never applied to biases and norm parameters
    momentum: float = Field(0.9, ge=0, lt=1)  # for momentum / nesterov / rmsprop
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)

    @field_validator("betas")
    @classmethod
    def _betas_in_unit_interval(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in v):
            raise ValueError(f"Adam betas must lie in [0, 1), got {list(v)}")
        return v


class ScheduleConfig(_Section):
    name: Literal["constant", "time_decay", "step", "exponential", "cosine", "onecycle", "plateau"] = "constant"
    warmup_steps: int = Field(0, ge=0)  # linear warm-up before any schedule
    decay: float = Field(0.0, ge=0)  # time-based decay k in lr0 / (1 + k t), t in steps
    step_size: int = Field(1, gt=0)  # epochs between step decays
    gamma: float = Field(0.5, gt=0, le=1)  # step / exponential / plateau factor
    min_lr: float = Field(0.0, ge=0)  # cosine floor
    patience: int = Field(2, ge=0)  # plateau


class EarlyStoppingConfig(_Section):
    metric: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    patience: int = Field(5, ge=0)
    restore_best: bool = True


class UnsupervisedConfig(_Section):
    """Settings of the unsupervised and generative tasks (train.task = denoise, elbo, adversarial)."""

    noise: float = Field(0.1, ge=0)  # denoise: std of the Gaussian noise added to the preprocessed inputs
    beta: float = Field(1.0, ge=0)  # elbo: weight of the KL term (beta-VAE)
    critic_lr: float = Field(1e-4, gt=0)  # adversarial: the critic's own Adam learning rate
    critic_betas: tuple[float, float] = (0.0, 0.9)  # adversarial: the critic's Adam betas (WGAN-GP paper)
    critic_steps: int = Field(5, ge=1)  # adversarial: critic updates per generator update
    gp_lambda: float = Field(10.0, ge=0)  # adversarial: gradient-penalty weight


class TrainConfig(_Section):
    """Everything the training engine does with a model and data."""

    task: Literal["auto", "classify", "regress", "reconstruct", "denoise", "elbo", "adversarial", "diffusion", "flow",
                  "masked_particles", "vqvae", "next_particle"] = "auto"  # the last three: self-supervised pre-training
    epochs: int = Field(10, ge=1)
    # A compute budget in seconds: training stops after the step that crosses it (epochs stays the cap).
    # "process" counts CPU seconds of this process (fair between models while other jobs share the cores).
    time_limit: float | None = Field(None, gt=0)
    time_clock: Literal["wall", "process"] = "wall"
    seed: int = 0
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    loss: Literal["auto", "ce", "bce", "perceptron", "mse", "mae", "huber"] = "auto"
    class_weights: Literal["none", "balanced"] | list[float] = "none"
    init: Literal["default", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal"] = "default"
    l1: float = Field(0.0, ge=0)
    l2: float = Field(0.0, ge=0)
    grad_penalty: float = Field(0.0, ge=0)  # lambda * ||d y_hat / d x||^2
    grad_clip: float | None = Field(None, gt=0)
    early_stopping: EarlyStoppingConfig | None = None
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    amp: Literal["auto", "none", "bf16", "fp16"] = "auto"  # auto: bf16 where the hardware runs it fast (AMX/avx512_bf16 CPUs, GPUs ≥ sm80), else fp32
    compile: bool = False
    log_every: int = Field(50, gt=0)
    unsupervised: UnsupervisedConfig = Field(default_factory=UnsupervisedConfig)
    # Starting from weights (hepnn.train.transfer): a run directory, a .safetensors file or pretrained:NAME;
    # tensors are matched by name and shape, the rest keeps its initialization (init_report.json says which).
    init_from: str | None = None
    freeze: list[str] = Field(default_factory=list)  # parameter-name patterns kept fixed, e.g. ["embed.*", "blocks.*"]
    lr_factors: dict[str, float] = Field(default_factory=dict)  # pattern -> factor on optimizer.lr (first match wins)
    linear_probe: bool = False  # train the output layer only (everything else frozen)

    @field_validator("lr_factors")
    @classmethod
    def _positive_factors(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: f for k, f in v.items() if not f > 0}
        if bad:
            raise ValueError(f"learning-rate factors must be > 0 (freeze a parameter instead of a factor 0): {bad}")
        return v

    @model_validator(mode="after")
    def _probe_alone(self) -> "TrainConfig":
        if self.linear_probe and self.freeze:
            raise ValueError("linear_probe freezes everything but the output layer; drop train.freeze")
        return self


class EvaluateConfig(_Section):
    signal_efficiencies: list[float] = Field(default_factory=lambda: [0.3, 0.5])
    plots: bool = True
    overtraining_jets: int = Field(20_000, ge=0)  # training jets scored for the KS overtraining test (0 = skip)

    @field_validator("signal_efficiencies")
    @classmethod
    def _in_unit_interval(cls, v: list[float]) -> list[float]:
        bad = [e for e in v if not 0 < e < 1]
        if bad:
            raise ValueError(f"signal efficiencies must lie in (0, 1), got {bad}")
        return v


class TuneParam(_Section):
    """One dimension of a search space, e.g. ``{type: loguniform, low: 1e-4, high: 1e-2}``."""

    type: Literal["loguniform", "uniform", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    step: float | None = Field(None, gt=0)  # uniform/int: grid spacing (and the grid sampler's points)
    choices: list[Any] | None = None  # categorical: values of any YAML type (lists too, e.g. layer widths)

    @model_validator(mode="after")
    def _check_range(self) -> "TuneParam":
        if self.type == "categorical":
            if not self.choices or self.low is not None or self.high is not None:
                raise ValueError("categorical needs a non-empty `choices` list and no low/high")
            return self
        if self.low is None or self.high is None or self.choices is not None:
            raise ValueError(f"{self.type} needs `low` and `high` (and no `choices`)")
        if self.low >= self.high:
            raise ValueError(f"empty range: low={self.low:g} must be below high={self.high:g}")
        if self.type == "loguniform" and (self.low <= 0 or self.step is not None):
            raise ValueError(f"loguniform needs low > 0 (got {self.low:g}) and no step")
        if self.type == "int" and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise ValueError("int needs integer low and high")
        return self


class TuneConfig(_Section):
    """Hyperparameter search (`hepnn tune`): a space over dotted config keys, a metric, a sampler."""

    space: dict[str, TuneParam] = Field(min_length=1)  # dotted key -> parameter, e.g. train.optimizer.lr
    metric: str = "val_auc"  # a per-epoch history key (val_auc, val_loss, ...) or a metrics.json key (auc, rej50)
    direction: Literal["maximize", "minimize"] | None = None  # None: maximize auc/acc/rej, minimize the rest
    n_trials: int | None = Field(None, ge=1)  # None: the grid size for sampler=grid, else 20
    sampler: Literal["grid", "random", "bayes", "gp"] = "bayes"  # bayes = TPE, gp = Gaussian process
    n_startup_trials: int = Field(10, ge=0)  # bayes/gp: random trials before the model guides the search
    pruner: Literal["none", "median", "halving"] = "none"  # halving = successive halving
    pruner_warmup: int = Field(1, ge=0)  # epochs every trial runs before it may be pruned
    report_metric: str | None = None  # per-epoch metric the pruner sees (default: from `metric`)
    study_name: str | None = None  # name in the storage (default: <name>-<model.name>)
    seed: int = 0


class DistillConfig(_Section):
    """Knowledge distillation (arXiv:1503.02531): loss = alpha T^2 KL(teacher || student at T) + (1 - alpha) CE."""

    teacher: str  # the teacher's run directory (its model scores every training batch, frozen)
    temperature: float = Field(4.0, gt=0)  # T: softens both distributions; T^2 keeps the gradient scale
    alpha: float = Field(0.7, ge=0, le=1)  # weight of the soft (teacher) term


class RunConfig(_Section):
    """A whole run: data, model, training and evaluation."""

    name: str = "run"
    data: DataConfig = Field(default_factory=DataConfig)
    preprocess: list[PreprocessStep] = Field(default_factory=list)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    tune: TuneConfig | None = None  # only `hepnn tune` reads it
    distill: DistillConfig | None = None  # train against a teacher run's scores (hepnn distill)


# --------------------------------------------------------------------------------------------------
# loading, overrides and error messages


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"train.optimizer.lr=0.0003"`` -> (["train", "lr"], 0.0003). Values are parsed as YAML scalars/lists."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not of the form key=value (e.g. train.optimizer.lr=0.0003)")
    key, _, raw = item.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {item!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set dotted keys in a nested dict (validation happens afterwards, on the whole config)."""
    for item in overrides:
        path, value = parse_override(item)
        node = raw
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return raw


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed at ``loc`` inside ``model`` (for error messages)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:  # a key of a dict field (e.g. tune.space.<dotted key>): stay on its value type
            continue
        ann = field.annotation
        current = None
        for cand in (ann, *getattr(ann, "__args__", ())):
            cand_args = getattr(cand, "__args__", ())
            for c in (cand, *cand_args):
                if isinstance(c, type) and issubclass(c, BaseModel):
                    current = c
                    break
            if current is not None:
                break
    return sorted(getattr(current, "model_fields", {}))


def format_validation_error(err: ValidationError, model: type[BaseModel], source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        value = e.get("input")
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, tuple(e["loc"]))
            lines.append(f"  unknown key '{key}' (value {value!r}); allowed keys here: {', '.join(allowed)}")
        else:
            lines.append(f"  '{key}' = {value!r}: {e['msg']}")
    return "\n".join(lines)


def validate_config(raw: dict[str, Any], source: str = "<config>") -> RunConfig:
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, RunConfig, source)) from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a run YAML (or start from defaults), apply dotted overrides, validate once."""
    raw: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as err:  # a binary file is not YAML either
            raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of sections, got {type(loaded).__name__}")
        raw = loaded
        _resolve_paths(raw, path.parent)
    raw = apply_overrides(raw, overrides or [])
    return validate_config(raw, source)


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    """Data paths in a config file are relative to the repository root or to the file itself."""
    data = raw.get("data")
    if not isinstance(data, dict):
        return
    for key in ("train", "val", "test"):
        entries = data.get(key)
        if isinstance(entries, str):
            entries = [entries]
        if not isinstance(entries, list):
            continue
        resolved = []
        for p in entries:
            if isinstance(p, str) and not Path(p).is_absolute() and not Path(p).exists() and (base / p).exists():
                p = str(base / p)
            resolved.append(p)
        data[key] = resolved


def dump_config(cfg: RunConfig) -> str:
    """The resolved config as YAML (what lands in every run directory and checkpoint)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
