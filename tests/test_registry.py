import pytest
import torch

from hepnn.errors import ConfigError
from hepnn.registry import create_model, describe_models, list_models, register_model


def test_duplicate_name_is_an_error():
    with pytest.raises(ValueError, match="already registered"):
        register_model("mlp", inputs=("jet",))(lambda: torch.nn.Linear(1, 1))


def test_unknown_model_and_parameter():
    with pytest.raises(ConfigError, match="unknown model 'nope'.*known models"):
        create_model("nope")
    with pytest.raises(ConfigError, match="unknown parameter.*widht.*allowed"):
        create_model("mlp", widht=3)


def test_every_model_is_described():
    rows = describe_models()
    assert [r["name"] for r in rows] == list_models()
    assert {"mlp", "logistic", "pfn", "efn", "bdt"} <= set(list_models())
    assert all(r["n_params"] > 0 for r in rows if r["family"] != "bdt")  # every extra is installed here
