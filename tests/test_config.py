import pytest

from hepnn.config import dump_config, load_config, validate_config
from hepnn.errors import ConfigError


def test_defaults_and_dotted_overrides():
    cfg = load_config(None, ["train.optimizer.lr=3e-4", "train.epochs=2", "model.params.hidden=[8, 8]"])
    assert cfg.train.optimizer.lr == pytest.approx(3e-4)
    assert cfg.train.epochs == 2
    assert cfg.model.params["hidden"] == [8, 8]


def test_unknown_key_names_key_value_and_allowed_keys():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["train.learning_rate=0.1"])
    msg = str(err.value)
    assert "train.learning_rate" in msg and "0.1" in msg and "epochs" in msg and "optimizer" in msg


def test_wrong_type_and_impossible_values():
    with pytest.raises(ConfigError, match="train.epochs"):
        load_config(None, ["train.epochs=many"])
    with pytest.raises(ConfigError, match="train.optimizer.lr"):
        load_config(None, ["train.optimizer.lr=-1"])
    with pytest.raises(ConfigError, match="signal_efficiencies"):
        load_config(None, ["evaluate.signal_efficiencies=[0.3, 1.5]"])
    with pytest.raises(ConfigError, match="must be 1"):
        load_config(None, ["data.split.train=0.9"])


def test_malformed_override_and_files(tmp_path):
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["train.epochs"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n- not a mapping\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)


def test_yaml_round_trip(tmp_path):
    cfg = load_config(None, ["name=demo", "data.max_particles=64"])
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(cfg))
    again = load_config(path)
    assert again == cfg
    assert validate_config(again.model_dump(mode="json")) == cfg
