"""benchmarks/leaderboard.py: every model it can run is a valid `hepnn train` command; unknown ones are refused.

A converged leaderboard runs for a day, so a model whose config or overrides do not validate would
fail only when its turn comes; here each goes through the validation `hepnn train` applies.
"""

from __future__ import annotations

import argparse
import sys

import pytest

from hepnn.config import load_config
from hepnn.registry import count_parameters
from hepnn.runs import build_model, check_config
from tests.benchmarks import benchmark_script


LB = benchmark_script("leaderboard")
CONVERGED = argparse.Namespace(data_overrides=[], budget=0, patience=4, max_epochs=20, overtraining_jets=2000)


@pytest.mark.parametrize("model", LB.MODELS + list(LB.LITE))
def test_every_model_is_a_valid_converged_run(model):
    config, extra = LB.config_of(model)
    cfg = load_config(config, [*extra, *LB.overrides(CONVERGED, model), "train.seed=1"])
    check_config(cfg)  # what `hepnn train` checks before any work: the model builds, the data exist
    assert cfg.model.name == model
    assert cfg.train.epochs == 20 and cfg.train.early_stopping.patience == 4


def test_lite_variants_are_smaller_than_the_configs_they_come_from():
    for lite, (base, extra) in LB.LITE.items():
        small, full = (load_config(LB.config_of(base)[0], o) for o in (extra, []))
        n = [count_parameters(build_model(c)) for c in (small, full)]
        assert n[0] < n[1], f"{lite}: {n[0]} parameters, not fewer than {base}.yaml's {n[1]}"


def test_unknown_model_is_refused_before_any_run(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(sys, "argv", ["leaderboard.py", "--data", "x.parquet", "--models", "mlp,particlenet_lit",
                                      "--out", str(tmp_path)])
    with pytest.raises(SystemExit) as exc:
        LB.main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--models" in err and "particlenet_lit" in err and "particlenet_lite" in err
    assert not any(tmp_path.iterdir())
