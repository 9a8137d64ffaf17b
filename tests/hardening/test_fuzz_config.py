"""Property-based tests of the config loader: valid dotted overrides validate and land where they
say; invalid ones (and any random key, value or YAML document) raise ConfigError, never another type."""

from __future__ import annotations

import string

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hepnn.config import RunConfig, load_config
from hepnn.errors import ConfigError
from tests.hardening.conftest import PFN

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _num(x: float) -> str:
    return repr(float(x))


OPTIMIZERS = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam", "amsgrad", "adamw"]
unit_open = st.floats(0, 1, exclude_min=True, exclude_max=True)
# dotted key -> strategy of (override text, expected value after validation)
VALID = {
    "train.optimizer.lr": st.floats(1e-8, 10).map(lambda v: (_num(v), v)),
    "train.optimizer.weight_decay": st.floats(0, 1).map(lambda v: (_num(v), v)),
    "train.optimizer.momentum": st.floats(0, 0.999).map(lambda v: (_num(v), v)),
    "train.optimizer.name": st.sampled_from(OPTIMIZERS).map(lambda v: (v, v)),
    "train.optimizer.betas": st.tuples(st.floats(0, 0.999), st.floats(0, 0.9999)).map(
        lambda v: (f"[{_num(v[0])}, {_num(v[1])}]", v)),
    "train.schedule.name": st.sampled_from(["constant", "time_decay", "step", "exponential", "cosine", "onecycle",
                                            "plateau"]).map(lambda v: (v, v)),
    "train.schedule.warmup_steps": st.integers(0, 10_000).map(lambda v: (str(v), v)),
    "train.epochs": st.integers(1, 10_000).map(lambda v: (str(v), v)),
    "train.seed": st.integers(-(2**31), 2**31).map(lambda v: (str(v), v)),
    "train.grad_clip": st.floats(1e-6, 1e3).map(lambda v: (_num(v), v)),
    "train.amp": st.sampled_from(["none", "bf16", "fp16"]).map(lambda v: (v, v)),
    "data.batch_size": st.integers(1, 1 << 16).map(lambda v: (str(v), v)),
    "data.max_particles": st.integers(1, 1024).map(lambda v: (str(v), v)),
    "evaluate.signal_efficiencies": st.lists(unit_open, min_size=1, max_size=4).map(
        lambda v: ("[" + ", ".join(_num(e) for e in v) + "]", v)),
}


def _get(cfg: RunConfig, key: str):
    node = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return node


@FUZZ
@given(data=st.data())
def test_valid_overrides_validate_and_land_where_they_say(data):
    keys = data.draw(st.lists(st.sampled_from(sorted(VALID)), min_size=1, max_size=5, unique=True))
    drawn = {k: data.draw(VALID[k]) for k in keys}
    cfg = load_config(PFN, [f"{k}={text}" for k, (text, _) in drawn.items()])
    for key, (_, expected) in drawn.items():
        got = _get(cfg, key)
        assert (list(got) if isinstance(got, (list, tuple)) else got) == (
            list(expected) if isinstance(expected, (list, tuple)) else expected), key


# key -> strategy of invalid values (override text)
INVALID = {
    "train.optimizer.lr": st.one_of(st.floats(max_value=0).map(_num), st.just(".inf"), st.just(".nan"),
                                    st.just("fast")),
    "train.optimizer.momentum": st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1)).map(_num),
    "train.optimizer.betas": st.tuples(st.floats(1, 10), st.floats(0, 0.9)).map(
        lambda v: f"[{_num(v[0])}, {_num(v[1])}]"),
    "train.epochs": st.one_of(st.integers(max_value=0).map(str), st.just("many"), st.just("[1, 2]")),
    "data.batch_size": st.one_of(st.integers(max_value=0).map(str), st.just("1.5")),
    "evaluate.signal_efficiencies": st.lists(
        st.one_of(st.floats(max_value=0), st.floats(min_value=1)), min_size=1, max_size=3).map(
        lambda v: "[" + ", ".join(_num(e) for e in v) + "]"),
    "train.optimizer.name": st.text(string.ascii_lowercase, min_size=1, max_size=8).filter(
        lambda v: v not in OPTIMIZERS),
    "data.split.train": st.floats(0, 0.5, exclude_min=True).map(_num),
}


@FUZZ
@given(data=st.data())
def test_invalid_overrides_raise_config_error_naming_the_key(data):
    key = data.draw(st.sampled_from(sorted(INVALID)))
    text = data.draw(INVALID[key])
    with pytest.raises(ConfigError) as info:
        load_config(PFN, [f"{key}={text}"])
    assert (key if key != "data.split.train" else "must be 1") in str(info.value)


identifier = st.text(string.ascii_lowercase + "_", min_size=1, max_size=10)


@FUZZ
@given(section=st.sampled_from(["", "data.", "train.", "train.optimizer.", "evaluate.", "model."]), name=identifier,
       value=st.integers())
def test_unknown_keys_are_named(section, name, value):
    key = section + name
    try:
        cfg = load_config(PFN, [f"{key}={value}"])
    except ConfigError as err:
        assert f"'{key}'" in str(err) or "not a section" in str(err)
        return
    assert section == "model." and name in {"name", "params"} or _get(cfg, key) is not None  # it was a real key


@FUZZ
@given(items=st.lists(st.text(max_size=30), max_size=4))
def test_any_override_text_is_valid_or_config_error(items):
    try:
        assert isinstance(load_config(PFN, items), RunConfig)
    except ConfigError:
        pass


yaml_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12)),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(st.one_of(identifier, st.sampled_from(
                                   ["data", "train", "model", "optimizer", "lr", "epochs", "preprocess", "tune"])),
                                   children, max_size=4)),
    max_leaves=15,
)


@FUZZ
@given(doc=yaml_values)
def test_any_yaml_document_is_valid_or_config_error(tmp_path_factory, doc):
    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    path.write_text(yaml.safe_dump(doc))
    try:
        assert isinstance(load_config(path), RunConfig)
    except ConfigError as err:
        assert str(path) in str(err)


@FUZZ
@given(raw=st.binary(max_size=200))
def test_any_bytes_as_a_config_file_are_valid_or_config_error(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    path.write_bytes(raw)
    try:
        load_config(path)
    except ConfigError as err:
        assert str(path) in str(err)
