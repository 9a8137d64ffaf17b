"""Untrusted run directories: loading one never executes code hidden in it.

Each crafted file carries a payload that would create a marker file if it were ever unpickled or
constructed; the tests check the marker stays absent and the refusal is one clear line.
"""

from __future__ import annotations

import builtins
import json
import pickle
import shutil

import pytest
import torch

from hepnn.errors import HepnnError
from hepnn.train.checkpoint import load_state, load_weights
from tests.hardening.conftest import ROOT, assert_one_line_error, hepnn

SAMPLE = str(ROOT / "data" / "toptag_small.parquet")


class Payload:
    """Unpickling this calls ``open(marker, "w")``: the file appears only if the pickle ran."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


def test_the_payload_works_when_unpickled(tmp_path):
    """Control: the payload really writes its marker when loaded the unsafe way."""
    marker = tmp_path / "pwned"
    torch.save({"model": Payload(marker)}, tmp_path / "evil.pt")
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("container", ["torch_zip", "raw_pickle"])
def test_crafted_training_state_is_refused(tmp_path, container):
    marker, path = tmp_path / "pwned", tmp_path / "last.pt"
    if container == "torch_zip":
        torch.save({"epoch": 3, "model": Payload(marker)}, path)
    else:
        path.write_bytes(pickle.dumps({"epoch": 3, "model": Payload(marker)}))
    with pytest.raises(HepnnError, match="refusing to load .*last.pt.*Only load checkpoints written by hepnn"):
        load_state(path)
    assert not marker.exists()


def test_crafted_checkpoint_in_a_run_is_refused_on_resume(capsys, run_copy):
    marker = run_copy / "pwned"
    (run_copy / "checkpoints").mkdir(exist_ok=True)
    torch.save({"epoch": 0, "model": Payload(marker)}, run_copy / "checkpoints" / "last.pt")
    (run_copy / "model.safetensors").unlink()  # an "interrupted" run, so resume reaches the checkpoint
    code, out = hepnn(capsys, "-q", "train", "--resume", str(run_copy))
    assert_one_line_error(code, out, "refusing to load", "last.pt", "malicious pickle")
    assert not marker.exists()


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_weights_file_holding_a_pickle_is_refused(capsys, run_copy, command):
    marker = run_copy / "pwned"
    torch.save({"phi.0.weight": Payload(marker)}, run_copy / "model.safetensors")
    args = [command, str(run_copy)] + ([SAMPLE, "--out", str(run_copy / "s.parquet")] if command == "predict" else [])
    assert_one_line_error(*hepnn(capsys, "-q", *args), "model.safetensors", "not a valid safetensors file")
    assert not marker.exists() and not (run_copy / "s.parquet").exists()


def test_load_weights_reads_safetensors_only(tmp_path):
    from hepnn.registry import create_model

    marker = tmp_path / "pwned"
    model = create_model("pfn", in_features=7, phi=(8, 8), f=(8,))
    torch.save(model.state_dict() | {"extra": Payload(marker)}, tmp_path / "w.safetensors")
    with pytest.raises(HepnnError, match="not a valid safetensors file"):
        load_weights(model, tmp_path / "w.safetensors")
    assert not marker.exists()


@pytest.mark.parametrize(
    "yaml_text",
    [
        "!!python/object/apply:builtins.open ['{marker}', 'w']\n",
        "name: !!python/object/apply:builtins.open ['{marker}', 'w']\nmodel:\n  name: pfn\n",
        "model: !!python/object/new:pathlib.Path ['{marker}']\n",
    ],
)
def test_config_yaml_with_python_tags_is_refused(capsys, run_copy, yaml_text):
    marker = run_copy / "pwned"
    (run_copy / "config.yaml").write_text(yaml_text.format(marker=marker))
    code, out = hepnn(capsys, "-q", "evaluate", str(run_copy))
    assert_one_line_error(code, out, "config.yaml", "not valid YAML", "python/object")
    assert not marker.exists()


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (lambda good: "not json {", "JSONDecodeError"),
        (lambda good: json.dumps([1, 2]), "expected an object of blocks, got list"),
        (lambda good: json.dumps({"particle": 3}), "not a valid preprocessing file"),
        (lambda good: json.dumps({"particle": {"steps": [{"kind": "evil"}]}}), "steps without fitted state"),
        (lambda good: json.dumps({"particle": {"steps": [{"kind": "evil", "state": {}}]}}),
         "preprocessing kind 'evil' is unknown"),
        (lambda good: json.dumps({"particle": {**good, "steps": [{**good["steps"][0], "params": {"__class__": 1}}]}}),
         "bad params"),
        (lambda good: json.dumps({"particle": {**good, "steps": [
            {**good["steps"][0], "state": {**good["steps"][0]["state"], "mean_": [0.0, 1.0]}}]}}),
         "not a valid preprocessing file"),
        (lambda good: json.dumps({"particle": {**good, "steps": [
            {**good["steps"][0], "state": {**good["steps"][0]["state"], "scale_": "x"}}]}}),
         "not a valid preprocessing file"),
    ],
)
def test_damaged_preprocess_json_is_refused(capsys, run_copy, damage, fragment):
    good = json.loads((run_copy / "preprocess.json").read_text())["particle"]
    assert good["steps"][0]["kind"] == "standardize"  # the tiny run's config (pfn.yaml)
    (run_copy / "preprocess.json").write_text(damage(good))
    code, out = hepnn(capsys, "-q", "predict", str(run_copy), SAMPLE, "--out", str(run_copy / "s.parquet"))
    assert_one_line_error(code, out, "preprocess.json", fragment)
    assert not (run_copy / "s.parquet").exists()


def test_damaged_bdt_model_file(capsys, tmp_path):
    from hepnn.config import load_config
    from hepnn.train.fit import fit

    run = fit(load_config(ROOT / "configs/top_tagging/bdt.yaml", ["data.max_jets=300", "evaluate.plots=false",
                                                                   "model.params.n_estimators=5"]),
              tmp_path / "bdt", progress=False)
    for content in (b'{"learner": 3}', bytes(range(256)) * 2, pickle.dumps(Payload(tmp_path / "pwned"))):
        (run / "model.json").write_bytes(content)
        assert_one_line_error(*hepnn(capsys, "-q", "evaluate", str(run)), "model.json", "not a valid xgboost model")
    assert not (tmp_path / "pwned").exists()
    shutil.rmtree(run)
