"""The study machinery with a fake trainer whose metric is a known function of the config."""

from __future__ import annotations

import csv
import itertools
import json
import math
import subprocess
import sys

import pytest

optuna = pytest.importorskip("optuna")

from hepnn.config import load_config, validate_config  # noqa: E402
from hepnn.tune import run_study  # noqa: E402
from hepnn.tune.study import StudyPlan, make_storage, open_study  # noqa: E402
from hepnn.tune.space import base_raw  # noqa: E402

from tests.tune.fakes import DROPOUT_BEST, LR_BEST, fake_fit, known_auc  # noqa: E402

LR = {"type": "loguniform", "low": 1e-4, "high": 1e-1}
DROPOUT = {"type": "uniform", "low": 0.0, "high": 0.5}


def config(tmp_path=None, name="t", **tune):
    tune.setdefault("space", {"train.optimizer.lr": LR, "model.params.dropout": DROPOUT})
    tune.setdefault("metric", "auc")
    raw = {"name": name, "data": {"train": ["jets.parquet"]},
           "model": {"name": "mlp", "params": {"hidden": [8], "dropout": 0.1}},
           "train": {"epochs": 4}, "evaluate": {"plots": False}, "tune": tune}
    return validate_config(raw)


def stored_trials(study_dir, name="t-mlp"):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{study_dir / 'study.db'}").trials


def test_grid_visits_exactly_the_grid(tmp_path):
    space = {"train.optimizer.lr": {"type": "categorical", "choices": [1e-3, 3e-3]},
             "model.params.dropout": {"type": "uniform", "low": 0.1, "high": 0.2, "step": 0.1}}
    cfg = config(space=space, sampler="grid")
    result = run_study(cfg, tmp_path, train_fn=fake_fit, plots=False)
    trials = stored_trials(tmp_path)
    visited = sorted((t.params["train.optimizer.lr"], t.params["model.params.dropout"]) for t in trials)
    assert visited == sorted(itertools.product([1e-3, 3e-3], [0.1, 0.2]))  # each point once, nothing else
    assert result.n_trials == 4 and result.states == {"COMPLETE": 4}
    run_study(cfg, tmp_path, train_fn=fake_fit, plots=False)  # rerun of a finished grid: nothing new
    assert len(stored_trials(tmp_path)) == 4


@pytest.mark.slow
def test_interrupted_grid_resumes_to_the_full_grid(tmp_path, monkeypatch):
    space = {"train.optimizer.lr": {"type": "categorical", "choices": [1e-3, 3e-3]},
             "train.epochs": {"type": "int", "low": 1, "high": 2}}
    cfg = config(space=space, sampler="grid")
    monkeypatch.setenv("HEPNN_FAKE_INTERRUPT", "2")
    with pytest.raises(KeyboardInterrupt):
        run_study(cfg, tmp_path, train_fn=fake_fit, plots=False)
    monkeypatch.delenv("HEPNN_FAKE_INTERRUPT")
    result = run_study(cfg, tmp_path, train_fn=fake_fit, plots=False)
    trials = stored_trials(tmp_path)
    complete = sorted((t.params["train.optimizer.lr"], t.params["train.epochs"]) for t in trials
                      if t.state.name == "COMPLETE")
    assert complete == sorted(itertools.product([1e-3, 3e-3], [1, 2]))
    assert result.states == {"COMPLETE": 4, "FAIL": 1} and trials[2].state.name == "FAIL"


def test_resumed_study_continues_its_trial_count(tmp_path):
    first = run_study(config(n_trials=3, sampler="random"), tmp_path, train_fn=fake_fit, plots=False)
    values = [t.value for t in stored_trials(tmp_path)]
    second = run_study(config(n_trials=5, sampler="random"), tmp_path, train_fn=fake_fit, plots=False)
    trials = stored_trials(tmp_path)
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]
    assert [t.value for t in trials[:3]] == values  # the first three were not rerun
    assert sorted(p.name for p in (tmp_path / "trials").iterdir()) == ["0", "1", "2", "3", "4"]
    assert (first.n_trials, second.n_trials) == (3, 5)
    assert len({t.params["train.optimizer.lr"] for t in trials}) == 5  # a resumed sampler draws new points


@pytest.mark.slow
def test_two_processes_never_run_the_same_trial(tmp_path, monkeypatch):
    monkeypatch.setenv("HEPNN_FAKE_SLEEP", "0.3")  # long enough that both workers get trials
    result = run_study(config(n_trials=8, sampler="random"), tmp_path, workers=2, train_fn=fake_fit, plots=False)
    trials = stored_trials(tmp_path)
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(8)) and result.states == {"COMPLETE": 8}
    pids = [json.loads((tmp_path / "trials" / str(n) / "metrics.json").read_text())["pid"] for n in numbers]
    per_process = {p: pids.count(p) for p in set(pids)}
    assert len(per_process) == 2 and sum(per_process.values()) == 8  # total = sum over the processes
    assert {t.user_attrs["pid"] for t in trials} == set(per_process)


@pytest.mark.slow
def test_best_trial_lands_near_the_known_optimum(tmp_path):
    result = run_study(config(n_trials=30, sampler="bayes", seed=3), tmp_path, train_fn=fake_fit, plots=False)
    best = result.best_params
    assert abs(math.log10(best["train.optimizer.lr"]) - math.log10(LR_BEST)) < 0.5
    assert abs(best["model.params.dropout"] - DROPOUT_BEST) < 0.15
    assert result.best_value == pytest.approx(known_auc(best["train.optimizer.lr"], best["model.params.dropout"]))
    assert result.best_value > 0.88  # the optimum is 0.9; random points average ~0.8


@pytest.mark.slow
def test_results_table_and_best_yaml(tmp_path):
    result = run_study(config(n_trials=4, sampler="gp"), tmp_path, train_fn=fake_fit)
    with open(tmp_path / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["number"]) for r in rows] == [0, 1, 2, 3]
    assert set(rows[0]) == {"number", "state", "auc", "epochs", "duration_s",
                            "train.optimizer.lr", "model.params.dropout"}
    best_row = max(rows, key=lambda r: float(r["auc"]))
    assert int(best_row["number"]) == result.best_number
    assert (tmp_path / "trials.md").read_text().count("| COMPLETE |") == 4
    best = load_config(tmp_path / "best.yaml")  # what `hepnn train best.yaml` reads
    assert best.tune is None
    assert best.train.optimizer.lr == pytest.approx(float(best_row["train.optimizer.lr"]))
    assert best.model.params["dropout"] == pytest.approx(float(best_row["model.params.dropout"]))
    assert (tmp_path / "plots" / "history.png").stat().st_size > 0
    assert (tmp_path / "plots" / "importance.png").stat().st_size > 0


@pytest.mark.slow
def test_median_pruner_stops_bad_trials_early(tmp_path):
    cfg = config(n_trials=14, sampler="random", pruner="median", pruner_warmup=1, seed=1)
    result = run_study(cfg, tmp_path, train_fn=fake_fit, plots=False)
    trials = stored_trials(tmp_path)
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert pruned and result.states["PRUNED"] == len(pruned)
    assert all(len(t.intermediate_values) < 4 for t in pruned)  # stopped before the 4th epoch
    assert all(len(t.intermediate_values) == 4 for t in trials if t.state.name == "COMPLETE")
    for t in pruned:  # pruned below the median of the earlier trials at the same epoch
        step = max(t.intermediate_values)
        earlier = [u.intermediate_values[step] for u in trials if u.number < t.number and step in u.intermediate_values]
        assert t.intermediate_values[step] < sorted(earlier)[len(earlier) // 2] + 1e-12


def test_failed_trials_count_and_end_the_study(tmp_path):
    result = run_study(config(name="nan", n_trials=3, sampler="random"), tmp_path, train_fn=fake_fit, plots=False)
    trials = stored_trials(tmp_path, "nan-mlp")
    assert result.states == {"FAIL": 3} and result.best_number is None
    assert all("auc" in t.user_attrs["error"] for t in trials)
    assert not (tmp_path / "best.yaml").exists()


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_trial_left_running_by_a_dead_process_is_retried(tmp_path):
    cfg = config(n_trials=2, sampler="random")
    plan = StudyPlan(base=base_raw(cfg), study_dir=str(tmp_path), storage=f"sqlite:///{tmp_path / 'study.db'}",
                     study_name="t-mlp", n_trials=2)
    study = open_study(plan, storage=make_storage(plan.storage))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    trial = study.ask({"train.optimizer.lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True),
                       "model.params.dropout": optuna.distributions.FloatDistribution(0.0, 0.5)})
    import socket

    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", int(dead.stdout))  # "killed" mid-trial: RUNNING, its process gone
    result = run_study(cfg, tmp_path, train_fn=fake_fit, plots=False)
    trials = stored_trials(tmp_path)
    assert trials[0].state.name == "FAIL"
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == 0]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE" and retry[0].params == trials[0].params
    assert result.states == {"FAIL": 1, "COMPLETE": 2}  # the killed trial does not use up the budget


def test_direction_mismatch_with_the_stored_study(tmp_path):
    run_study(config(n_trials=1, sampler="random"), tmp_path, train_fn=fake_fit, plots=False)
    from hepnn.errors import ConfigError

    with pytest.raises(ConfigError, match="maximize"):
        run_study(config(n_trials=2, sampler="random", direction="minimize"), tmp_path, train_fn=fake_fit)
    with pytest.raises(ConfigError, match="another tune.space"):
        run_study(config(n_trials=2, sampler="random", space={"train.optimizer.lr": LR}), tmp_path, train_fn=fake_fit)


def test_bayesian_samplers_take_the_number_of_random_startup_trials():
    from hepnn.config import load_config
    from hepnn.tune.study import make_sampler

    for sampler in ("bayes", "gp"):
        cfg = load_config("configs/top_tagging/mlp_tune.yaml", [f"tune.sampler={sampler}", "tune.n_startup_trials=3"])
        assert make_sampler(cfg.tune, seed=0)._n_startup_trials == 3
