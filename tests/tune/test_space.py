"""Search spaces: grids, value round trips, trial configs and every bad-input error."""

from __future__ import annotations

import math

import pytest

from hepnn.config import parse_override, validate_config
from hepnn.errors import ConfigError
from hepnn.tune.space import (check_tune, direction_of, grid_values, n_trials_of, report_metric_of,
                              trial_config, base_raw, yaml_text)
from hepnn.tune.study import TrialReporter, epoch_value


def raw_config(**tune):
    tune.setdefault("space", {"train.optimizer.lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2}})
    return {"name": "t", "data": {"train": ["jets.parquet"]},
            "model": {"name": "mlp", "params": {"hidden": [8], "dropout": 0.1}},
            "train": {"epochs": 2}, "tune": tune}


def test_grid_points_by_hand():
    cfg = validate_config(raw_config(space={
        "train.epochs": {"type": "int", "low": 2, "high": 8, "step": 3},
        "model.params.dropout": {"type": "uniform", "low": 0.0, "high": 0.3, "step": 0.1},
        "model.params.hidden": {"type": "categorical", "choices": [[8], [16, 16]]}}, sampler="grid"))
    space = cfg.tune.space
    assert grid_values(space["train.epochs"]) == [2, 5, 8]
    assert grid_values(space["model.params.dropout"]) == [0.0, 0.1, 0.2, 0.3]
    assert grid_values(space["model.params.hidden"]) == [[8], [16, 16]]
    assert n_trials_of(cfg.tune) == 3 * 4 * 2


@pytest.mark.parametrize("value", [[64, 64], 1e-05, 3e-4, 0.1, 7, "relu", "null", True, None, {"a": [1, 2]}])
def test_yaml_text_round_trips_through_overrides(value):
    _, parsed = parse_override(f"model.params.x={yaml_text(value)}")
    assert parsed == value and type(parsed) is type(value)


def test_trial_config_applies_nested_values_and_drops_tune():
    cfg = validate_config(raw_config())
    trial = trial_config(base_raw(cfg), {"train.optimizer.lr": 3e-3, "model.params.hidden": [32, 16]})
    assert trial.train.optimizer.lr == 3e-3 and trial.model.params["hidden"] == [32, 16]
    assert trial.tune is None and trial.train.epochs == 2
    assert trial.data.train[0].startswith("/")  # absolute: a trial runs from any directory


@pytest.mark.parametrize(("tune", "match"), [
    ({"space": {"train.optimizer.lrr": {"type": "uniform", "low": 0.1, "high": 0.2}}}, "lrr"),
    ({"space": {"train.epochs": {"type": "int", "low": 0, "high": 3}}}, "train.epochs"),  # low corner invalid
    ({"space": {"model.params.hiddn": {"type": "categorical", "choices": [[8]]}}}, "hiddn"),
    ({"metric": "val_mae"}, "val_mae"),
    ({"metric": "rej70"}, "rej70"),
    ({"sampler": "grid"}, "grid sampler"),
    ({"space": {"model.params.dropout": {"type": "uniform", "low": 0.0, "high": 0.2}}, "sampler": "grid"}, "step"),
])
def test_bad_tune_sections_are_config_errors(tune, match):
    with pytest.raises(ConfigError, match=match):
        check_tune(validate_config(raw_config(**tune)))


@pytest.mark.parametrize(("param", "match"), [
    ({"type": "uniform", "low": 0.3, "high": 0.3}, "empty range"),
    ({"type": "uniform", "low": 0.5, "high": 0.1}, "empty range"),
    ({"type": "loguniform", "low": 0.0, "high": 0.1}, "low > 0"),
    ({"type": "categorical", "choices": []}, "choices"),
    ({"type": "int", "low": 1.5, "high": 4}, "integer"),
    ({"type": "uniform", "low": 0.1}, "low` and `high"),
    ({"type": "uniform", "low": 0.1, "high": 0.2, "lo": 1}, "unknown key"),
])
def test_bad_parameters_fail_validation_naming_the_key(param, match):
    with pytest.raises(ConfigError, match=match) as err:
        validate_config(raw_config(space={"model.params.dropout": param}))
    assert "model.params.dropout" in str(err.value)


def test_regression_metrics_and_missing_section():
    raw = raw_config(metric="val_auc")
    raw["data"]["target"] = "jet_mass"
    with pytest.raises(ConfigError, match="regress run does not produce 'val_auc'"):
        check_tune(validate_config(raw))
    raw["tune"]["metric"] = "resolution"
    assert check_tune(validate_config(raw)).metric == "resolution"
    raw["tune"]["pruner"] = "median"  # resolution -> val_mae per epoch: fine
    check_tune(validate_config(raw))
    raw["tune"]["metric"] = "bias"  # no per-epoch counterpart for the pruner
    with pytest.raises(ConfigError, match="report_metric"):
        check_tune(validate_config(raw))
    del raw["tune"]
    with pytest.raises(ConfigError, match="no `tune:` section"):
        check_tune(validate_config(raw))


def test_direction_and_report_metric_defaults():
    tune = validate_config(raw_config(metric="rej50")).tune
    assert direction_of(tune) == "maximize" and report_metric_of(tune) == "val_auc"
    tune = validate_config(raw_config(metric="val_loss")).tune
    assert direction_of(tune) == "minimize" and report_metric_of(tune) == "val_loss"
    tune = validate_config(raw_config(metric="val_loss", direction="maximize")).tune
    assert direction_of(tune) == "maximize"


def test_epoch_value_follows_the_weights_the_run_keeps():
    history = [{"val_loss": 0.5, "val_auc": 0.80}, {"val_loss": 0.4, "val_auc": 0.85},
               {"val_loss": 0.45, "val_auc": 0.9}]
    plain = validate_config(raw_config())
    assert epoch_value(history, "val_auc", plain) == 0.9  # last epoch
    raw = raw_config()
    raw["train"]["early_stopping"] = {"metric": "val_loss", "mode": "min"}
    assert epoch_value(history, "val_auc", validate_config(raw)) == 0.85  # restored best epoch


class FakeTrial:
    def __init__(self, prune_at: int):
        self.reported: list[tuple[float, int]] = []
        self.prune_at = prune_at
        self.number = 7

    def report(self, value, step):
        self.reported.append((value, step))

    def should_prune(self):
        return len(self.reported) >= self.prune_at


def test_reporter_reports_each_epoch_and_prunes_after_train_end():
    import optuna

    engine = type("E", (), {"should_stop": False})()
    rep = TrialReporter(FakeTrial(prune_at=2), "val_auc")
    rep.on_epoch_end(engine, {"epoch": 0, "val_auc": 0.7})
    assert not engine.should_stop
    rep.on_epoch_end(engine, {"epoch": 1, "val_auc": math.nan})  # non-finite: not reported
    rep.on_epoch_end(engine, {"epoch": 2, "val_auc": 0.8})
    assert rep.trial.reported == [(0.7, 1), (0.8, 3)] and engine.should_stop
    with pytest.raises(optuna.TrialPruned):
        rep.on_train_end(engine)
    with pytest.raises(ConfigError, match="val_auc"):
        TrialReporter(FakeTrial(9), "val_auc").on_epoch_end(engine, {"epoch": 0, "val_loss": 1.0})
