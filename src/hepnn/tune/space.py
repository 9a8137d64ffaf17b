"""Search spaces over dotted config keys: checking, sampling, grids and the config of one trial.

A space maps dotted keys of the run config to parameters (``hepnn.config.TuneParam``)::

    train.optimizer.lr:   {type: loguniform, low: 1.0e-4, high: 1.0e-2}
    model.params.hidden:  {type: categorical, choices: [[32, 32], [64, 64, 64]]}

A trial's config is the base config with the sampled values applied as dotted overrides
(``hepnn.config.apply_overrides``) and validated again, so a trial can never run a config that
``hepnn train`` would reject. Nothing here imports optuna: the trial object is duck-typed.
"""

from __future__ import annotations

import copy
import math
import os
from typing import Any, Mapping

import yaml

from hepnn.config import RunConfig, TuneConfig, TuneParam, apply_overrides, validate_config
from hepnn.errors import ConfigError
from hepnn.runs import task_kind

# Per-epoch history keys (Engine.fit: train `loss`, validation `val_*`) and metrics.json keys per task.
EPOCH_METRICS = {"classify": ("loss", "acc", "val_loss", "val_acc", "val_auc"),
                 "regress": ("loss", "val_loss", "val_mae")}
FINAL_METRICS = {"classify": ("accuracy", "auc"), "regress": ("mse", "mae", "bias", "resolution")}
# The per-epoch counterpart of a final metric: what the pruner watches when `metric` is final.
_EPOCH_COUNTERPART = {"accuracy": "val_acc", "auc": "val_auc", "mse": "val_loss", "mae": "val_mae",
                      "resolution": "val_mae"}
_MAXIMIZED = ("auc", "acc", "accuracy", "val_auc", "val_acc")
DEFAULT_TRIALS = 20


def final_metrics(cfg: RunConfig) -> tuple[str, ...]:
    """metrics.json keys a run of ``cfg`` writes (rejections follow evaluate.signal_efficiencies)."""
    kind = task_kind(cfg)
    if kind != "classify":
        return FINAL_METRICS.get(kind, ())
    return (*FINAL_METRICS["classify"], *(f"rej{round(100 * e)}" for e in cfg.evaluate.signal_efficiencies))


def direction_of(tune: TuneConfig) -> str:
    """``tune.direction``, or maximize for AUC/accuracy/rejection and minimize for losses and errors."""
    if tune.direction is not None:
        return tune.direction
    m = tune.metric
    return "maximize" if m in _MAXIMIZED or m.startswith("rej") else "minimize"


def report_metric_of(tune: TuneConfig) -> str | None:
    """The per-epoch metric reported to the pruner (None: nothing to report)."""
    if tune.report_metric is not None:
        return tune.report_metric
    if tune.metric.startswith("rej"):
        return "val_auc"
    return _EPOCH_COUNTERPART.get(tune.metric, tune.metric)


def n_trials_of(tune: TuneConfig) -> int:
    """``tune.n_trials``, defaulting to the grid size for the grid sampler."""
    if tune.n_trials is not None:
        return tune.n_trials
    return math.prod(len(grid_values(p, key)) for key, p in tune.space.items()) if tune.sampler == "grid" \
        else DEFAULT_TRIALS


def grid_values(p: TuneParam, key: str = "") -> list[Any]:
    """The points of one parameter on a grid: its choices, or low..high in steps (inclusive)."""
    if p.type == "categorical":
        return list(p.choices or [])
    if p.type == "loguniform" or (p.type == "uniform" and p.step is None):
        raise ConfigError(f"tune.space.{key}: the grid sampler needs `choices` or a `step`; "
                          f"a {p.type} range without a step is not a grid (use type: categorical)")
    step = p.step if p.step is not None else 1
    n = int(math.floor((p.high - p.low) / step + 1e-9)) + 1  # type: ignore[operator]
    if p.type == "int":
        if not float(step).is_integer():
            raise ConfigError(f"tune.space.{key}: an int parameter needs an integer step, got {step}")
        return [int(p.low) + i * int(step) for i in range(n)]  # type: ignore[arg-type]
    return [round(p.low + i * step, 12) for i in range(n)]  # type: ignore[operator]


def label(value: Any) -> Any:
    """How a value is shown to optuna: scalars as they are, lists and mappings as YAML text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return yaml_text(value)


def yaml_text(value: Any) -> str:
    """A value as the YAML flow text that ``parse_override`` reads back to the same value."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("...").strip()  # a bare scalar document ends with '...'


def suggest(trial: Any, space: Mapping[str, TuneParam], *, grid: bool = False) -> dict[str, Any]:
    """Sample one point of ``space`` with an optuna trial; returns {dotted key: value}.

    With ``grid=True`` every parameter is categorical over its grid points (``grid_values``), which
    is what ``optuna.samplers.GridSampler`` enumerates.
    """
    out: dict[str, Any] = {}
    for key, p in space.items():
        if grid or p.type == "categorical":
            values = grid_values(p, key)
            labels = [label(v) for v in values]
            out[key] = values[labels.index(trial.suggest_categorical(key, labels))]
        elif p.type == "int":
            out[key] = trial.suggest_int(key, int(p.low), int(p.high), step=int(p.step or 1))
        else:
            out[key] = trial.suggest_float(key, p.low, p.high, log=p.type == "loguniform", step=p.step)
    return out


def base_raw(cfg: RunConfig) -> dict[str, Any]:
    """The validated base config as plain data, data paths made absolute (trials run anywhere)."""
    raw = cfg.model_dump(mode="json")
    for split in ("train", "val", "test"):
        raw["data"][split] = [os.path.abspath(p) for p in raw["data"][split]]
    return raw


def trial_config(base: dict[str, Any], params: Mapping[str, Any], source: str = "<trial>") -> RunConfig:
    """``base`` with ``params`` applied as dotted overrides, validated; the tune section dropped."""
    raw = apply_overrides(copy.deepcopy(base), [f"{k}={yaml_text(v)}" for k, v in params.items()])
    raw["tune"] = None  # a trial is a plain run: its config.yaml trains as is
    return validate_config(raw, source)


def check_tune(cfg: RunConfig) -> TuneConfig:
    """Every check that can fail before a trial starts; returns the tune section.

    Raises ``ConfigError`` for: no tune section; a key in the space that is not a config key (both
    corners of the space are applied and validated, model parameters are checked against the model
    factory); a grid that is not a grid; a metric or report metric the task does not produce.
    """
    tune = cfg.tune
    if tune is None:
        raise ConfigError("the config has no `tune:` section; add one with a `space` (see docs/tuning.md)")
    base = base_raw(cfg)
    for corner in (0, -1):  # every parameter at its low / first value, then at its high / last value
        params = {k: _corner(p, corner) for k, p in tune.space.items()}
        try:
            trial_cfg = trial_config(base, params, source="tune.space")
        except ConfigError as err:
            raise ConfigError(f"tune.space does not fit the config: {err}") from None
        _check_model_params(trial_cfg, tune)
    if tune.sampler == "grid":
        for key, p in tune.space.items():
            grid_values(p, key)
    _check_metrics(cfg, tune)
    return tune


def _corner(p: TuneParam, which: int) -> Any:
    if p.type == "categorical":
        return p.choices[which]  # type: ignore[index]
    value = p.low if which == 0 else p.high
    return int(value) if p.type == "int" else value  # type: ignore[arg-type]


def _check_model_params(cfg: RunConfig, tune: TuneConfig) -> None:
    from hepnn.registry import get_model_spec

    allowed = get_model_spec(cfg.model.name).params()
    for key in tune.space:
        parts = key.split(".")
        if parts[:2] == ["model", "params"] and len(parts) >= 3 and parts[2] not in allowed:
            raise ConfigError(f"tune.space.{key}: model {cfg.model.name!r} has no parameter {parts[2]!r}; "
                              f"allowed: {', '.join(sorted(allowed))}")


def _check_metrics(cfg: RunConfig, tune: TuneConfig) -> None:
    kind = task_kind(cfg)
    if kind not in EPOCH_METRICS:  # another engine task: only its losses are known in advance
        if tune.metric not in ("loss", "val_loss"):
            raise ConfigError(f"tune.metric: {tune.metric!r} is not known for train.task={kind}; use val_loss")
        return
    epoch, final = EPOCH_METRICS[kind], final_metrics(cfg)
    if tune.metric not in (*epoch, *final):
        raise ConfigError(f"tune.metric: a {kind} run does not produce {tune.metric!r}; per epoch: "
                          f"{', '.join(epoch)}; in metrics.json: {', '.join(final)}")
    report = report_metric_of(tune)
    if tune.pruner != "none" and report not in epoch:
        raise ConfigError(f"tune.report_metric: the pruner needs a per-epoch metric ({', '.join(epoch)}); "
                          f"got {report!r}")
    from hepnn.registry import get_model_spec

    if tune.metric in epoch and not get_model_spec(cfg.model.name).is_torch:
        raise ConfigError(f"tune.metric: {cfg.model.name} is not trained by epochs and has no per-epoch "
                          f"{tune.metric!r}; use one of {', '.join(final)}")
