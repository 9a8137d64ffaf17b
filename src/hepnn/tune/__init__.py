"""Hyperparameter search over dotted config keys with Optuna (grid, random, TPE, GP; pruning).

>>> from hepnn.config import load_config
>>> from hepnn.tune import run_study
>>> result = run_study(load_config("configs/top_tagging/mlp_tune.yaml"), "runs/tune-mlp")  # doctest: +SKIP

Optuna is the optional extra ``tune`` and is imported only when a study runs.
"""

from hepnn.tune.results import StudyResult
from hepnn.tune.study import TrialReporter, run_study

__all__ = ["StudyResult", "TrialReporter", "run_study"]
